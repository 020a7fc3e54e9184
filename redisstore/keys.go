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

// indexValue is what an index entry holds: the ID and the revision that
// wrote it, so that cleaning a stale entry never deletes a newer one.
func indexValue(id string, version int64) string {
	return id + ":" + strconv.FormatInt(version, 10)
}

// parseIndexValue splits an index entry; ok is false for a malformed one.
func parseIndexValue(v string) (id string, version int64, ok bool) {
	id, ver, found := strings.Cut(v, ":")
	if !found || tokencache.ValidateID(id) != nil {
		return "", 0, false
	}
	version, err := strconv.ParseInt(ver, 10, 64)
	return id, version, err == nil
}
