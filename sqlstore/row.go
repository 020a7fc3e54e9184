package sqlstore

import (
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"hash"
	"time"

	"github.com/tokencache/tokencache"
)

// columns lists the token table's columns in the order row.args and
// scanRow use.
const columns = "id, version, user_name, client_id, client_secret, refresh_token, access_token, grant_token, " +
	"redirect_url, api_domain, expiry_ms, purge_ms, user_key, grant_key, refresh_key, access_key"

// tokenColumns is the part of columns that scanRow reads back.
const tokenColumns = "id, version, user_name, client_id, client_secret, refresh_token, access_token, grant_token, " +
	"redirect_url, api_domain, expiry_ms, purge_ms"

// keyColumn names the digest column of each lookup rule.
var keyColumn = map[tokencache.Rule]string{
	tokencache.RuleUserName:     "user_key",
	tokencache.RuleGrantToken:   "grant_key",
	tokencache.RuleRefreshToken: "refresh_key",
	tokencache.RuleAccessToken:  "access_key",
}

// lookupRules are the rules with a digest column, in column order.
var lookupRules = []tokencache.Rule{tokencache.RuleUserName, tokencache.RuleGrantToken, tokencache.RuleRefreshToken, tokencache.RuleAccessToken}

// digester makes the values of the *_key columns: SHA-256, or HMAC-SHA-256
// under the index key, over the rule, the client ID and the value, each
// length-prefixed so that no two (client, value) pairs share an input.
type digester struct {
	key []byte // nil: plain SHA-256
}

// digest returns t's key for rule, or nil when t has no value for it (a
// NULL, which unique indexes do not compare).
func (g digester) digest(rule tokencache.Rule, t tokencache.Token) []byte {
	var client, value string
	switch rule {
	case tokencache.RuleUserName:
		client, value = t.ClientID, t.UserName
	case tokencache.RuleGrantToken:
		client, value = t.ClientID, t.GrantToken
	case tokencache.RuleRefreshToken:
		client, value = t.ClientID, t.RefreshToken
	case tokencache.RuleAccessToken:
		value = t.AccessToken // the access token alone identifies its token
	}
	if value == "" {
		return nil
	}
	var h hash.Hash
	if g.key != nil {
		h = hmac.New(sha256.New, g.key)
	} else {
		h = sha256.New()
	}
	var n [binary.MaxVarintLen64]byte
	h.Write([]byte{byte(rule)})
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(client)))])
	h.Write([]byte(client))
	h.Write([]byte(value))
	return h.Sum(nil)
}

// row is a token as stored: its fields, its expiry and purge times in Unix
// milliseconds (nil: never), and its lookup digests.
type row struct {
	t       tokencache.Token
	expiry  *int64
	purge   *int64
	digests [4]digestArg // in lookupRules order
}

// digestArg is a digest as a query argument: NULL when absent.
type digestArg []byte

// arg returns the digest as a driver value.
func (d digestArg) arg() any {
	if d == nil {
		return nil
	}
	return []byte(d)
}

// purgeTime is when a token saved at now stops being live: a token without
// a refresh token when its access token expires; one with a refresh token
// retention after the later of Expiry and now (never when retention is 0);
// a token without Expiry never. redisstore gives its hashes the same TTL.
func purgeTime(t tokencache.Token, now time.Time, retention time.Duration) *int64 {
	if t.Expiry.IsZero() {
		return nil
	}
	if t.RefreshToken == "" {
		ms := t.Expiry.UnixMilli()
		return &ms
	}
	if retention == 0 {
		return nil
	}
	from := t.Expiry
	if now.After(from) {
		from = now
	}
	ms := from.Add(retention).UnixMilli()
	return &ms
}

func (s *Store) makeRow(t tokencache.Token, now time.Time) row {
	r := row{t: t, purge: purgeTime(t, now, s.retention)}
	if !t.Expiry.IsZero() {
		ms := t.Expiry.UnixMilli()
		r.expiry = &ms
	}
	for i, rule := range lookupRules {
		r.digests[i] = s.digest.digest(rule, t)
	}
	return r
}

// blob returns s as bytes for a NOT NULL binary column: never nil, which a
// driver would send as NULL.
func blob(s string) []byte {
	if s == "" {
		return []byte{}
	}
	return []byte(s)
}

// args returns the row's values in columns order.
func (r row) args() []any {
	t := r.t
	return []any{
		t.ID, t.Version, blob(t.UserName), blob(t.ClientID), blob(t.ClientSecret), blob(t.RefreshToken),
		blob(t.AccessToken), blob(t.GrantToken), blob(t.RedirectURL), blob(t.APIDomain),
		nullInt(r.expiry), nullInt(r.purge),
		r.digests[0].arg(), r.digests[1].arg(), r.digests[2].arg(), r.digests[3].arg(),
	}
}

func nullInt(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// stored is a token read back, with the time its row stops being live.
type stored struct {
	t     tokencache.Token
	purge sql.NullInt64
}

// live reports whether the row is still live at now.
func (st stored) live(now time.Time) bool {
	return (!st.purge.Valid || st.purge.Int64 > now.UnixMilli()) && st.t.Live(now)
}

// scanRow reads the tokenColumns of one row.
func scanRow(sc scanner) (stored, error) {
	var (
		st     stored
		t      = &st.t
		f      [8][]byte
		expiry sql.NullInt64
	)
	if err := sc.Scan(&t.ID, &t.Version, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &expiry, &st.purge); err != nil {
		return stored{}, err
	}
	t.UserName, t.ClientID, t.ClientSecret, t.RefreshToken = string(f[0]), string(f[1]), string(f[2]), string(f[3])
	t.AccessToken, t.GrantToken, t.RedirectURL, t.APIDomain = string(f[4]), string(f[5]), string(f[6]), string(f[7])
	if expiry.Valid {
		t.Expiry = time.UnixMilli(expiry.Int64)
	}
	return st, nil
}
