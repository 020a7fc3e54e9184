package redisstore

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tokencache/tokencache"
)

// Hash field names. They are short on purpose: they are stored in every hash.
const (
	fieldVersion     = "v"  // the revision
	fieldIncarnation = "n"  // random per creation of the ID
	fieldExpiry      = "ex" // Expiry in Unix ms
	// "w" holds the random ID of the write that made the revision; only
	// commitScript reads it.
)

// scoreField is the hash field holding the score of the token's claim on
// its index entry of kind i (see indexKinds): "su", "sg", "sr", "sa".
func scoreField(i int) string { return "s" + kindLetters[i:i+1] }

// overField is the hash field holding the highest score of another
// token's claim that overtook this one on its index entry of kind i: "ou",
// "og", "or", "oa". commitScript keeps every field starting with "o".
func overField(i int) string { return "o" + kindLetters[i:i+1] }

// chunkSize is the longest value stored in one hash field. Redis keeps a hash
// in its compact listpack encoding only while every value is at most
// hash-max-listpack-value bytes (64 by default); longer values are split.
const chunkSize = 64

// stringFields lists the Token's string fields and their hash field names.
var stringFields = [...]struct {
	name string
	get  func(*tokencache.Token) *string
}{
	{"un", func(t *tokencache.Token) *string { return &t.UserName }},
	{"ci", func(t *tokencache.Token) *string { return &t.ClientID }},
	{"cs", func(t *tokencache.Token) *string { return &t.ClientSecret }},
	{"rt", func(t *tokencache.Token) *string { return &t.RefreshToken }},
	{"at", func(t *tokencache.Token) *string { return &t.AccessToken }},
	{"gt", func(t *tokencache.Token) *string { return &t.GrantToken }},
	{"ru", func(t *tokencache.Token) *string { return &t.RedirectURL }},
	{"ad", func(t *tokencache.Token) *string { return &t.APIDomain }},
}

// errCorrupt is wrapped when a hash does not decode; it is not ErrNotFound.
var errCorrupt = errors.New("redisstore: stored token is corrupt")

// encodeFields returns the hash fields of t as field, value pairs, without
// the revision and the incarnation. Empty values are left out.
func encodeFields(t tokencache.Token) []any {
	args := make([]any, 0, 24)
	for _, f := range stringFields {
		v := *f.get(&t)
		for i := 0; len(v) > 0; i++ {
			n := min(len(v), chunkSize)
			args = append(args, chunkName(f.name, i), v[:n])
			v = v[n:]
		}
	}
	if !t.Expiry.IsZero() {
		args = append(args, fieldExpiry, strconv.FormatInt(t.Expiry.UnixMilli(), 10))
	}
	return args
}

func chunkName(name string, i int) string {
	if i == 0 {
		return name
	}
	return name + "." + strconv.Itoa(i)
}

// decoded is a token read from its hash.
type decoded struct {
	token tokencache.Token
	inc   string   // incarnation; "" for a hash written before incarnations
	score [4]int64 // by kind: the score of the claim of the current value, 0 if unknown
	over  [4]int64 // by kind: the highest score of a claim that overtook it
}

// hintHolds reports whether a lookup of kind i may trust a hint to this
// token: it claimed its index entry, and no later claim of another token
// overtook that claim.
func (d decoded) hintHolds(i int) bool {
	return d.score[i] > 0 && d.over[i] < d.score[i]
}

// decodeFields rebuilds the token with this ID from its hash fields.
func decodeFields(id string, m map[string]string) (decoded, error) {
	var d decoded
	d.token.ID = id
	v, err := strconv.ParseInt(m[fieldVersion], 10, 64)
	if err != nil || v < 1 {
		return d, fmt.Errorf("%w: token %s has revision %q", errCorrupt, id, m[fieldVersion])
	}
	d.token.Version = v
	for _, f := range stringFields {
		s, ok := m[f.name]
		for i := 1; ok; i++ {
			var more string
			if more, ok = m[chunkName(f.name, i)]; ok {
				s += more
			}
		}
		*f.get(&d.token) = s
	}
	if ex, ok := m[fieldExpiry]; ok {
		ms, err := strconv.ParseInt(ex, 10, 64)
		if err != nil {
			return d, fmt.Errorf("%w: token %s has expiry %q", errCorrupt, id, ex)
		}
		d.token.Expiry = time.UnixMilli(ms)
	}
	d.inc = m[fieldIncarnation]
	for i := range indexKinds {
		d.score[i], _ = strconv.ParseInt(m[scoreField(i)], 10, 64)
		d.over[i], _ = strconv.ParseInt(m[overField(i)], 10, 64)
	}
	return d, nil
}

// decodeFlat decodes an HGETALL reply that a Lua script passed back as a flat
// field, value list. An empty list is no token.
func decodeFlat(id string, flat []any) (decoded, bool, error) {
	if len(flat) == 0 {
		return decoded{}, false, nil
	}
	m := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		k, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		m[k] = v
	}
	d, err := decodeFields(id, m)
	return d, err == nil, err
}
