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
//     saves it with the revision it read (fenced by the lock when the store
//     supports SaveTokenIfLocked), announces it and releases the lock.
//     Waiters wake on the announcement, or poll, and read the new token;
//     when the holder dies, its lock expires and a waiter takes over.
//
// A rejected grant (ErrInvalidGrant) is terminal: every waiter gets it and
// the fleet remembers not to send the dead token again. Any other failure is
// transient: a shared cooldown keeps the fleet from hammering the server,
// callers whose token has not expired keep getting it, and the others get
// an error wrapping ErrTemporary and the cause.
//
// WithObserver reports every Token call's result, every call to the
// Endpoint and every wait for another worker's refresh to an Observer;
// package telemetry turns them into OpenTelemetry metrics and spans.
package refresher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/lock"
)

// ErrTemporary is wrapped, together with its cause, by Token when it has no
// valid token for a reason that may pass: the server failed, Redis is down,
// the wait for another worker's refresh timed out. It is never ErrNotFound
// and never ErrInvalidGrant.
var ErrTemporary = errors.New("refresher: token temporarily unavailable")

// lockedSaver is the optional store capability of a save fenced by a lock
// in the token's slot (redisstore.Store has it).
type lockedSaver interface {
	SaveTokenIfLocked(ctx context.Context, token *tokencache.Token, lockKey, lockToken string) error
}

// Refresher hands out valid tokens. It is safe for concurrent use.
type Refresher struct {
	store  tokencache.Store
	locker *lock.Locker // nil: coordinate within this process only
	ep     Endpoint
	cfg    config

	flights singleflight.Group // one refresh per token per process

	mu      sync.Mutex
	notes   map[string]note      // guarded by mu; process-local notes when locker is nil
	bgPause map[string]time.Time // guarded by mu; no background renewal of a token before this time
	derived *lock.Locker         // a Locker New made for the store's namespace; closed by Close

	local *localCache // nil unless WithLocalCache

	active  atomic.Int64 // flights running, which Shutdown waits for
	closing atomic.Bool  // set by Shutdown: no new flight calls the endpoint
}

// note is what the refresher remembers about a token's last refresh.
type note struct {
	text  string
	until time.Time
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
	r := &Refresher{store: store, locker: locker, ep: ep, cfg: cfg, notes: make(map[string]note), bgPause: make(map[string]time.Time),
		local: newLocalCache(cfg.localTTL)}
	if ns, ok := store.(interface{ Namespace() string }); ok && locker != nil && locker.Namespace() != ns.Namespace() {
		r.locker = locker.InNamespace(ns.Namespace())
		r.derived = r.locker
	}
	return r
}

// errShuttingDown is why a Refresher being shut down renews nothing.
var errShuttingDown = fmt.Errorf("%w: the refresher is shutting down", ErrTemporary)

// Shutdown stops the Refresher from starting refreshes and waits, until ctx
// ends, for the ones in flight, then calls Close. Call it before a process
// exits: a rotating server that has answered a refresh has already retired
// the old refresh token, so a refresh cut off before its save would cost the
// user the session. Token still serves valid tokens meanwhile.
func (r *Refresher) Shutdown(ctx context.Context) error {
	r.closing.Store(true)
	ticker := time.NewTicker(10 * time.Millisecond)
	defer ticker.Stop()
	for r.active.Load() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("refresher: shutdown with %d refreshes in flight: %w", r.active.Load(), ctx.Err())
		case <-ticker.C:
		}
	}
	return r.Close()
}

// Close releases what New set up: the subscription of a Locker it made for
// the store's namespace. The Locker passed to New is the caller's to close.
// It does not wait for refreshes in flight; Shutdown does.
func (r *Refresher) Close() error {
	if r.derived != nil {
		return r.derived.Close()
	}
	return nil
}

