// Package lock is a distributed lock per token, over bsm/redislock, with
// what a refresh needs around it:
//
//   - TryObtain takes the lock or fails at once; Obtain waits, bounded by
//     the caller's context.
//   - A watchdog extends a held lock while its holder works, and closes
//     Lost() when it could not, so the holder knows to stop.
//   - The lock's random token is a fencing value: a store that checks it in
//     the same atomic write as the token (redisstore's SaveTokenIfLocked)
//     refuses the commit of a holder that lost its lock.
//   - Waiters are woken by Redis pub/sub through one shared subscription
//     per Locker (not a connection per waiter), with polling as the
//     fallback for a lost message.
//   - A short note per token lets the fleet agree on how its last refresh
//     ended (rejected, failed for now, …), so that it does not hammer a
//     failing server nor send a dead token again.
//   - The holder records, right before it sends a refresh token, which
//     revision is in flight (BeginFlight): a later holder that finds the
//     record waits for its outcome instead of sending the same refresh
//     token again, also when the first holder is paused past its lock TTL.
//
// Keys, with the default namespace "tokencache":
//
//	tokencache:lock:{ID}      the lock (value: the holder's fencing token)
//	tokencache:note:{ID}      the note about the last refresh (SetNote)
//	tokencache:flight:{ID}    the refresh in flight ("REVISION HOLDER", BeginFlight)
//	tokencache:events         the pub/sub channel ("refreshed ID", "released ID")
//
// The braces make the token ID the Cluster hash tag, so a token's lock sits
// in the same slot as its redisstore hash; everything works on Redis
// Cluster, where PUBLISH reaches the subscribers of every node.
package lock

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/bsm/redislock"
	"github.com/redis/go-redis/v9"
)

// Errors of the package; compare with errors.Is.
var (
	// ErrNotObtained means another holder has the lock.
	ErrNotObtained = errors.New("lock: not obtained")
	// ErrNotHeld means the lock is no longer this holder's: it expired, or
	// it was released already.
	ErrNotHeld = errors.New("lock: not held")
	// ErrBadOption is wrapped by every method of a Locker built with an
	// invalid option.
	ErrBadOption = errors.New("lock: invalid option")
)

// Defaults of the options.
const (
	DefaultNamespace    = "tokencache"
	DefaultTTL          = 10 * time.Second
	DefaultPollInterval = 250 * time.Millisecond
)

// Option configures a Locker.
type Option func(*config)

type config struct {
	namespace string
	ttl       time.Duration
	poll      time.Duration
	err       error
}

func newConfig(opts []Option) config {
	c := config{namespace: DefaultNamespace, ttl: DefaultTTL, poll: DefaultPollInterval}
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

// WithNamespace starts every key with ns (default "tokencache"); use the
// namespace of the store whose tokens are locked. ns may not hold braces.
func WithNamespace(ns string) Option {
	return func(c *config) {
		if ns == "" || strings.ContainsAny(ns, "{} \t\r\n") {
			c.fail("namespace %q must be non-empty, without braces or white space", ns)
			return
		}
		c.namespace = ns
	}
}

// WithTTL sets how long a lock lives without its holder's watchdog
// extending it (default 10 s, at least 100 ms). It bounds how long waiters
// wait for a holder that died.
func WithTTL(d time.Duration) Option {
	return func(c *config) {
		if d < 100*time.Millisecond {
			c.fail("lock TTL %v is below 100ms", d)
			return
		}
		c.ttl = d
	}
}

// WithPollInterval sets how often a waiter looks again when no wake-up
// message arrives (default 250 ms): the fallback for a lost message.
func WithPollInterval(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail("poll interval %v is not positive", d)
			return
		}
		c.poll = d
	}
}

// Locker obtains per-token locks in Redis and tells waiters when a token
// was refreshed or its lock released. It is safe for concurrent use. Close
// it to stop its shared subscription.
type Locker struct {
	rdb redis.UniversalClient
	rl  *redislock.Client
	cfg config

	hub *hub // the shared subscription; nil until the first Watch
	mu  sync.Mutex
}

