package refresher_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/lock"
	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/refresher"
)

// clock is a test clock shared by the refreshers and the endpoint: it
// decides when tokens are due, so expiry rounds take no wall time. Locks and
// Redis TTLs still run on real time.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// fakeEndpoint is an authorization server that rotates refresh tokens and
// rejects a reused one, so that a second refresh of the same token shows up
// as an invalid_grant.
type fakeEndpoint struct {
	clock    *clock
	lifetime time.Duration
	delay    time.Duration                  // each call takes this long
	block    chan struct{}                  // when set, calls wait until it is closed
	fail     func(call int64) (error, bool) // when it returns true, the call fails with that error
	started  chan struct{}                  // when set, receives one value per call, if anyone listens
	noRT     bool                           // Exchange answers without a refresh token
	refresh  atomic.Int64                   // Refresh calls
	exchange atomic.Int64                   // Exchange calls
	reuses   atomic.Int64                   // refresh tokens presented twice
	mu       sync.Mutex                     // guards live and grants
	live     map[string]bool                // refresh tokens the server accepts
	grants   map[string]bool                // grant codes not yet used
}

func newEndpoint(c *clock) *fakeEndpoint {
	return &fakeEndpoint{clock: c, lifetime: time.Hour, live: map[string]bool{"r0": true}, grants: map[string]bool{}}
}