// Token returns a valid token for query, renewing it when it is due. query
// is matched as tokencache.Store.FindToken matches it. When nothing
// matches, a query with a grant token is exchanged, one with a refresh token
// (and client credentials) is refreshed, and one with only an access token
// is saved as given; each is then saved, once across the fleet.
//
// Errors: ErrNotFound when nothing matches and the query cannot make a
// token; ErrInvalidGrant when the server rejected the grant or refresh
// token; ErrTemporary (with the cause) for failures that may pass; ctx's
// error when ctx ends first.
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
	var key string
	if r.local != nil {
		key = cacheKey(query)
		if tok, ok := r.local.get(key, time.Now()); ok && r.due(tok, r.cfg.now()) == fresh {
			return tok, ResultFresh, nil
		}
	}
	tok, err := r.store.FindToken(ctx, query)
	switch {
	case errors.Is(err, tokencache.ErrNotFound):
		return r.acquire(ctx, query)
	case err != nil:
		return tokencache.Token{}, ResultError, r.storeErr(ctx, err)
	}
	switch r.due(tok, r.cfg.now()) {
	case fresh:
		if r.local != nil {
			r.local.put(key, tok, time.Now())
		}
		return tok, ResultFresh, nil
	case stale:
		r.renewInBackground(ctx, tok.ID)
		return tok, ResultStaleServed, nil
	default:
		return r.share(ctx, tok.ID, func(ctx context.Context, fl *flight) (tokencache.Token, error) {
			return r.renew(ctx, tok.ID, true, fl)
		})
	}
}

// storeErr wraps a store or lock failure in ErrTemporary, unless it says
// something definite: bad input, a rejected grant, a token that is gone
// (stores never report an outage as not found), or ctx's own end.
func (r *Refresher) storeErr(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return err
	}
	if errors.Is(err, tokencache.ErrInvalidToken) || errors.Is(err, tokencache.ErrNotFound) ||
		errors.Is(err, ErrInvalidGrant) || errors.Is(err, ErrTemporary) || errors.Is(err, ErrBadOption) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrTemporary, err)
}

// detach returns the context a shared refresh runs on: the caller's values
// without its cancellation, bounded by the refresh's own timeouts.
func (r *Refresher) detach(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), r.cfg.refreshTimeout+r.cfg.waitTimeout)
}

