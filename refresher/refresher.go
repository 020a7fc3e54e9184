// Package refresher hands out valid tokens and makes sure that, when a
// token expires, exactly one worker of the fleet renews it while the others
// wait for, and re-read, the new one.
//
// Refresher.Token reads the token from the store and:
//   - returns it when it is fresh;
//   - inside the refresh window (default 60 s before expiry, shortened by up
//     to 10 % jitter) returns it at once and lets one worker renew it in the
//     background (stale-while-revalidate): nobody waits for a token that
//     still works;
//   - once it has expired, renews it: one goroutine per token per process
//     (singleflight), one worker per token across the fleet (a lock.Locker
//     lock, taken without waiting by the first and waited for by the rest).
//     The holder reads the token again, renews it only if it is still due,
//     records right before sending which revision is in flight, saves the
//     answer conditional on the revision it read, announces it and releases
//     the lock. Waiters wake on the announcement, or poll, and read the new
//     token; when the holder dies, its lock expires and a waiter takes
//     over, unless the holder's in-flight record says its refresh token may
//     be at the server: then the waiter waits for the record's outcome.
//
// A successor is never dropped: once the server has answered, the refresh
// token it replaced is dead, so the holder serves the answer to its
// callers at once and, if the save fails, keeps it in memory and retries
// the save until it lands or Shutdown's deadline.
//
// A rejected grant (ErrInvalidGrant) is terminal: every waiter gets it and
// the fleet remembers not to send the dead token again. A refused client
// (ErrInvalidClient) is a configuration error: the token is not marked
// dead. Any other failure is transient: a shared cooldown keeps the fleet
// from hammering the server, callers whose token has not expired keep
// getting it, and the others get an error wrapping ErrTemporary and the
// cause. When the store fails or hangs, each process serves the valid
// token it last served for the query.
//
// WithObserver reports every Token call's result, every call to the
// Endpoint and every wait for another worker's refresh to an Observer;
// package telemetry turns them into OpenTelemetry metrics and spans.
package refresher

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/lock"
)

// Refresher hands out valid tokens. It is safe for concurrent use.
type Refresher struct {
	store tokencache.Store
	coord coordinator
	ep    Endpoint
	cfg   config

	flights singleflight.Group // one renewal per token per process

	mu      sync.Mutex
	bgPause map[string]time.Time // guarded by mu; no background renewal of a token before this time

	local   *localCache // nil unless WithLocalCache
	memory  *memory     // the last valid token served per query
	pending *successors // renewed tokens whose save is being retried

	active    atomic.Int64  // flights running, which Shutdown waits for
	saving    atomic.Int64  // saves being retried, which Shutdown waits for
	releasing atomic.Int64  // locks being released in the background, which Shutdown waits for
	closing   atomic.Bool   // set by Shutdown: no refresh request leaves the process any more
	stopping  chan struct{} // closed by Shutdown: flights stop waiting for other workers
	stoppingO sync.Once
	abandon   chan struct{} // closed when Shutdown's deadline ends the retried saves
	abandonO  sync.Once
}

// New returns a Refresher over store that renews tokens through ep. A nil
// locker coordinates refreshes within this process only. When store has a
// Namespace method (redisstore does) the lock keys use that namespace, so a
// token's lock sits beside it. An invalid option or a nil store or endpoint
// does not panic: Token then returns an error wrapping ErrBadOption.
func New(store tokencache.Store, locker *lock.Locker, ep Endpoint, opts ...Option) *Refresher {
	cfg := newConfig(opts)
	if cfg.err == nil && (store == nil || ep == nil) {
		cfg.err = fmt.Errorf("%w: nil store or endpoint", ErrBadOption)
	}
	r := &Refresher{store: store, ep: ep, cfg: cfg, bgPause: make(map[string]time.Time),
		local: newLocalCache(cfg.localTTL, store, cfg.now), memory: newMemory(maxRemembered), pending: newSuccessors(),
		stopping: make(chan struct{}), abandon: make(chan struct{})}
	switch {
	case locker == nil:
		r.coord = newLocalCoordinator()
	default:
		fc := &fleetCoordinator{l: locker, ttl: cfg.lockTTL, record: flightRecorder(store)}
		if ns, ok := store.(interface{ Namespace() string }); ok && locker.Namespace() != ns.Namespace() {
			fc.l, fc.derived = locker.InNamespace(ns.Namespace()), true
		}
		r.coord = fc
	}
	return r
}

// Shutdown stops the Refresher from starting refreshes and waits, until ctx
// ends, for the ones in flight and for the saves of renewed tokens still
// being retried, then calls Close. Call it before a process exits: a
// rotating server that has answered a refresh has already retired the old
// refresh token, so a renewed token not saved costs the user the session.
// Once Shutdown has begun no refresh request leaves the process, also
// from a renewal that was waiting for another worker's lock when it began
// (it gives up waiting): only requests already at the server are waited
// for, so that none is answered after the process has gone. Token still
// serves valid tokens meanwhile. When ctx ends first, the retries stop and
// the error says how many saves were given up.
func (r *Refresher) Shutdown(ctx context.Context) error {
	r.closing.Store(true)
	r.stoppingO.Do(func() { close(r.stopping) })
	ticker := time.NewTicker(10 * time.Millisecond)
	defer ticker.Stop()
	for r.active.Load() > 0 || r.saving.Load() > 0 || r.releasing.Load() > 0 {
		select {
		case <-ctx.Done():
			r.abandonO.Do(func() { close(r.abandon) })
			return fmt.Errorf("refresher: shutdown with %d refreshes in flight and %d saves unfinished: %w",
				r.active.Load(), r.saving.Load(), ctx.Err())
		case <-ticker.C:
		}
	}
	return r.Close()
}

