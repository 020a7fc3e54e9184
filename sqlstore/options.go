package sqlstore

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// DefaultTable is the token table's name when WithTable is not given; the
// library and the tokencache command use the same one.
const DefaultTable = "tokencache_tokens"

// DefaultRefreshRetention is how long a token with a refresh token outlives
// its access token when WithRefreshRetention is not given: the same as
// redisstore's, so that the cache and the record keep a token equally long.
const DefaultRefreshRetention = 90 * 24 * time.Hour

// DefaultCleanupInterval is how often a Store deletes expired rows when
// WithCleanupInterval is not given.
const DefaultCleanupInterval = 10 * time.Minute

// MaxTableNameLength is the longest table name WithTable accepts: short
// enough that the names of its indexes fit every database's limit.
const MaxTableNameLength = 40

// ErrBadOption is wrapped by Open when an option is invalid.
var ErrBadOption = errors.New("sqlstore: invalid option")

// Option configures a Store.
type Option func(*config)

type config struct {
	table     string
	retention time.Duration
	indexKey  []byte
	now       func() time.Time
	cleanup   time.Duration
	err       error // the first invalid option
}

func newConfig(opts []Option) config {
	c := config{
		table:     DefaultTable,
		retention: DefaultRefreshRetention,
		now:       time.Now,
		cleanup:   DefaultCleanupInterval,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&c)
		}
	}
	return c
}

func (c *config) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: "+format, append([]any{ErrBadOption}, args...)...)
	}
}

// ValidIdentifier reports, as an error, why name cannot be a table name: it
// must start with a letter or underscore, hold only ASCII letters, digits
// and underscores, and be at most max bytes long. A name that passes is
// safe in SQL text; nothing else ever enters it.
func ValidIdentifier(name string, max int) error {
	if name == "" || len(name) > max {
		return fmt.Errorf("table name must be 1 to %d characters", max)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return errors.New("table name must be an identifier: ASCII letters, digits and '_', not starting with a digit")
		}
	}
	return nil
}

// WithTable keeps the tokens in the table name instead of
// "tokencache_tokens", so that several stores share one database. name must
// be an identifier (ASCII letters, digits and '_', not starting with a
// digit) of at most MaxTableNameLength characters, other than the schema
// table's name. Open creates the table when it does not exist.
func WithTable(name string) Option {
	return func(c *config) {
		if err := ValidIdentifier(name, MaxTableNameLength); err != nil {
			c.fail("%v", err)
			return
		}
		if strings.EqualFold(name, SchemaTable) {
			c.fail("table name %s is taken by the schema table", SchemaTable)
			return
		}
		c.table = name
	}
}

// WithRefreshRetention sets how long a token with a refresh token is kept
// after the later of its Expiry and its last save (default 90 days, as in
// redisstore). 0 keeps such tokens until they are deleted. A negative d is
// invalid.
func WithRefreshRetention(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.fail("negative refresh retention %v", d)
			return
		}
		c.retention = d
	}
}

// WithIndexKey makes the lookup digests HMAC-SHA-256 under key instead of
// plain SHA-256, so that someone who reads the table cannot test guesses of
// user names or tokens against the digest columns. Every process sharing
// the table must use the same key; tokens saved under another key are
// found by ID only, until they are saved again.
func WithIndexKey(key []byte) Option {
	return func(c *config) {
		if len(key) == 0 {
			c.fail("empty index key")
			return
		}
		c.indexKey = append([]byte(nil), key...)
	}
}

// WithClock sets the clock that decides when access tokens expire (default
// time.Now). A nil now is ignored.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}

// WithCleanupInterval sets how often the Store deletes rows of tokens that
// are no longer live (default 10 minutes); 0 turns the loop off (call
// Cleanup yourself). Lookups never return such rows either way: they filter
// by an indexed expiry column.
func WithCleanupInterval(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.fail("negative cleanup interval %v", d)
			return
		}
		c.cleanup = d
	}
}