// flight is what a renewal or an acquisition shared by the callers of one
// process did. Only the goroutine running it writes it; the callers read it
// after it is done.
type flight struct {
	tok       tokencache.Token
	refreshed bool          // this flight's Endpoint call made tok
	stale     bool          // tok was not renewed (the renewal failed or is cooling down) but is still valid
	waited    time.Duration // time spent waiting for another worker's lock
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
		return r.fly(ctx, func(dctx context.Context) (any, error) {
			return r.renew(dctx, id, false, &flight{})
		})
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

// freshness says what a token needs.
type freshness int

const (
	fresh   freshness = iota // nothing
	stale                    // still valid, but inside the refresh window
	expired                  // a refresh before it can be used
)

func (r *Refresher) due(t tokencache.Token, now time.Time) freshness {
	switch {
	case t.RefreshToken == "" && t.GrantToken == "":
		return fresh // nothing could renew it: the store drops it when it expires
	case t.AccessToken == "" || t.ExpiresWithin(now, 0):
		return expired
	case t.ExpiresWithin(now, r.window(t)):
		return stale
	default:
		return fresh
	}
}

// window is the refresh window of t, shortened by a jitter that is fixed for
// each token revision, so that all workers agree on it.
func (r *Refresher) window(t tokencache.Token) time.Duration {
	if r.cfg.jitter == 0 {
		return r.cfg.window
	}
	h := fnv.New64a()
	h.Write([]byte(t.ID))
	h.Write([]byte(strconv.FormatInt(t.Version, 10)))
	frac := float64(h.Sum64()%10000) / 10000 * r.cfg.jitter
	return time.Duration(float64(r.cfg.window) * (1 - frac))
}

// renew makes the token with this ID fresh: it renews it while holding its
// lock, or, when another worker holds the lock and wait is set, waits for
// that worker's result. It runs on a context detached from any caller, and
// records in fl what it did.
func (r *Refresher) renew(ctx context.Context, id string, wait bool, fl *flight) (tokencache.Token, error) {
	w, err := r.newWaiter(ctx, id, fl)
	if err != nil {
		return tokencache.Token{}, err
	}
	defer w.stop()
	for {
		cur, err := r.store.FindTokenByID(ctx, id)
		if err != nil {
			return tokencache.Token{}, r.storeErr(ctx, err)
		}
		// A waiter is served by any token that works; a background renewal
		// is done once the token is out of the window.
		if d := r.due(cur, r.cfg.now()); d == fresh || (wait && d == stale) {
			return cur, nil
		}
		if tok, err, done := r.checkNote(ctx, cur); done {
			fl.stale = err == nil
			return tok, err
		}
		held, err := r.tryLock(ctx, id)
		switch {
		case err == nil:
			return r.renewHolding(ctx, held, id, fl)
		case !errors.Is(err, lock.ErrNotObtained):
			return tokencache.Token{}, r.storeErr(ctx, err)
		case !wait:
			return cur, nil // another worker is renewing it
		}
		if err := w.wait(ctx, "refresh of token "+id); err != nil {
			return tokencache.Token{}, err
		}
	}
}

// waiter waits for another worker's refresh of one token: woken by the
// Locker's messages or its polling, for at most the wait timeout, and
// adding the time it waited to its flight.
type waiter struct {
	watch *lock.Watch // nil without a Locker
	until time.Time
	fl    *flight
	limit time.Duration
}

// newWaiter starts watching id before the caller looks at its state, so
// that no announcement in between is missed.
func (r *Refresher) newWaiter(ctx context.Context, id string, fl *flight) (*waiter, error) {
	w := &waiter{until: time.Now().Add(r.cfg.waitTimeout), fl: fl, limit: r.cfg.waitTimeout}
	if r.locker != nil {
		watch, err := r.locker.Watch(ctx, id)
		if err != nil {
			return nil, r.storeErr(ctx, err)
		}
		w.watch = watch
	}
	return w, nil
}

func (w *waiter) stop() {
	if w.watch != nil {
		w.watch.Stop()
	}
}

// wait returns when there may be news, or an ErrTemporary error once the
// wait timeout has passed (what names the awaited work) or ctx has ended.
func (w *waiter) wait(ctx context.Context, what string) error {
	if time.Now().After(w.until) {
		return fmt.Errorf("%w: waited %v for another worker's %s", ErrTemporary, w.limit, what)
	}
	if w.watch == nil { // without a Locker nobody else can hold the work
		return fmt.Errorf("%w: no Locker to wait for the %s with", ErrTemporary, what)
	}
	wctx, cancel := context.WithDeadline(ctx, w.until)
	defer cancel()
	began := time.Now()
	err := w.watch.Wait(wctx)
	w.fl.waited += time.Since(began)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ErrTemporary, err)
	}
	return nil
}

// tryLock takes the token's lock without waiting; without a Locker the
// singleflight already made this goroutine the only one.
func (r *Refresher) tryLock(ctx context.Context, id string) (*lock.Lock, error) {
	if r.locker == nil {
		return nil, nil
	}
	return r.locker.TryObtain(ctx, id, r.cfg.lockTTL)
}

// Notes the fleet keeps about a token's last refresh, in the lock's
// cooldown key: "dead <version>" after a rejected grant, "cool <version>"
// after a transient failure, "done <id>" once a query's grant or refresh
// token made token <id>.
const (
	noteDead = "dead"
	noteCool = "cool"
	noteDone = "done"
)

