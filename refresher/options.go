package refresher

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Defaults of the options.
const (
	DefaultRefreshWindow  = 60 * time.Second
	DefaultJitter         = 0.1
	DefaultWaitTimeout    = 30 * time.Second
	DefaultCooldown       = 5 * time.Second
	DefaultRefreshTimeout = 30 * time.Second
	// DefaultDeadTokenMemory is how long the fleet remembers that a token's
	// grant was rejected, so that nobody sends it to the server again.
	DefaultDeadTokenMemory = 10 * time.Minute
	// DefaultStoreTimeout bounds a read of the store when this process
	// remembers a valid token for the query (see WithStoreTimeout).
	DefaultStoreTimeout = 250 * time.Millisecond
	// DefaultSaveGrace is how much longer than the refresh timeout the
	// record of a refresh in flight lives by default (see WithFlightTTL).
	DefaultSaveGrace = 10 * time.Second
	// DefaultSpentTokenMemory is how long the fleet remembers which token a
	// spent refresh token or grant code became (see WithSpentTokenMemory).
	DefaultSpentTokenMemory = 24 * time.Hour
)

// ErrBadOption is wrapped by every method of a Refresher built with an
// invalid option.
var ErrBadOption = errors.New("refresher: invalid option")

// Option configures a Refresher.
type Option func(*config)

type config struct {
	window         time.Duration
	jitter         float64
	lockTTL        time.Duration
	waitTimeout    time.Duration
	cooldown       time.Duration
	refreshTimeout time.Duration
	deadMemory     time.Duration
	aliasMemory    time.Duration
	localTTL       time.Duration
	storeTimeout   time.Duration
	flightTTL      time.Duration // 0: refreshTimeout + DefaultSaveGrace
	now            func() time.Time
	obs            Observer      // nil: nobody is told
	events         EventObserver // obs, when it also implements EventObserver
	err            error
}

func newConfig(opts []Option) config {
	c := config{
		window:         DefaultRefreshWindow,
		jitter:         DefaultJitter,
		waitTimeout:    DefaultWaitTimeout,
		cooldown:       DefaultCooldown,
		refreshTimeout: DefaultRefreshTimeout,
		deadMemory:     DefaultDeadTokenMemory,
		aliasMemory:    DefaultSpentTokenMemory,
		storeTimeout:   DefaultStoreTimeout,
		now:            time.Now,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&c)
		}
	}
	if c.flightTTL == 0 {
		c.flightTTL = c.refreshTimeout + DefaultSaveGrace
	} else if c.flightTTL <= c.refreshTimeout {
		c.fail("flight TTL %v is not longer than the refresh timeout %v", c.flightTTL, c.refreshTimeout)
	}
	c.events, _ = c.obs.(EventObserver)
	return c
}

func (c *config) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("%w: "+format, append([]any{ErrBadOption}, args...)...)
	}
}

// WithRefreshWindow sets how long before its expiry a token is renewed
// (default 60 s). Inside the window callers still get the current token at
// once while one worker renews it in the background.
func WithRefreshWindow(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.fail("negative refresh window %v", d)
			return
		}
		c.window = d
	}
}

// WithJitter sets the largest fraction (default 0.1) by which the refresh
// window is shortened for each token revision, so that tokens issued
// together are not all renewed at the same instant. 0 disables it.
func WithJitter(fraction float64) Option {
	return func(c *config) {
		if fraction < 0 || fraction >= 1 {
			c.fail("jitter %v is outside [0, 1)", fraction)
			return
		}
		c.jitter = fraction
	}
}

// WithLockTTL sets the TTL of the refresh lock (default: the Locker's, 10 s).
// The holder's watchdog extends it while the refresh runs; it bounds how
// long the fleet waits for a holder that died.
func WithLockTTL(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.fail("negative lock TTL %v", d)
			return
		}
		c.lockTTL = d
	}
}

// WithWaitTimeout bounds how long a caller waits for a refresh that another
// worker is making (default 30 s); the caller's context bounds it too.
func WithWaitTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail("wait timeout %v is not positive", d)
			return
		}
		c.waitTimeout = d
	}
}

// WithCooldown sets how long the fleet leaves a token alone after a refresh
// failed for a transient reason (default 5 s), so that a failing server gets
// one request per cooldown, not one per caller.
func WithCooldown(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail("cooldown %v is not positive", d)
			return
		}
		c.cooldown = d
	}
}

// WithRefreshTimeout bounds one call to the Endpoint (default 30 s). The
// call runs on its own context, so a caller that gives up does not cancel
// the refresh that others wait for.
func WithRefreshTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail("refresh timeout %v is not positive", d)
			return
		}
		c.refreshTimeout = d
	}
}

// WithLocalCache lets Token answer a query it answered less than ttl ago
// from this process's memory, without a Redis round trip, as long as the
// token is still fresh (outside its refresh window); an expiring token is
// always read from the store. The cache is invalidated fleet-wide: when the
// store is a tokencache.ChangeWatcher (redisstore is), every save or delete
// from any process drops the token from every process's cache within the
// announcement's latency, and while the watch is down (not yet subscribed,
// a lost connection) the cache serves nothing. ttl is the worst case, how
// late a process may see a change whose announcement it missed, and the
// only bound for a store that announces nothing. It holds up to 10,000
// tokens. Off by default: every Token call reads Redis.
func WithLocalCache(ttl time.Duration) Option {
	return func(c *config) {
		if ttl < 0 {
			c.fail("negative local cache TTL %v", ttl)
			return
		}
		c.localTTL = ttl
	}
}

