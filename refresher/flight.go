package refresher

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/tokencache/tokencache"
)

// flight is what a renewal or an acquisition shared by the callers of one
// process did. Only the goroutine running it writes it; the callers read it
// after it is done.
type flight struct {
	tok       tokencache.Token
	refreshed bool          // this flight's Endpoint call made tok
	stale     bool          // tok was not renewed (the renewal failed or is cooling down) but is still valid
	waited    time.Duration // time spent waiting for another worker's lock
}

// detach returns the context a shared refresh runs on: the caller's values
// without its cancellation, bounded by the refresh's own timeouts.
func (r *Refresher) detach(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), r.cfg.refreshTimeout+r.cfg.waitTimeout)
}

// share runs fn as this process's one flight for key, on a context detached
// from the caller's (see detach), and returns its token, or ctx's error when
// ctx ends first; the flight goes on for the others. The Result tells the
// caller that started the flight from those that joined it.
func (r *Refresher) share(ctx context.Context, key string, fn func(ctx context.Context, fl *flight) (tokencache.Token, error)) (tokencache.Token, Result, error) {
	var led atomic.Bool // set when this caller's fn is the one that runs
	start := time.Now()
	ch := r.flights.DoChan(key, func() (any, error) {
		led.Store(true)
		return r.fly(ctx, func(dctx context.Context) (any, error) {
			fl := &flight{}
			tok, err := fn(dctx, fl)
			fl.tok = tok
			return fl, err
		})
	})
	select {
	case res := <-ch:
		fl, _ := res.Val.(*flight)
		if fl == nil {
			fl = &flight{} // the flight did not return (runtime.Goexit): res.Err says so
		}
		leader := led.Load()
		if obs := r.cfg.obs; obs != nil {
			if !leader {
				obs.LockWait(ctx, time.Since(start))
			} else if fl.waited > 0 {
				obs.LockWait(ctx, fl.waited)
			}
		}
		switch {
		case res.Err != nil:
			return tokencache.Token{}, ResultError, res.Err
		case leader && fl.refreshed:
			return fl.tok, ResultRefreshed, nil
		case fl.stale:
			return fl.tok, ResultStaleServed, nil
		default:
			return fl.tok, ResultWaited, nil
		}
	case <-ctx.Done():
		if obs := r.cfg.obs; obs != nil && !led.Load() {
			obs.LockWait(ctx, time.Since(start))
		}
		return tokencache.Token{}, ResultError, ctx.Err()
	}
}

// fly runs the body of a flight: counted for Shutdown, refused once the
// Refresher is shutting down, on a context detached from the caller's.
func (r *Refresher) fly(ctx context.Context, body func(context.Context) (any, error)) (any, error) {
	// Counted before closing is checked, so Shutdown either waits for this
	// flight or the flight sees it closing (atomics are ordered).
	r.active.Add(1)
	defer r.active.Add(-1)
	if r.closing.Load() {
		return nil, errShuttingDown
	}
	dctx, cancel := r.detach(ctx)
	defer cancel()
	return body(dctx)
}

// backgroundPause is how long a process leaves a token alone after a
// background renewal attempt, so that callers inside the refresh window do
// not send one lock attempt each while another worker renews it.
const backgroundPause = 500 * time.Millisecond

// renewInBackground starts a renewal of a token that is still valid, unless
// one was started lately. It excludes a foreground renewal of the same
// token through the coordinator's lock, like any other worker. Its failure
// reaches the EventObserver; callers keep the valid token.
func (r *Refresher) renewInBackground(ctx context.Context, id string) {
	now := time.Now()
	r.mu.Lock()
	if now.Before(r.bgPause[id]) {
		r.mu.Unlock()
		return
	}
	r.bgPause[id] = now.Add(backgroundPause)
	r.mu.Unlock()
	// DoChan starts the flight in its own goroutine; its result is not
	// needed (the channel is buffered), only its effect.
	r.flights.DoChan("bg:"+id, func() (any, error) {
		defer r.forgetPause(id)
		v, err := r.fly(ctx, func(dctx context.Context) (any, error) {
			return r.renew(dctx, id, false, &flight{})
		})
		if err != nil && err != errShuttingDown {
			r.event(ctx, EventBackgroundError, err)
		}
		return v, err
	})
}

// forgetPause drops expired background pauses, so the map does not grow
// with every token ever seen.
func (r *Refresher) forgetPause(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	for k, until := range r.bgPause {
		if now.After(until) && k != id {
			delete(r.bgPause, k)
		}
	}
}

// waiter waits for another worker's (or goroutine's) work on one token:
// woken by the coordinator's announcements or its polling, for at most the
// wait timeout, and adding the time it waited to its flight.
type waiter struct {
	w     watching
	until time.Time
	fl    *flight
	limit time.Duration
	quit  <-chan struct{} // closed by Shutdown: stop waiting (errShuttingDown)
}

// newWaiter starts watching id before the caller looks at its state, so
// that no announcement in between is missed.
func (r *Refresher) newWaiter(ctx context.Context, id string, fl *flight) (*waiter, error) {
	w, err := r.coord.watch(ctx, id)
	if err != nil {
		return nil, storeErr(ctx, err)
	}
	return &waiter{w: w, until: time.Now().Add(r.cfg.waitTimeout), fl: fl, limit: r.cfg.waitTimeout, quit: r.stopping}, nil
}

func (w *waiter) stop() { w.w.stop() }

// wait returns when there may be news, or an ErrTemporary error once the
// wait timeout has passed (what names the awaited work) or ctx has ended.
func (w *waiter) wait(ctx context.Context, what string) error {
	return w.waitUntil(ctx, w.until, what)
}

// waitUntil is wait with an earlier bound of its own (never later than the
// wait timeout). Once Shutdown has begun it returns errShuttingDown: a
// renewal that was waiting sends nothing any more, so Shutdown need not
// wait for it.
func (w *waiter) waitUntil(ctx context.Context, until time.Time, what string) error {
	if w.stopped() {
		return errShuttingDown
	}
	if time.Now().After(w.until) {
		return errorf("%w: waited %v for another worker's %s", ErrTemporary, w.limit, what)
	}
	if until.After(w.until) {
		until = w.until
	}
	wctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	if w.quit != nil {
		go func() {
			select {
			case <-w.quit:
				cancel()
			case <-wctx.Done():
			}
		}()
	}
	began := time.Now()
	err := w.w.wait(wctx)
	w.fl.waited += time.Since(began)
	switch {
	case w.stopped():
		return errShuttingDown
	case err != nil && ctx.Err() != nil:
		return errorf("%w: %w", ErrTemporary, err)
	}
	return nil
}

func (w *waiter) stopped() bool {
	select {
	case <-w.quit:
		return true
	default:
		return false
	}
}