// checkNote applies the fleet's note about cur, if any: a dead token is
// ErrInvalidGrant, a cooling one is returned while still valid and is
// ErrTemporary otherwise. done is false when the note does not apply.
func (r *Refresher) checkNote(ctx context.Context, cur tokencache.Token) (tokencache.Token, error, bool) {
	text, err := r.readNote(ctx, cur.ID)
	if err != nil {
		return tokencache.Token{}, r.storeErr(ctx, err), true
	}
	kind, arg, _ := strings.Cut(text, " ")
	if arg != strconv.FormatInt(cur.Version, 10) {
		return tokencache.Token{}, nil, false // about an older revision
	}
	switch kind {
	case noteDead:
		return tokencache.Token{}, fmt.Errorf("%w: token %s was rejected by the authorization server", ErrInvalidGrant, cur.ID), true
	case noteCool:
		if cur.AccessToken != "" && !cur.ExpiresWithin(r.cfg.now(), 0) {
			return cur, nil, true
		}
		return tokencache.Token{}, fmt.Errorf("%w: the last refresh of token %s failed; retrying after the cooldown", ErrTemporary, cur.ID), true
	}
	return tokencache.Token{}, nil, false
}

// renewHolding renews the token while holding its lock (nil without a
// Locker), and releases the lock.
func (r *Refresher) renewHolding(ctx context.Context, held *lock.Lock, id string, fl *flight) (tokencache.Token, error) {
	defer func() {
		if held != nil {
			_ = held.Release(context.WithoutCancel(ctx))
		}
	}()
	// Read again under the lock: the previous holder may have just renewed it.
	cur, err := r.store.FindTokenByID(ctx, id)
	if err != nil {
		return tokencache.Token{}, r.storeErr(ctx, err)
	}
	if r.due(cur, r.cfg.now()) == fresh {
		return cur, nil
	}
	if tok, err, done := r.checkNote(ctx, cur); done {
		fl.stale = err == nil
		return tok, err
	}
	renewed, err := r.callEndpoint(ctx, cur)
	if err != nil {
		return r.failed(ctx, cur, err, fl)
	}
	renewed.ID, renewed.Version = cur.ID, cur.Version
	if err := r.save(ctx, held, &renewed); err != nil {
		if errors.Is(err, tokencache.ErrConflict) {
			// Someone else saved first (our lock expired): theirs wins.
			if latest, lerr := r.store.FindTokenByID(ctx, id); lerr == nil && r.due(latest, r.cfg.now()) != expired {
				return latest, nil
			}
		}
		return tokencache.Token{}, r.storeErr(ctx, err)
	}
	r.announce(ctx, id)
	fl.refreshed = true
	return renewed, nil
}

// callEndpoint renews cur: a refresh when it has a refresh token, else the
// exchange of its grant token.
func (r *Refresher) callEndpoint(ctx context.Context, cur tokencache.Token) (tokencache.Token, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.refreshTimeout)
	defer cancel()
	exchange := cur.RefreshToken == ""
	if r.cfg.obs == nil {
		return r.endpointCall(ctx, cur, exchange)
	}
	ctx, done := r.cfg.obs.RefreshCall(ctx, cur.ID, exchange)
	t, err := r.endpointCall(ctx, cur, exchange)
	switch {
	case err == nil:
		done(OutcomeOK, nil)
	case errors.Is(err, ErrInvalidGrant):
		done(OutcomeInvalidGrant, err)
	default:
		done(OutcomeError, err)
	}
	return t, err
}

func (r *Refresher) endpointCall(ctx context.Context, cur tokencache.Token, exchange bool) (tokencache.Token, error) {
	if exchange {
		return r.ep.Exchange(ctx, cur)
	}
	return r.ep.Refresh(ctx, cur)
}

// failed handles an endpoint error for cur: a rejected grant is noted as
// dead for the fleet, anything else starts the cooldown.
func (r *Refresher) failed(ctx context.Context, cur tokencache.Token, cause error, fl *flight) (tokencache.Token, error) {
	version := strconv.FormatInt(cur.Version, 10)
	if errors.Is(cause, ErrInvalidGrant) {
		// A holder whose lock expired may have renewed it meanwhile, spending
		// the refresh token we just sent: then the store has its result.
		if latest, err := r.store.FindTokenByID(ctx, cur.ID); err == nil && latest.Version != cur.Version && r.due(latest, r.cfg.now()) != expired {
			return latest, nil
		}
		_ = r.writeNote(ctx, cur.ID, noteDead+" "+version, r.cfg.deadMemory)
		r.announce(ctx, cur.ID)
		return tokencache.Token{}, fmt.Errorf("refresher: token %s: %w", cur.ID, cause)
	}
	_ = r.writeNote(ctx, cur.ID, noteCool+" "+version, r.cfg.cooldown)
	r.announce(ctx, cur.ID)
	if cur.AccessToken != "" && !cur.ExpiresWithin(r.cfg.now(), 0) {
		fl.stale = true
		return cur, nil // still valid: serve it through the outage
	}
	return tokencache.Token{}, fmt.Errorf("%w: refreshing token %s: %w", ErrTemporary, cur.ID, cause)
}