// WithStoreTimeout bounds a read of the store (default 250 ms) when this
// process remembers a valid token for the query: a store that has not
// answered by then, or that fails, is answered for by the remembered token,
// so that a Redis that hangs costs a caller this long, not its deadline. A
// store that says the query matches nothing is always believed. Without a
// remembered token the read waits as long as the caller's context allows.
func WithStoreTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail("store timeout %v is not positive", d)
			return
		}
		c.storeTimeout = d
	}
}

// WithFlightTTL sets how long the record of a refresh in flight lives
// (default: the refresh timeout plus 10 s). The holder writes it right
// before it sends the refresh token, and keeps it alive while it retries
// the save of the answer; while it lives, no other worker sends that
// refresh token, even once the holder's lock has expired (a paused holder
// is not a dead one). It must be longer than the refresh timeout; it bounds
// how long the fleet waits for a holder that died after sending.
func WithFlightTTL(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail("flight TTL %v is not positive", d)
			return
		}
		c.flightTTL = d
	}
}

// WithSpentTokenMemory sets how long the fleet remembers which token a
// refresh token or grant code was spent for (default 24 h, renewed each
// time a query presents it), so that a query holding an old refresh token
// gets the token it became instead of sending it to the server again, which
// a rotating server takes for a reuse. It costs one small Redis key per
// rotation of a refresh token within that time.
func WithSpentTokenMemory(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail("spent token memory %v is not positive", d)
			return
		}
		c.aliasMemory = d
	}
}

// WithClock sets the clock that decides when tokens are due (default
// time.Now). A nil now is ignored.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}

// Result is what a Token call did, as reported to an Observer.
type Result string

// The results of a Token call.
const (
	// ResultFresh: the token read was fresh (or, for a query with only an
	// access token, saved as given), and is returned.
	ResultFresh Result = "fresh"
	// ResultStaleServed: the token read is inside the refresh window, or
	// its renewal failed while it is still valid; it is returned as it is.
	ResultStaleServed Result = "stale_served"
	// ResultRefreshed: the token had expired (or did not exist yet) and
	// this caller's flight called the Endpoint for the token returned.
	ResultRefreshed Result = "refreshed"
	// ResultWaited: the token had expired (or did not exist yet) and was
	// renewed by another goroutine of this process or by another worker;
	// the caller returns that result.
	ResultWaited Result = "waited"
	// ResultError: Token returned an error.
	ResultError Result = "error"
)

// Outcome is how a call to the Endpoint ended, as reported to an Observer.
type Outcome string

// The outcomes of an Endpoint call.
const (
	OutcomeOK           Outcome = "ok"
	OutcomeInvalidGrant Outcome = "invalid_grant" // the error wraps ErrInvalidGrant
	OutcomeError        Outcome = "error"         // any other error: transient
)

// Observer is told what a Refresher does, for metrics and traces; package
// telemetry implements it with OpenTelemetry. Its methods are called
// concurrently and must not block. No method is given a query or a token:
// an Observer never sees a secret or a user name.
type Observer interface {
	// TokenCall is called when Refresher.Token starts. Token goes on with
	// the context it returns (so a span started here is the parent of the
	// store calls and of a refresh made on the caller's behalf) and calls
	// done exactly once as it returns, with its result and its error (nil
	// unless result is ResultError).
	TokenCall(ctx context.Context) (_ context.Context, done func(result Result, err error))
	// RefreshCall is called when this process calls the Endpoint: a
	// refresh, or an exchange of a grant token when exchange is set. id
	// is the token's ID, or "" when the query has no token yet. The call
	// runs on the context it returns, and done is called exactly once
	// when it returns, with its outcome and error; it measures how long
	// the Endpoint took. A renewal in the background is reported too.
	RefreshCall(ctx context.Context, id string, exchange bool) (_ context.Context, done func(outcome Outcome, err error))
	// LockWait reports that a Token caller waited this long for a renewal
	// made by someone else: another goroutine of this process (the
	// caller shared its flight) or another worker (the flight waited for
	// that worker's lock). It is called once per caller that waited, as
	// the wait ends, also when it ended in an error.
	LockWait(ctx context.Context, waited time.Duration)
}

// WithObserver makes the Refresher report its Token calls, Endpoint calls
// and waits to o. A nil o is ignored.
func WithObserver(o Observer) Option {
	return func(c *config) {
		if o != nil {
			c.obs = o
		}
	}
}

// Event is something a Refresher did to get through a fault, reported to
// an Observer that also implements EventObserver.
type Event string

// The events.
const (
	// EventStoreFallback: the store failed and a caller got the valid
	// token this process remembered for its query.
	EventStoreFallback Event = "store_fallback"
	// EventStoreTimeout: the store did not answer within the store timeout
	// and a caller got the valid token this process remembered.
	EventStoreTimeout Event = "store_timeout"
	// EventSaveRetry: the save of a renewed token failed; the token is
	// served from memory and the save is retried.
	EventSaveRetry Event = "save_retry"
	// EventSaveLanded: a save that was retried landed.
	EventSaveLanded Event = "save_landed"
	// EventSaveLost: Shutdown's deadline, or a store that refuses the
	// token, ended the retries of a save: the renewed token is lost.
	EventSaveLost Event = "save_lost"
	// EventFlightWait: a lock holder found another worker's refresh of
	// the token in flight and waited for its outcome instead of sending.
	EventFlightWait Event = "flight_wait"
	// EventBackgroundError: a renewal inside the refresh window failed;
	// callers keep getting the still valid token.
	EventBackgroundError Event = "background_error"
)

// EventObserver is an optional extension of Observer: an Observer passed
// to WithObserver that also implements it is told of the Events. Event is
// called concurrently and must not block; err is the cause, if any, and
// never carries a secret.
type EventObserver interface {
	Event(ctx context.Context, e Event, err error)
}
