package redisstore

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"strconv"
	"strings"

	"github.com/tokencache/tokencache"
)

// indexKinds are the rules that have an index, in a fixed order.
var indexKinds = [...]tokencache.Rule{
	tokencache.RuleUserName,
	tokencache.RuleGrantToken,
	tokencache.RuleRefreshToken,
	tokencache.RuleAccessToken,
}

// keys builds the key names of one namespace.
type keys struct {
	ns       string
	indexKey []byte // HMAC key for digests; nil means plain SHA-256
}

// hash is the key of the hash holding the token with this ID. The braces
// make the ID the Cluster hash tag.
func (k keys) hash(id string) string { return k.ns + ":t:{" + id + "}" }

// ids is the key of the set of all token IDs.
func (k keys) ids() string { return k.ns + ":ids" }

// index returns the key of the index entry that rule uses to find t, or ""
// when t has no value for it. The name holds a digest, never the value.
func (k keys) index(rule tokencache.Rule, t tokencache.Token) string {
	var kind byte
	var scope, value string
	switch rule {
	case tokencache.RuleUserName:
		kind, scope, value = 'u', t.ClientID, t.UserName
	case tokencache.RuleGrantToken:
		kind, scope, value = 'g', t.ClientID, t.GrantToken
	case tokencache.RuleRefreshToken:
		kind, scope, value = 'r', t.ClientID, t.RefreshToken
	case tokencache.RuleAccessToken:
		kind, value = 'a', t.AccessToken
	default:
		return ""
	}
	if value == "" {
		return ""
	}
	var h hash.Hash
	if k.indexKey != nil {
		h = hmac.New(sha256.New, k.indexKey)
	} else {
		h = sha256.New()
	}
	// Length-prefix the scope so that ("ab", "c") and ("a", "bc") differ.
	var buf [1 + binary.MaxVarintLen64]byte
	buf[0] = kind
	n := binary.PutUvarint(buf[1:], uint64(len(scope)))
	h.Write(buf[:1+n])
	h.Write([]byte(scope))
	h.Write([]byte(value))
	var sum [sha256.Size]byte
	digest := h.Sum(sum[:0])[:16]

	var b strings.Builder
	b.Grow(len(k.ns) + 3 + 22)
	b.WriteString(k.ns)
	b.WriteByte(':')
	b.WriteByte(kind)
	b.WriteByte(':')
	b.WriteString(base64.RawURLEncoding.EncodeToString(digest))
	return b.String()
}

// abort is the key of the set of fenced claims "incarnation:revision" of
// the token with this ID; it shares the hash's slot.
func (k keys) abort(id string) string { return k.ns + ":x:{" + id + "}" }

// kindIndex returns the position of rule in indexKinds, or -1.
func kindIndex(rule tokencache.Rule) int {
	for i, r := range indexKinds {
		if r == rule {
			return i
		}
	}
	return -1
}

// kindLetters are the letters of indexKinds, in the same order: they name
// the index keys and the score fields of a hash.
const kindLetters = "ugra"

// member is an index entry: the ID, the incarnation and the revision of
// the save that claimed it. The incarnation is empty for entries written
// before incarnations existed.
type member struct {
	id, inc string
	rev     int64
}

func (m member) String() string {
	return m.id + ":" + m.inc + ":" + strconv.FormatInt(m.rev, 10)
}

// prefix is what every member of this token incarnation starts with.
func memberPrefix(id, inc string) string { return id + ":" + inc + ":" }

// parseMember splits an index entry; ok is false for a malformed one.
func parseMember(v string) (member, bool) {
	id, rest, found := strings.Cut(v, ":")
	if !found || tokencache.ValidateID(id) != nil {
		return member{}, false
	}
	inc, ver, found := strings.Cut(rest, ":")
	if !found {
		return member{}, false
	}
	rev, err := strconv.ParseInt(ver, 10, 64)
	if err != nil || rev < 1 {
		return member{}, false
	}
	return member{id: id, inc: inc, rev: rev}, true
}

// setMember is the member of the set of IDs for this token incarnation:
// "ID:incarnation", or the bare ID for a token written before incarnations.
func setMember(id, inc string) string {
	if inc == "" {
		return id
	}
	return id + ":" + inc
}

// parseSetMember splits a member of the set of IDs.
func parseSetMember(v string) (id, inc string, ok bool) {
	id, inc, _ = strings.Cut(v, ":")
	return id, inc, tokencache.ValidateID(id) == nil
}

// parseLegacyIndex reads an index entry of the old string layout, "ID:revision".
func parseLegacyIndex(v string) (member, bool) {
	id, ver, found := strings.Cut(v, ":")
	if !found || tokencache.ValidateID(id) != nil {
		return member{}, false
	}
	rev, err := strconv.ParseInt(ver, 10, 64)
	if err != nil || rev < 1 {
		return member{}, false
	}
	return member{id: id, rev: rev}, true
}