// save stores a renewed token with the revision it was read at, fenced by
// the lock when the store can check it.
func (r *Refresher) save(ctx context.Context, held *lock.Lock, t *tokencache.Token) error {
	if held == nil {
		return r.store.SaveToken(ctx, t)
	}
	if ls, ok := r.store.(lockedSaver); ok {
		return ls.SaveTokenIfLocked(ctx, t, held.Key(), held.Token())
	}
	if err := held.Check(ctx); err != nil {
		return fmt.Errorf("%w: %w", tokencache.ErrConflict, err)
	}
	return r.store.SaveToken(ctx, t)
}

// announce wakes the token's waiters in every process.
func (r *Refresher) announce(ctx context.Context, id string) {
	if r.locker != nil {
		_ = r.locker.NotifyRefreshed(ctx, id)
	}
}

func (r *Refresher) readNote(ctx context.Context, id string) (string, error) {
	if r.locker != nil {
		return r.locker.Cooldown(ctx, id)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.notes[id]
	if !ok || time.Now().After(n.until) {
		delete(r.notes, id)
		return "", nil
	}
	return n.text, nil
}

func (r *Refresher) writeNote(ctx context.Context, id, text string, d time.Duration) error {
	if r.locker != nil {
		return r.locker.SetCooldown(ctx, id, text, d)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes[id] = note{text: text, until: time.Now().Add(d)}
	return nil
}

// acquire makes the first token for a query that matched nothing.
func (r *Refresher) acquire(ctx context.Context, query tokencache.Token) (tokencache.Token, Result, error) {
	switch {
	case query.GrantToken != "" || query.RefreshToken != "":
		key := pseudoID(query)
		return r.share(ctx, key, func(ctx context.Context, fl *flight) (tokencache.Token, error) {
			return r.acquireOnce(ctx, key, query, fl)
		})
	case tokencache.RuleOf(query) == tokencache.RuleAccessToken:
		t := query
		if err := r.store.SaveToken(ctx, &t); err != nil {
			return tokencache.Token{}, ResultError, r.storeErr(ctx, err)
		}
		return t, ResultFresh, nil
	default:
		return tokencache.Token{}, ResultError, fmt.Errorf("refresher: %s matches no token and has no grant or refresh token to make one: %w",
			tokencache.RuleOf(query), tokencache.ErrNotFound)
	}
}

// pseudoID names the lock of a query that has no token yet: a digest of its
// grant or refresh token and client, never the secret itself.
func pseudoID(query tokencache.Token) string {
	secret := "refresh\x00" + query.RefreshToken
	if query.GrantToken != "" {
		secret = "grant\x00" + query.GrantToken
	}
	h := sha256.New()
	fmt.Fprintf(h, "%d:%s\x00", len(query.ClientID), query.ClientID)
	h.Write([]byte(secret))
	return "q" + hex.EncodeToString(h.Sum(nil)[:16])
}

// acquireOnce exchanges or refreshes the query's secret under the lock of
// its pseudo ID, once across the fleet: grant codes are single-use and a
// rotating server accepts a refresh token once. Whoever comes later finds
// the saved token, through the store or through the "done" note.
func (r *Refresher) acquireOnce(ctx context.Context, key string, query tokencache.Token, fl *flight) (tokencache.Token, error) {
	w, err := r.newWaiter(ctx, key, fl)
	if err != nil {
		return tokencache.Token{}, err
	}
	defer w.stop()
	for {
		if tok, err, done := r.acquired(ctx, key, query, fl); done {
			return tok, err
		}
		held, err := r.tryLock(ctx, key)
		if err == nil {
			return r.acquireHolding(ctx, held, key, query, fl)
		}
		if !errors.Is(err, lock.ErrNotObtained) {
			return tokencache.Token{}, r.storeErr(ctx, err)
		}
		if err := w.wait(ctx, "token exchange"); err != nil {
			return tokencache.Token{}, err
		}
	}
}

// acquired reports what became of the query's secret: the token it made, or
// that the server rejected it. done is false when nobody has used it yet.
func (r *Refresher) acquired(ctx context.Context, key string, query tokencache.Token, fl *flight) (tokencache.Token, error, bool) {
	tok, err := r.store.FindToken(ctx, query)
	if err == nil {
		return tok, nil, true
	}
	if !errors.Is(err, tokencache.ErrNotFound) {
		return tokencache.Token{}, r.storeErr(ctx, err), true
	}
	text, err := r.readNote(ctx, key)
	if err != nil {
		return tokencache.Token{}, r.storeErr(ctx, err), true
	}
	kind, arg, _ := strings.Cut(text, " ")
	switch kind {
	case noteDone:
		tok, err := r.store.FindTokenByID(ctx, arg)
		if err != nil {
			return tokencache.Token{}, r.storeErr(ctx, err), true
		}
		return r.freshOrRenewed(ctx, tok, fl)
	case noteDead:
		return tokencache.Token{}, fmt.Errorf("refresher: the %s was rejected by the authorization server: %w", tokencache.RuleOf(query), ErrInvalidGrant), true
	case noteCool:
		return tokencache.Token{}, fmt.Errorf("%w: the last %s attempt failed; retrying after the cooldown", ErrTemporary, tokencache.RuleOf(query)), true
	}
	return tokencache.Token{}, nil, false
}

// freshOrRenewed returns tok, renewed first when it is due: a later caller
// of an old refresh token gets the token that refresh token became.
func (r *Refresher) freshOrRenewed(ctx context.Context, tok tokencache.Token, fl *flight) (tokencache.Token, error, bool) {
	if r.due(tok, r.cfg.now()) != expired {
		return tok, nil, true
	}
	t, err := r.renew(ctx, tok.ID, true, fl)
	return t, err, true
}

// acquireHolding makes the query's token while holding the pseudo ID's lock.
func (r *Refresher) acquireHolding(ctx context.Context, held *lock.Lock, key string, query tokencache.Token, fl *flight) (tokencache.Token, error) {
	defer func() {
		if held != nil {
			_ = held.Release(context.WithoutCancel(ctx))
		}
	}()
	if tok, err, done := r.acquired(ctx, key, query, fl); done {
		return tok, err
	}
	seed := query
	seed.AccessToken, seed.Expiry, seed.Version = "", time.Time{}, 0
	if seed.GrantToken != "" {
		seed.RefreshToken = "" // a grant is exchanged, not refreshed
	}
	made, err := r.callEndpoint(ctx, seed)
	if err != nil {
		if errors.Is(err, ErrInvalidGrant) {
			_ = r.writeNote(ctx, key, noteDead, r.cfg.deadMemory)
			r.announce(ctx, key)
			return tokencache.Token{}, fmt.Errorf("refresher: %s: %w", tokencache.RuleOf(query), err)
		}
		_ = r.writeNote(ctx, key, noteCool, r.cfg.cooldown)
		r.announce(ctx, key)
		return tokencache.Token{}, fmt.Errorf("%w: %s: %w", ErrTemporary, tokencache.RuleOf(query), err)
	}
	if err := r.store.SaveToken(ctx, &made); err != nil {
		return tokencache.Token{}, r.storeErr(ctx, err)
	}
	_ = r.writeNote(ctx, key, noteDone+" "+made.ID, r.cfg.deadMemory)
	r.announce(ctx, key)
	fl.refreshed = true
	return made, nil
}
