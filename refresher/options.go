package refresher

import (
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
	now            func() time.Time
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
		now:            time.Now,
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

// WithClock sets the clock that decides when tokens are due (default
// time.Now). A nil now is ignored.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}
