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
	ns         string
	indexKey   []byte // HMAC key for digests; nil means plain SHA-256
	bucketBits uint   // bits of the digest that choose the bucket (at most 16)
}

// hash is the key of the hash holding the token with this ID. The braces
// make the ID the Cluster hash tag.
func (k keys) hash(id string) string { return k.ns + ":t:{" + id + "}" }

// ids is the key of the set of all token IDs.
func (k keys) ids() string { return k.ns + ":ids" }

// defaultBucketBits is how many bits of a digest choose its bucket: 65,536
// bucket hashes per kind of index.
const defaultBucketBits = 16

// ixRef names one index entry: the field of a bucket hash that holds the
// members of one value, or, with field empty, a key of the legacy layout
// (a sorted set per value, or a string before that).
type ixRef struct {
	key, field string
}

// hintKey names the entry in the hint cache.
func (r ixRef) hintKey() string { return r.key + " " + r.field }

// digest is the index digest of the value t has for rule; ok is false when
// t has no value for it.
func (k keys) digest(rule tokencache.Rule, t tokencache.Token) (kind byte, digest [16]byte, ok bool) {
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
		return 0, digest, false
	}
	if value == "" {
		return 0, digest, false
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
	copy(digest[:], h.Sum(sum[:0]))
	return kind, digest, true
}

// index returns the index entry that rule uses to find t: the field of a
// bucket hash "ns:kind:BUCKET", where BUCKET is the first bucketBits bits of
// the digest (3 base64url characters) and the field the other 14 bytes of
// the digest, raw (a listpack entry is binary-safe; 5 bytes fewer than
// base64 on each of the 3 or 4 entries of every token). It returns the zero ixRef when t has no value
// for rule. No name ever holds the value itself.
func (k keys) index(rule tokencache.Rule, t tokencache.Token) ixRef {
	kind, d, ok := k.digest(rule, t)
	if !ok {
		return ixRef{}
	}
	b := uint16(0)
	if bits := min(k.bucketBits, 16); bits > 0 {
		b = (uint16(d[0])<<8 | uint16(d[1])) >> (16 - bits)
	}
	var bb [2]byte
	binary.BigEndian.PutUint16(bb[:], b)
	var sb strings.Builder
	sb.Grow(len(k.ns) + 3 + 3)
	sb.WriteString(k.ns)
	sb.WriteByte(':')
	sb.WriteByte(kind)
	sb.WriteByte(':')
	sb.WriteString(base64.RawURLEncoding.EncodeToString(bb[:]))
	return ixRef{key: sb.String(), field: string(d[2:])}
}

// legacy returns the key of the index entry of the legacy layout (one key
// per value: a sorted set, or a string before that), or the zero ixRef.
// Only readers and clean-ups use it; nothing writes this layout any more.
func (k keys) legacy(rule tokencache.Rule, t tokencache.Token) ixRef {
	kind, d, ok := k.digest(rule, t)
	if !ok {
		return ixRef{}
	}
	var b strings.Builder
	b.Grow(len(k.ns) + 3 + 22)
	b.WriteString(k.ns)
	b.WriteByte(':')
	b.WriteByte(kind)
	b.WriteByte(':')
	b.WriteString(base64.RawURLEncoding.EncodeToString(d[:]))
	return ixRef{key: b.String()}
}

// layout is the key of the layout marker: when it exists, no entry of the
// legacy layout matters any more (the namespace started empty with bucket
// hashes, or Reindex moved every live token's entries), and lookups no
// longer look for them.
func (k keys) layout() string { return k.ns + ":layout" }

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
