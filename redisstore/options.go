package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tokencache/tokencache"
)

// DefaultNamespace starts every key when WithNamespace is not given.
const DefaultNamespace = "tokencache"

// DefaultRefreshRetention is how long a token with a refresh token outlives
// its access token when WithRefreshRetention is not given.
const DefaultRefreshRetention = 90 * 24 * time.Hour

// DefaultHintCacheSize is how many index-to-ID hints a Store remembers when
// WithHintCacheSize is not given.
const DefaultHintCacheSize = 10000

// ErrBadOption is wrapped by every method of a Store built with an invalid
// option, such as a namespace with braces.
var ErrBadOption = errors.New("redisstore: invalid option")

// Option configures a Store.
type Option func(*config)

type config struct {
	namespace    string
	retention    time.Duration
	indexKey     []byte
	prevKeys     [][]byte // earlier index keys; a nil entry means plain SHA-256
	acks         int      // replicas that must acknowledge a write; 0: none
	ackWait      time.Duration
	pendingBound time.Duration // tests shorten it (export_test.go)
	walkClass    int64         // members per pass of Walk; tests shrink it (export_test.go)
	bucketBits   uint          // tests use fewer buckets (export_test.go)
	expirySlack  int64         // seconds; tests set 0 (export_test.go)
	now          func() time.Time
	hints        int
	obs          Observer         // nil: nobody is told
	durable      tokencache.Store // the record behind Redis; nil: none (WithDurableStore)
	err          error            // the first invalid option
}

func newConfig(opts []Option) config {
	c := config{
		namespace:    DefaultNamespace,
		retention:    DefaultRefreshRetention,
		now:          time.Now,
		hints:        DefaultHintCacheSize,
		pendingBound: defaultPendingBound,
		walkClass:    walkClassSize,
		expirySlack:  defaultExpirySlack,
		bucketBits:   defaultBucketBits,
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

// WithNamespace starts every key with ns instead of "tokencache", so that
// several stores share one Redis without seeing each other's tokens. ns must
// be 1 to 64 printable ASCII characters without spaces or braces (braces
// would change which Cluster slot the keys fall in).
func WithNamespace(ns string) Option {
	return func(c *config) {
		if ns == "" || len(ns) > 64 || strings.ContainsAny(ns, "{}") {
			c.fail("namespace must be 1 to 64 characters without braces")
			return
		}
		for _, r := range ns {
			if r <= ' ' || r > '~' {
				c.fail("namespace must be printable ASCII without spaces")
				return
			}
		}
		c.namespace = ns
	}
}

// WithRefreshRetention sets how long a token with a refresh token is kept
// after the later of its Expiry and its last save (default 90 days). 0
// keeps such tokens until they are deleted. A negative d is invalid.
func WithRefreshRetention(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.fail("negative refresh retention %v", d)
			return
		}
		c.retention = d
	}
}

// WithIndexKey makes index key names HMAC-SHA-256 digests under key instead
// of plain SHA-256 ones, so that someone who can list the keys cannot test
// guesses of user names or tokens against them. Every process sharing the
// store must use the same key; changing it orphans the existing index
// entries (tokens are then found by ID only, until they are saved again).
// The key should hold at least 32 random bytes.
func WithIndexKey(key []byte) Option {
	return func(c *config) {
		if len(key) == 0 {
			c.fail("empty index key")
			return
		}
		c.indexKey = append([]byte(nil), key...)
	}
}

// WithPreviousIndexKeys names the index keys (see WithIndexKey) that the
// store used before the current one, newest first; an empty key stands for
// plain SHA-256, the digest without WithIndexKey. A lookup that finds
// nothing under the current key tries each of them, and a token found so
// is indexed under the current key at once. Reindex moves every token's
// entries, after which the previous keys can be dropped.
func WithPreviousIndexKeys(keys ...[]byte) Option {
	return func(c *config) {
		for _, k := range keys {
			if len(k) == 0 {
				c.prevKeys = append(c.prevKeys, nil)
				continue
			}
			c.prevKeys = append(c.prevKeys, append([]byte(nil), k...))
		}
	}
}

// ErrReplicaAcks is wrapped by a save or delete that Redis carried out but
// that fewer replicas acknowledged than WithReplicaAcks asks for within its
// timeout: the write may not survive a failover.
var ErrReplicaAcks = errors.New("redisstore: too few replicas acknowledged the write")

// WithReplicaAcks makes every save and delete wait, after it commits, until
// replicas replicas of the master that took it have acknowledged it (Redis
// WAIT, sent on the same connection as the write), for at most timeout. Fewer
// acknowledgements is an error wrapping ErrReplicaAcks: the write happened
// but a failover may still roll it back. 0 replicas (the default) waits for
// nothing. A timeout of 0 waits forever, which WAIT allows but is rarely
// wise; a negative one is invalid.
func WithReplicaAcks(replicas int, timeout time.Duration) Option {
	return func(c *config) {
		if replicas < 0 || timeout < 0 {
			c.fail("negative replica acks %d or timeout %v", replicas, timeout)
			return
		}
		c.acks, c.ackWait = replicas, timeout
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

// WithHintCacheSize sets how many index-to-ID hints the Store remembers
// (default 10000). A hint saves the index round trip of a lookup; it is
// checked against the token's hash every time, so a stale hint costs one
// extra round trip and never a wrong answer. 0 disables the hints.
func WithHintCacheSize(n int) Option {
	return func(c *config) {
		if n < 0 {
			c.fail("negative hint cache size %d", n)
			return
		}
		c.hints = n
	}
}

// Operation names passed to Observer.StoreOperation, one per public method
// of Store. They follow the Zoho SDKs' TokenStore method names.
const (
	OpFindToken         = "find_token"
	OpFindTokenByID     = "find_token_by_id"
	OpSaveToken         = "save_token"
	OpSaveTokenIfLocked = "save_token_if_locked"
	OpDeleteToken       = "delete_token"
	OpGetTokens         = "get_tokens"
	OpDeleteTokens      = "delete_tokens"
)

// Observer is told about every call of a Store's public methods, for
// metrics and traces; package telemetry implements it with OpenTelemetry.
// Its methods are called concurrently and must not block.
type Observer interface {
	// StoreOperation is called when the method op (one of the Op
	// constants) starts. The method runs on the context it returns, so
	// that a span started here is the parent of the Redis commands, and
	// calls done exactly once when it returns, with its error: nil on
	// success, one wrapping tokencache.ErrNotFound on a miss. Neither the
	// query nor the token is passed: an Observer never sees a secret.
	StoreOperation(ctx context.Context, op string) (_ context.Context, done func(err error))
}

// WithObserver makes the Store report each call of its public methods to
// o. A nil o is ignored. Without an observer a call costs nothing extra.
func WithObserver(o Observer) Option {
	return func(c *config) {
		if o != nil {
			c.obs = o
		}
	}
}