func (e *fakeEndpoint) wait(ctx context.Context) error {
	if e.started != nil {
		select {
		case e.started <- struct{}{}:
		default:
		}
	}
	if e.block != nil {
		select {
		case <-e.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if e.delay > 0 {
		select {
		case <-time.After(e.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (e *fakeEndpoint) Refresh(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	n := e.refresh.Add(1)
	if err := e.wait(ctx); err != nil {
		return t, err
	}
	if e.fail != nil {
		if err, ok := e.fail(n); ok {
			return t, err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.live[t.RefreshToken] {
		e.reuses.Add(1)
		return t, fmt.Errorf("fake server: refresh token reused: %w", refresher.ErrInvalidGrant)
	}
	delete(e.live, t.RefreshToken)
	t.RefreshToken = fmt.Sprint("r", n)
	e.live[t.RefreshToken] = true
	t.AccessToken = fmt.Sprint("a", n)
	t.Expiry = e.clock.Now().Add(e.lifetime)
	return t, nil
}

func (e *fakeEndpoint) Exchange(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	n := e.exchange.Add(1)
	if err := e.wait(ctx); err != nil {
		return t, err
	}
	if e.fail != nil {
		if err, ok := e.fail(n); ok {
			return t, err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.grants[t.GrantToken] {
		return t, fmt.Errorf("fake server: grant code used or unknown: %w", refresher.ErrInvalidGrant)
	}
	delete(e.grants, t.GrantToken)
	if !e.noRT {
		t.RefreshToken = fmt.Sprint("xr", n)
		e.live[t.RefreshToken] = true
	}
	t.AccessToken = fmt.Sprint("xa", n)
	t.Expiry = e.clock.Now().Add(e.lifetime)
	return t, nil
}

// fleet is a set of workers sharing one Redis namespace, each with its own
// client, store, Locker and Refresher, as separate processes would have.
type fleet struct {
	target  *redistest.Target
	ns      string
	ep      *fakeEndpoint
	clock   *clock
	workers []*refresher.Refresher
	stores  []*redisstore.Store
	lockers []*lock.Locker
}

func newFleet(t *testing.T, n int, ep *fakeEndpoint, lockOpts []lock.Option, opts ...refresher.Option) *fleet {
	t.Helper()
	tg := redistest.New(t).ExpireOnWallClock()
	f := &fleet{target: tg, ns: redistest.Namespace(t), ep: ep, clock: ep.clock}
	redistest.DropNamespaceAtCleanup(t, tg.Client(t), f.ns)
	for range n {
		rdb := tg.Client(t)
		store := redisstore.New(rdb, redisstore.WithNamespace(f.ns))
		locker := lock.New(rdb, append([]lock.Option{lock.WithNamespace(f.ns), lock.WithPollInterval(50 * time.Millisecond)}, lockOpts...)...)
		t.Cleanup(func() { _ = locker.Close() })
		r := refresher.New(store, locker, ep, append([]refresher.Option{refresher.WithClock(ep.clock.Now)}, opts...)...)
		t.Cleanup(func() { _ = r.Close() })
		f.workers = append(f.workers, r)
		f.stores = append(f.stores, store)
		f.lockers = append(f.lockers, locker)
	}
	t.Cleanup(func() { _ = f.stores[0].DeleteTokens(context.Background()) })
	return f
}

// seed saves the token the fleet shares: user u of client c, refresh token
// r0, valid for an hour on the test clock.
func (f *fleet) seed(t *testing.T) tokencache.Token {
	t.Helper()
	tok := tokencache.Token{UserName: "u", ClientID: "c", ClientSecret: "s", RefreshToken: "r0", AccessToken: "a0", Expiry: f.clock.Now().Add(time.Hour)}
	if err := f.stores[0].SaveToken(context.Background(), &tok); err != nil {
		t.Fatal(err)
	}
	return tok
}

var userQuery = tokencache.Token{UserName: "u", ClientID: "c"}

// callAll makes perWorker concurrent Token calls on every worker, all
// released at once, and returns the results.
func (f *fleet) callAll(ctx context.Context, perWorker int, query tokencache.Token) ([]tokencache.Token, []error) {
	n := len(f.workers) * perWorker
	toks := make([]tokencache.Token, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		w := f.workers[i%len(f.workers)]
		wg.Go(func() {
			<-start
			toks[i], errs[i] = w.Token(ctx, query)
		})
	}
	close(start)
	wg.Wait()
	return toks, errs
}

func TestStampedeOneRefreshPerExpiry(t *testing.T) {
	ep := newEndpoint(newClock())
	f := newFleet(t, 8, ep, nil)
	f.seed(t)
	const rounds = 10
	for round := int64(1); round <= rounds; round++ {
		f.clock.Advance(2 * time.Hour) // the current token is now expired
		toks, errs := f.callAll(context.Background(), 50, userQuery)
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: caller %d: %v", round, i, err)
			}
			if want := fmt.Sprint("a", round); toks[i].AccessToken != want {
				t.Fatalf("round %d: caller %d got access token %q, want %q", round, i, toks[i].AccessToken, want)
			}
		}
		if got := ep.refresh.Load(); got != round {
			t.Fatalf("after %d expiries the endpoint was called %d times", round, got)
		}
	}
	if ep.reuses.Load() != 0 {
		t.Errorf("%d refresh tokens were presented twice", ep.reuses.Load())
	}
}

func TestStampedeWithoutLocker(t *testing.T) {
	ep := newEndpoint(newClock())
	tg := redistest.New(t).ExpireOnWallClock()
	ns := redistest.Namespace(t)
	redistest.DropNamespaceAtCleanup(t, tg.Client(t), ns)
	store := redisstore.New(tg.Client(t), redisstore.WithNamespace(ns))
	t.Cleanup(func() { _ = store.DeleteTokens(context.Background()) })
	r := refresher.New(store, nil, ep, refresher.WithClock(ep.clock.Now))
	f := &fleet{ep: ep, clock: ep.clock, workers: []*refresher.Refresher{r}, stores: []*redisstore.Store{store}}
	f.seed(t)
	for round := int64(1); round <= 3; round++ {
		f.clock.Advance(2 * time.Hour)
		_, errs := f.callAll(context.Background(), 100, userQuery)
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if got := ep.refresh.Load(); got != round {
			t.Fatalf("after %d expiries the endpoint was called %d times", round, got)
		}
	}
}

func TestSlowRefreshOutlastingTheLockTTL(t *testing.T) {
	ep := newEndpoint(newClock())
	const ttl = 300 * time.Millisecond
	ep.delay = 3*ttl + 100*time.Millisecond
	f := newFleet(t, 4, ep, nil, refresher.WithLockTTL(ttl))
	seeded := f.seed(t)
	f.clock.Advance(2 * time.Hour)
	toks, errs := f.callAll(context.Background(), 20, userQuery)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		if tok.AccessToken != "a1" {
			t.Fatalf("a caller got %q, want a1", tok.AccessToken)
		}
	}
	if got := ep.refresh.Load(); got != 1 {
		t.Errorf("a refresh that outlasted 3 lock TTLs was made %d times, want 1", got)
	}
	stored, err := f.stores[0].FindTokenByID(context.Background(), seeded.ID)
	if err != nil || stored.AccessToken != "a1" || stored.Version != seeded.Version+1 {
		t.Errorf("stored after the slow refresh: %v (version %d), %v; want a1 at version %d", stored.AccessToken, stored.Version, err, seeded.Version+1)
	}
}

func TestInvalidGrantReachesEveryWaiterOnce(t *testing.T) {
	ep := newEndpoint(newClock())
	ep.delay = 50 * time.Millisecond
	ep.fail = func(int64) (error, bool) {
		return fmt.Errorf("fake server: %w", refresher.ErrInvalidGrant), true
	}
	f := newFleet(t, 8, ep, nil)
	f.seed(t)
	f.clock.Advance(2 * time.Hour)
	_, errs := f.callAll(context.Background(), 20, userQuery)
	for i, err := range errs {
		if !errors.Is(err, refresher.ErrInvalidGrant) {
			t.Fatalf("caller %d: %v, want ErrInvalidGrant", i, err)
		}
		if errors.Is(err, tokencache.ErrNotFound) || errors.Is(err, refresher.ErrTemporary) {
			t.Fatalf("caller %d: %v also wraps ErrNotFound or ErrTemporary", i, err)
		}
	}
	if got := ep.refresh.Load(); got != 1 {
		t.Errorf("the endpoint was called %d times for one dead token, want 1", got)
	}
	// The dead token is not sent again.
	_, errs = f.callAll(context.Background(), 5, userQuery)
	for _, err := range errs {
		if !errors.Is(err, refresher.ErrInvalidGrant) {
			t.Fatalf("later caller: %v, want ErrInvalidGrant", err)
		}
	}
	if got := ep.refresh.Load(); got != 1 {
		t.Errorf("the dead token was retried: %d calls", got)
	}
}

func TestTransientFailureServesValidTokenAndCoolsDown(t *testing.T) {
	ep := newEndpoint(newClock())
	ep.fail = func(int64) (error, bool) { return errors.New("fake server: 503 service unavailable"), true }
	const cooldown = 200 * time.Millisecond
	f := newFleet(t, 4, ep, nil, refresher.WithCooldown(cooldown))
	seeded := f.seed(t)
	// Inside the refresh window, still valid for 30 s.
	f.clock.Advance(time.Hour - 30*time.Second)
	start := time.Now()
	const duration = time.Second
	var calls atomic.Int64
	var wg sync.WaitGroup
	for _, w := range f.workers {
		for range 10 {
			wg.Go(func() {
				for time.Since(start) < duration {
					tok, err := w.Token(context.Background(), userQuery)
					calls.Add(1)
					if err != nil || tok.AccessToken != seeded.AccessToken {
						t.Errorf("caller with a valid token got %q, %v", tok.AccessToken, err)
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	max := int64(elapsed/cooldown) + 2
	if got := ep.refresh.Load(); got > max || got < 1 {
		t.Errorf("%d callers made %d calls in %v and the endpoint was called %d times; want 1..%d (one per cooldown)",
			40, calls.Load(), elapsed.Round(time.Millisecond), got, max)
	}

	// Once the token has expired, callers get a transient error that wraps
	// the cause, and still do not hammer the server.
	f.clock.Advance(time.Minute)
	before := ep.refresh.Load()
	_, errs := f.callAll(context.Background(), 10, userQuery)
	for i, err := range errs {
		if !errors.Is(err, refresher.ErrTemporary) || errors.Is(err, refresher.ErrInvalidGrant) || errors.Is(err, tokencache.ErrNotFound) {
			t.Fatalf("caller %d with an expired token: %v, want only ErrTemporary", i, err)
		}
	}
	if got := ep.refresh.Load() - before; got > 1 {
		t.Errorf("%d callers with an expired token made %d endpoint calls inside one cooldown, want at most 1", len(errs), got)
	}
}

func TestCanceledCallerDoesNotCancelTheRefresh(t *testing.T) {
	ep := newEndpoint(newClock())
	ep.block = make(chan struct{})
	ep.started = make(chan struct{}, 1)
	f := newFleet(t, 2, ep, nil)
	seeded := f.seed(t)
	f.clock.Advance(2 * time.Hour)

	patient := make(chan error, 1)
	go func() {
		tok, err := f.workers[1].Token(context.Background(), userQuery)
		if err == nil && tok.AccessToken != "a1" {
			err = fmt.Errorf("got %q, want a1", tok.AccessToken)
		}
		patient <- err
	}()
	impatient := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, err := f.workers[0].Token(ctx, userQuery)
		impatient <- err
	}()
	<-ep.started // somebody is refreshing
	cancel()
	select {
	case err := <-impatient:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("canceled caller got %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a canceled caller did not return")
	}
	close(ep.block) // the refresh completes
	select {
	case err := <-patient:
		if err != nil {
			t.Errorf("waiting caller: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting caller never got the refreshed token")
	}
	stored, err := f.stores[0].FindTokenByID(context.Background(), seeded.ID)
	if err != nil || stored.AccessToken != "a1" {
		t.Errorf("stored token %q, %v; want a1", stored.AccessToken, err)
	}
	if got := ep.refresh.Load(); got != 1 {
		t.Errorf("endpoint called %d times, want 1", got)
	}
}

func TestInsideTheWindowNobodyWaits(t *testing.T) {
	ep := newEndpoint(newClock())
	ep.block = make(chan struct{})
	ep.started = make(chan struct{}, 1)
	f := newFleet(t, 4, ep, nil)
	seeded := f.seed(t)
	f.clock.Advance(time.Hour - 30*time.Second) // 30 s left, inside the 60 s window

	// The endpoint blocks until the test says so: any caller that waited for
	// the refresh would hang here.
	done := make(chan struct{})
	go func() {
		defer close(done)
		toks, errs := f.callAll(context.Background(), 25, userQuery)
		for i := range toks {
			if errs[i] != nil || toks[i].AccessToken != seeded.AccessToken {
				t.Errorf("caller %d inside the window: %q, %v", i, toks[i].AccessToken, errs[i])
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		close(ep.block)
		t.Fatal("callers inside the refresh window waited for the refresh")
	}
	select {
	case <-ep.started:
	case <-time.After(5 * time.Second):
		t.Fatal("no background refresh started")
	}
	close(ep.block)
	// The background refresh lands.
	deadline := time.Now().Add(10 * time.Second)
	for {
		tok, err := f.workers[0].Token(context.Background(), userQuery)
		if err == nil && tok.AccessToken == "a1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("background refresh never landed: %q, %v", tok.AccessToken, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := ep.refresh.Load(); got != 1 {
		t.Errorf("background refreshes: %d, want 1", got)
	}
}

func TestGrantTokenIsExchangedOnce(t *testing.T) {
	ep := newEndpoint(newClock())
	ep.delay = 20 * time.Millisecond
	ep.grants["g1"] = true
	f := newFleet(t, 8, ep, nil)
	query := tokencache.Token{GrantToken: "g1", ClientID: "c", ClientSecret: "s", RedirectURL: "https://app/cb"}
	toks, errs := f.callAll(context.Background(), 20, query)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		if tok.ID != toks[0].ID || tok.AccessToken != "xa1" {
			t.Fatalf("callers got different tokens: %s %q vs %s", tok.ID, tok.AccessToken, toks[0].ID)
		}
	}
	if got := ep.exchange.Load(); got != 1 {
		t.Fatalf("a single-use grant code was exchanged %d times", got)
	}
	// Later, the same grant finds the saved token.
	tok, err := f.workers[3].Token(context.Background(), query)
	if err != nil || tok.ID != toks[0].ID {
		t.Errorf("later call with the grant: %v, %v", tok.ID, err)
	}
	if all, _ := f.stores[0].GetTokens(context.Background()); len(all) != 1 {
		t.Errorf("store holds %d tokens, want 1", len(all))
	}
	// A used grant code that the store does not know is rejected.
	_, err = f.workers[0].Token(context.Background(), tokencache.Token{GrantToken: "never-issued", ClientID: "c"})
	if !errors.Is(err, refresher.ErrInvalidGrant) {
		t.Errorf("unknown grant: %v, want ErrInvalidGrant", err)
	}
}

func TestRefreshTokenQueryIsRefreshedOnce(t *testing.T) {
	ep := newEndpoint(newClock())
	ep.delay = 20 * time.Millisecond
	f := newFleet(t, 8, ep, nil)
	query := tokencache.Token{RefreshToken: "r0", ClientID: "c", ClientSecret: "s"}
	toks, errs := f.callAll(context.Background(), 10, query)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		if tok.ID != toks[0].ID {
			t.Fatalf("callers got tokens %s and %s", tok.ID, toks[0].ID)
		}
	}
	if got := ep.refresh.Load(); got != 1 {
		t.Fatalf("refreshed %d times, want 1", got)
	}
	// The old refresh token was rotated away; asking with it again gives
	// the token it became instead of a second, doomed refresh.
	tok, err := f.workers[5].Token(context.Background(), query)
	if err != nil || tok.ID != toks[0].ID {
		t.Errorf("later call with the rotated refresh token: %v, %v", tok.ID, err)
	}
	if got := ep.refresh.Load(); got != 1 || ep.reuses.Load() != 0 {
		t.Errorf("refreshes %d, reuses %d; want 1, 0", got, ep.reuses.Load())
	}
}

func TestAccessTokenAloneIsSavedAsGiven(t *testing.T) {
	ep := newEndpoint(newClock())
	f := newFleet(t, 1, ep, nil)
	query := tokencache.Token{AccessToken: "only-access", Expiry: time.Now().Add(time.Hour)}
	tok, err := f.workers[0].Token(context.Background(), query)
	if err != nil || tok.ID == "" || tok.AccessToken != "only-access" {
		t.Fatalf("Token = %v, %v", tok, err)
	}
	again, err := f.stores[0].FindToken(context.Background(), tokencache.Token{AccessToken: "only-access"})
	if err != nil || again.ID != tok.ID {
		t.Errorf("saved token: %v, %v", again.ID, err)
	}
	if ep.refresh.Load()+ep.exchange.Load() != 0 {
		t.Errorf("an access token alone called the endpoint")
	}
}

func TestFindByIDAndUser(t *testing.T) {
	ep := newEndpoint(newClock())
	f := newFleet(t, 1, ep, nil)
	seeded := f.seed(t)
	f.clock.Advance(2 * time.Hour)
	tok, err := f.workers[0].Token(context.Background(), tokencache.Token{ID: seeded.ID})
	if err != nil || tok.AccessToken != "a1" {
		t.Fatalf("by ID: %q, %v", tok.AccessToken, err)
	}
	tok, err = f.workers[0].Token(context.Background(), userQuery)
	if err != nil || tok.AccessToken != "a1" {
		t.Fatalf("by user: %q, %v", tok.AccessToken, err)
	}
	_, err = f.workers[0].Token(context.Background(), tokencache.Token{UserName: "nobody", ClientID: "c"})
	if !errors.Is(err, tokencache.ErrNotFound) {
		t.Errorf("unknown user: %v, want ErrNotFound", err)
	}
	if _, err := f.workers[0].Token(context.Background(), tokencache.Token{}); !errors.Is(err, tokencache.ErrInvalidToken) {
		t.Errorf("empty query: %v, want ErrInvalidToken", err)
	}
}

func TestRedisDownIsTemporary(t *testing.T) {
	ep := newEndpoint(newClock())
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	r := refresher.New(redisstore.New(rdb), lock.New(rdb), ep)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := r.Token(ctx, userQuery)
	if !errors.Is(err, refresher.ErrTemporary) || errors.Is(err, tokencache.ErrNotFound) || errors.Is(err, refresher.ErrInvalidGrant) {
		t.Errorf("Token with Redis down = %v, want ErrTemporary only", err)
	}
}

func TestBadOptions(t *testing.T) {
	ep := newEndpoint(newClock())
	store := redisstore.New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}))
	for name, r := range map[string]*refresher.Refresher{
		"negative window": refresher.New(store, nil, ep, refresher.WithRefreshWindow(-1)),
		"jitter 1":        refresher.New(store, nil, ep, refresher.WithJitter(1)),
		"zero cooldown":   refresher.New(store, nil, ep, refresher.WithCooldown(0)),
		"zero wait":       refresher.New(store, nil, ep, refresher.WithWaitTimeout(0)),
		"nil endpoint":    refresher.New(store, nil, nil),
		"nil store":       refresher.New(nil, nil, ep),
	} {
		if _, err := r.Token(context.Background(), userQuery); !errors.Is(err, refresher.ErrBadOption) {
			t.Errorf("%s: %v, want ErrBadOption", name, err)
		}
	}
}

func TestShutdownWaitsForRefreshInFlight(t *testing.T) {
	ep := newEndpoint(newClock())
	ep.block = make(chan struct{})
	ep.started = make(chan struct{}, 1)
	f := newFleet(t, 1, ep, nil)
	seeded := f.seed(t)
	f.clock.Advance(2 * time.Hour)
	r := f.workers[0]

	caller := make(chan error, 1)
	go func() {
		_, err := r.Token(context.Background(), userQuery)
		caller <- err
	}()
	<-ep.started
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- r.Shutdown(ctx)
	}()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned while a refresh was in flight: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(ep.block)
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if err := <-caller; err != nil {
		t.Errorf("the caller whose refresh Shutdown waited for: %v", err)
	}
	stored, err := f.stores[0].FindTokenByID(context.Background(), seeded.ID)
	if err != nil || stored.AccessToken != "a1" {
		t.Errorf("the refresh in flight was not saved: %q, %v", stored.AccessToken, err)
	}

	// Once shut down, valid tokens are still served, but nothing is renewed.
	if tok, err := r.Token(context.Background(), userQuery); err != nil || tok.AccessToken != "a1" {
		t.Errorf("valid token after Shutdown: %q, %v", tok.AccessToken, err)
	}
	f.clock.Advance(2 * time.Hour)
	if _, err := r.Token(context.Background(), userQuery); !errors.Is(err, refresher.ErrTemporary) {
		t.Errorf("expired token after Shutdown: %v, want ErrTemporary", err)
	}
	if got := ep.refresh.Load(); got != 1 {
		t.Errorf("endpoint called %d times, want 1", got)
	}
}

func TestShutdownHonoursItsContext(t *testing.T) {
	ep := newEndpoint(newClock())
	ep.block = make(chan struct{})
	defer close(ep.block)
	ep.started = make(chan struct{}, 1)
	f := newFleet(t, 1, ep, nil)
	f.seed(t)
	f.clock.Advance(2 * time.Hour)
	go func() { _, _ = f.workers[0].Token(context.Background(), userQuery) }()
	<-ep.started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := f.workers[0].Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with a refresh stuck = %v, want DeadlineExceeded", err)
	}
}

func TestLocalCache(t *testing.T) {
	ep := newEndpoint(newClock())
	tg := redistest.New(t)
	rdb := tg.Client(t)
	counter := &commandCounter{}
	rdb.AddHook(counter)
	ns := redistest.Namespace(t)
	redistest.DropNamespaceAtCleanup(t, rdb, ns)
	store := redisstore.New(rdb, redisstore.WithNamespace(ns))
	t.Cleanup(func() { _ = store.DeleteTokens(context.Background()) })
	f := &fleet{ep: ep, clock: ep.clock, stores: []*redisstore.Store{store}}
	seeded := f.seed(t)
	r := refresher.New(store, nil, ep, refresher.WithClock(ep.clock.Now), refresher.WithLocalCache(time.Minute))

	for i := range 5 {
		tok, err := r.Token(context.Background(), userQuery)
		if err != nil || tok.AccessToken != seeded.AccessToken {
			t.Fatalf("call %d: %q, %v", i, tok.AccessToken, err)
		}
	}
	// The cache answers once it watches the store's changes.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		before := counter.n.Load()
		if _, err := r.Token(context.Background(), userQuery); err != nil {
			t.Fatal(err)
		}
		if counter.n.Load() == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the local cache does not answer 5 s after New")
		}
	}
	before := counter.n.Load()
	for range 100 {
		if _, err := r.Token(context.Background(), userQuery); err != nil {
			t.Fatal(err)
		}
	}
	if sent := counter.n.Load() - before; sent != 0 {
		t.Errorf("100 cached calls of a fresh token sent %d Redis commands, want 0", sent)
	}
	// A token that comes due is read from the store and renewed, never served
	// from the cache.
	f.clock.Advance(2 * time.Hour)
	tok, err := r.Token(context.Background(), userQuery)
	if err != nil || tok.AccessToken != "a1" {
		t.Errorf("after expiry: %q, %v; want the renewed a1", tok.AccessToken, err)
	}
}

// commandCounter is a go-redis hook that counts the commands sent.
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}
func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}