// New returns a Locker over rdb. An invalid option does not panic: every
// method then returns an error wrapping ErrBadOption.
func New(rdb redis.UniversalClient, opts ...Option) *Locker {
	cfg := newConfig(opts)
	if rdb == nil && cfg.err == nil {
		cfg.err = fmt.Errorf("%w: nil Redis client", ErrBadOption)
	}
	l := &Locker{rdb: rdb, cfg: cfg}
	if rdb != nil {
		l.rl = redislock.New(rdb)
	}
	return l
}

// Namespace returns the prefix of the Locker's keys.
func (l *Locker) Namespace() string { return l.cfg.namespace }

// TTL returns the lock TTL.
func (l *Locker) TTL() time.Duration { return l.cfg.ttl }

// PollInterval returns how often waiters look again without a message.
func (l *Locker) PollInterval() time.Duration { return l.cfg.poll }

// Key returns the key of the lock of the token with this ID.
func (l *Locker) Key(id string) string { return l.cfg.namespace + ":lock:{" + id + "}" }

func (l *Locker) noteKey(id string) string { return l.cfg.namespace + ":note:{" + id + "}" }

func (l *Locker) flightKey(id string) string { return l.cfg.namespace + ":flight:{" + id + "}" }

func (l *Locker) channel() string { return l.cfg.namespace + ":events" }

// TryObtain takes the lock of token id without waiting: ErrNotObtained
// when another holder has it. ttl 0 means the Locker's TTL. The returned
// Lock's watchdog extends it until Release.
func (l *Locker) TryObtain(ctx context.Context, id string, ttl time.Duration) (*Lock, error) {
	if l.cfg.err != nil {
		return nil, l.cfg.err
	}
	if ttl <= 0 {
		ttl = l.cfg.ttl
	}
	rlock, err := l.rl.Obtain(ctx, l.Key(id), ttl, nil) // nil options: no retry
	if errors.Is(err, redislock.ErrNotObtained) {
		return nil, ErrNotObtained
	}
	if err != nil {
		return nil, fmt.Errorf("lock: obtain %s: %w", id, err)
	}
	return startLock(l, id, rlock, ttl), nil
}

// Obtain takes the lock of token id, waiting for the holder to release it
// (woken by its release message, or by polling) until ctx ends, when it
// returns ctx's error. ttl 0 means the Locker's TTL.
func (l *Locker) Obtain(ctx context.Context, id string, ttl time.Duration) (*Lock, error) {
	if l.cfg.err != nil {
		return nil, l.cfg.err
	}
	w, err := l.Watch(ctx, id)
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	for {
		lk, err := l.TryObtain(ctx, id, ttl)
		if !errors.Is(err, ErrNotObtained) {
			return lk, err
		}
		if err := w.Wait(ctx); err != nil {
			return nil, err
		}
	}
}

// Event kinds published to waiters.
const (
	eventRefreshed = "refreshed"
	eventReleased  = "released"
)

// NotifyRefreshed tells every waiter of token id, in every process, that
// the token was refreshed and should be read again.
func (l *Locker) NotifyRefreshed(ctx context.Context, id string) error {
	return l.publish(ctx, eventRefreshed, id)
}

func (l *Locker) publish(ctx context.Context, event, id string) error {
	if l.cfg.err != nil {
		return l.cfg.err
	}
	if err := l.rdb.Publish(ctx, l.channel(), event+" "+id).Err(); err != nil {
		return fmt.Errorf("lock: publish %s %s: %w", event, id, err)
	}
	return nil
}

// Close stops the shared subscription. Waiters still waiting fall back to
// polling. A closed Locker can still lock; a later Watch subscribes again.
func (l *Locker) Close() error {
	l.mu.Lock()
	h := l.hub
	l.hub = nil
	l.mu.Unlock()
	if h == nil {
		return nil
	}
	return h.close()
}

// InNamespace returns a Locker over the same client and options whose keys
// start with ns; l itself when ns is already its namespace. The new Locker
// has a subscription of its own: Close it when done.
func (l *Locker) InNamespace(ns string) *Locker {
	if ns == l.cfg.namespace {
		return l
	}
	cfg := l.cfg
	WithNamespace(ns)(&cfg)
	return &Locker{rdb: l.rdb, rl: l.rl, cfg: cfg}
}