// Close releases what New set up: the subscription of a Locker it made for
// the store's namespace, and the local cache's watch of the store's changes
// (WithLocalCache). The Locker passed to New is the caller's to close.
// It does not wait for refreshes in flight or saves being retried; Shutdown
// does.
func (r *Refresher) Close() error { return errors.Join(r.local.close(), r.coord.close()) }

// Token returns a valid token for query, renewing it when it is due. query
// is matched as tokencache.Store.FindToken matches it. When nothing
// matches, a query with a grant token is exchanged, one with a refresh token
// (and client credentials) is refreshed, and one with only an access token
// is saved as given; each is then saved, once across the fleet.
//
// When the store fails, or does not answer within the store timeout (see
// WithStoreTimeout), Token returns the valid token it last returned for the
// same query, if it has one.
//
// Errors: ErrNotFound when nothing matches and the query cannot make a
// token; ErrInvalidGrant when the server rejected the grant or refresh
// token (with ErrInvalidClient when it refused the client); ErrTemporary
// (with the cause) for failures that may pass; ctx's error when ctx ends
// first.
func (r *Refresher) Token(ctx context.Context, query tokencache.Token) (tokencache.Token, error) {
	if r.cfg.obs == nil {
		tok, _, err := r.token(ctx, query)
		return tok, err
	}
	ctx, done := r.cfg.obs.TokenCall(ctx)
	tok, result, err := r.token(ctx, query)
	done(result, err)
	return tok, err
}

// token is Token; it also says what it did, for the Observer.
func (r *Refresher) token(ctx context.Context, query tokencache.Token) (tokencache.Token, Result, error) {
	if r.cfg.err != nil {
		return tokencache.Token{}, ResultError, r.cfg.err
	}
	if tok, ok := r.local.get(query); ok && r.due(tok, r.cfg.now()) == fresh {
		return tok, ResultFresh, nil
	}
	key := cacheKey(query)
	since := r.local.begin()
	tok, fellBack, err := r.read(ctx, query, key)
	switch {
	case fellBack:
		return tok, ResultStaleServed, nil
	case errors.Is(err, tokencache.ErrNotFound):
		r.memory.forget(key)
		tok, result, err := r.acquire(ctx, query)
		return r.served(ctx, key, tok, result, err)
	case err != nil:
		return tokencache.Token{}, ResultError, storeErr(ctx, err)
	}
	if succ, ok := r.pending.newer(tok); ok {
		tok = succ // our own renewal, whose save is being retried
	}
	switch r.due(tok, r.cfg.now()) {
	case fresh:
		r.local.put(query, tok, since)
		r.memory.put(key, tok, r.cfg.now())
		return tok, ResultFresh, nil
	case stale:
		r.renewInBackground(ctx, tok.ID)
		r.memory.put(key, tok, r.cfg.now())
		return tok, ResultStaleServed, nil
	case spent:
		return tokencache.Token{}, ResultError, errSpent(tok)
	default:
		id := tok.ID
		tok, result, err := r.share(ctx, id, func(ctx context.Context, fl *flight) (tokencache.Token, error) {
			return r.renew(ctx, id, true, fl)
		})
		return r.served(ctx, key, tok, result, err)
	}
}

// read reads the query's token from the store. When this process remembers
// a valid token for the query, the read is bounded by the store timeout,
// and a failed or late read returns the remembered token (fellBack); a
// store that says not found is believed.
func (r *Refresher) read(ctx context.Context, query tokencache.Token, key string) (_ tokencache.Token, fellBack bool, _ error) {
	if _, ok := r.memory.get(key, r.cfg.now()); !ok {
		tok, err := r.store.FindToken(ctx, query)
		return tok, false, err
	}
	rctx, cancel := context.WithTimeout(ctx, r.cfg.storeTimeout)
	tok, err := r.store.FindToken(rctx, query)
	late := rctx.Err() != nil
	cancel()
	if err == nil || errors.Is(err, tokencache.ErrNotFound) || errors.Is(err, tokencache.ErrInvalidToken) || ctx.Err() != nil {
		return tok, false, err
	}
	rem, ok := r.memory.get(key, r.cfg.now())
	if !ok {
		return tokencache.Token{}, false, err // it expired while the store did not answer
	}
	if late {
		r.event(ctx, EventStoreTimeout, err)
	} else {
		r.event(ctx, EventStoreFallback, err)
	}
	return rem, true, nil
}

// served finishes a Token call that renewed or acquired a token: a token
// is remembered for the query; a temporary failure is answered, when this
// process remembers a valid token for the query, with that token.
func (r *Refresher) served(ctx context.Context, key string, tok tokencache.Token, result Result, err error) (tokencache.Token, Result, error) {
	now := r.cfg.now()
	if err == nil {
		r.memory.put(key, tok, now)
		return tok, result, nil
	}
	if errors.Is(err, ErrTemporary) && !errors.Is(err, ErrInvalidGrant) {
		if rem, ok := r.memory.get(key, now); ok {
			r.event(ctx, EventStoreFallback, err)
			return rem, ResultStaleServed, nil
		}
	}
	return tok, result, err
}

// event tells the EventObserver, if any.
func (r *Refresher) event(ctx context.Context, e Event, err error) {
	if r.cfg.events != nil {
		r.cfg.events.Event(ctx, e, err)
	}
}
