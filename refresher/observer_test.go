package refresher_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/lock"
	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/refresher"
)

// Context keys an obsRecorder sets, so that the endpoint can check that a
// refresh runs under both the Token call's and the refresh's context.
type (
	obsTokenKey   struct{}
	obsRefreshKey struct{}
)

// obsRefresh is one reported Endpoint call.
type obsRefresh struct {
	id       string
	exchange bool
	outcome  refresher.Outcome
	err      error
}

// obsRecorder is a refresher.Observer that records what it is told.
type obsRecorder struct {
	mu        sync.Mutex // guards everything below
	results   []refresher.Result
	errs      []error
	refreshes []obsRefresh
	waits     []time.Duration
	open      int // Token and Endpoint calls started and not yet done
	twice     int // done functions called more than once
}

func (o *obsRecorder) TokenCall(ctx context.Context) (context.Context, func(refresher.Result, error)) {
	o.mu.Lock()
	o.open++
	o.mu.Unlock()
	done := false // guarded by o.mu
	return context.WithValue(ctx, obsTokenKey{}, true), func(r refresher.Result, err error) {
		o.mu.Lock()
		defer o.mu.Unlock()
		if done {
			o.twice++
			return
		}
		done = true
		o.open--
		o.results = append(o.results, r)
		o.errs = append(o.errs, err)
	}
}

func (o *obsRecorder) RefreshCall(ctx context.Context, id string, exchange bool) (context.Context, func(refresher.Outcome, error)) {
	o.mu.Lock()
	o.open++
	o.mu.Unlock()
	done := false // guarded by o.mu
	return context.WithValue(ctx, obsRefreshKey{}, true), func(out refresher.Outcome, err error) {
		o.mu.Lock()
		defer o.mu.Unlock()
		if done {
			o.twice++
			return
		}
		done = true
		o.open--
		o.refreshes = append(o.refreshes, obsRefresh{id, exchange, out, err})
	}
}

func (o *obsRecorder) LockWait(_ context.Context, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.waits = append(o.waits, d)
}

// snapshot returns copies of what was recorded so far.
func (o *obsRecorder) snapshot() ([]refresher.Result, []obsRefresh, []time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]refresher.Result(nil), o.results...), append([]obsRefresh(nil), o.refreshes...), append([]time.Duration(nil), o.waits...)
}

// count returns how many Token calls ended with result r.
func (o *obsRecorder) count(r refresher.Result) int {
	results, _, _ := o.snapshot()
	n := 0
	for _, got := range results {
		if got == r {
			n++
		}
	}
	return n
}

// checkClosed fails the test unless every call reported was done once.
func (o *obsRecorder) checkClosed(t *testing.T) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.open != 0 || o.twice != 0 {
		t.Errorf("%d calls never done, %d done twice", o.open, o.twice)
	}
}

// obsEndpoint wraps an Endpoint and counts the calls whose context lacks
// the marks of the Token call or of the refresh.
type obsEndpoint struct {
	refresher.Endpoint
	unmarked atomic.Int64
}

func (e *obsEndpoint) check(ctx context.Context) {
	if ctx.Value(obsTokenKey{}) == nil || ctx.Value(obsRefreshKey{}) == nil {
		e.unmarked.Add(1)
	}
}

func (e *obsEndpoint) Refresh(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	e.check(ctx)
	return e.Endpoint.Refresh(ctx, t)
}

func (e *obsEndpoint) Exchange(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	e.check(ctx)
	return e.Endpoint.Exchange(ctx, t)
}

// obsWorker is one worker of a fleet sharing a namespace, with its own
// client, store, Locker, Refresher and recorder.
type obsWorker struct {
	r     *refresher.Refresher
	store *redisstore.Store
	rec   *obsRecorder
}

func newObsWorkers(t *testing.T, n int, ep refresher.Endpoint, clk *clock) []*obsWorker {
	t.Helper()
	tg := redistest.New(t).ExpireOnWallClock() // locks and cooldowns expire as in a real Redis
	ns := redistest.Namespace(t)
	redistest.DropNamespaceAtCleanup(t, tg.Client(t), ns)
	var ws []*obsWorker
	for range n {
		rdb := tg.Client(t)
		store := redisstore.New(rdb, redisstore.WithNamespace(ns))
		locker := lock.New(rdb, lock.WithNamespace(ns), lock.WithPollInterval(50*time.Millisecond))
		t.Cleanup(func() { _ = locker.Close() })
		rec := &obsRecorder{}
		r := refresher.New(store, locker, ep, refresher.WithClock(clk.Now), refresher.WithJitter(0),
			refresher.WithObserver(rec), refresher.WithObserver(nil)) // nil is ignored
		t.Cleanup(func() { _ = r.Close() })
		ws = append(ws, &obsWorker{r: r, store: store, rec: rec})
	}
	t.Cleanup(func() { _ = ws[0].store.DeleteTokens(context.Background()) })
	return ws
}

// obsSeed saves a token for user, with this refresh token, expiring at exp.
func obsSeed(t *testing.T, s tokencache.Store, user, refresh string, exp time.Time) tokencache.Token {
	t.Helper()
	tok := tokencache.Token{UserName: user, ClientID: "c", ClientSecret: "s", RefreshToken: refresh, AccessToken: "a-" + user, Expiry: exp}
	if err := s.SaveToken(context.Background(), &tok); err != nil {
		t.Fatal(err)
	}
	return tok
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestObserverResults walks one worker through every result and outcome
// but the waits, which the tests below cover.
func TestObserverResults(t *testing.T) {
	ep := newEndpoint(newClock())
	var failNext atomic.Bool
	ep.fail = func(int64) (error, bool) {
		if failNext.Load() {
			return errors.New("fake server: HTTP 503"), true
		}
		return nil, false
	}
	ep.grants["g1"] = true
	oep := &obsEndpoint{Endpoint: ep}
	w := newObsWorkers(t, 1, oep, ep.clock)[0]
	ctx := context.Background()
	now := ep.clock.Now
	tok := obsSeed(t, w.store, "u", "r0", now().Add(time.Hour))

	last := func() (refresher.Result, error) {
		w.rec.mu.Lock()
		defer w.rec.mu.Unlock()
		return w.rec.results[len(w.rec.results)-1], w.rec.errs[len(w.rec.errs)-1]
	}
	lastRefresh := func() obsRefresh {
		_, refreshes, _ := w.rec.snapshot()
		if len(refreshes) == 0 {
			t.Fatal("no refresh reported")
		}
		return refreshes[len(refreshes)-1]
	}
	refreshCount := func() int {
		_, refreshes, _ := w.rec.snapshot()
		return len(refreshes)
	}
	call := func(name string, q tokencache.Token, want refresher.Result, wantErr error) tokencache.Token {
		t.Helper()
		got, err := w.r.Token(ctx, q)
		if (err != nil) != (wantErr != nil) || (wantErr != nil && !errors.Is(err, wantErr)) {
			t.Fatalf("%s: Token = %v, want error %v", name, err, wantErr)
		}
		res, rerr := last()
		if res != want || rerr != err {
			t.Errorf("%s: observer saw %q, %v; want %q, %v", name, res, rerr, want, err)
		}
		return got
	}

	call("fresh", userQuery, refresher.ResultFresh, nil)

	ep.clock.Advance(time.Hour - 30*time.Second) // inside the 60 s window
	call("stale", userQuery, refresher.ResultStaleServed, nil)
	eventually(t, "the background refresh", func() bool { return refreshCount() == 1 })
	if r := lastRefresh(); r.id != tok.ID || r.exchange || r.outcome != refresher.OutcomeOK || r.err != nil {
		t.Errorf("background refresh reported as %+v", r)
	}
	eventually(t, "the renewed token", func() bool {
		got, err := w.store.FindTokenByID(ctx, tok.ID)
		return err == nil && got.AccessToken != tok.AccessToken
	})
	call("fresh again", userQuery, refresher.ResultFresh, nil)

	obsSeed(t, w.store, "dead", "r-dead", now().Add(-time.Minute))
	call("invalid grant", tokencache.Token{UserName: "dead", ClientID: "c"}, refresher.ResultError, refresher.ErrInvalidGrant)
	if r := lastRefresh(); r.outcome != refresher.OutcomeInvalidGrant || !errors.Is(r.err, refresher.ErrInvalidGrant) {
		t.Errorf("rejected refresh reported as %+v", r)
	}

	down := obsSeed(t, w.store, "down", "r-down", now().Add(-time.Minute))
	failNext.Store(true)
	call("transient", tokencache.Token{UserName: "down", ClientID: "c"}, refresher.ResultError, refresher.ErrTemporary)
	failNext.Store(false)
	if r := lastRefresh(); r.id != down.ID || r.outcome != refresher.OutcomeError || r.err == nil || errors.Is(r.err, refresher.ErrInvalidGrant) {
		t.Errorf("failed refresh reported as %+v", r)
	}

	made := call("exchange", tokencache.Token{ClientID: "c", ClientSecret: "s", GrantToken: "g1"}, refresher.ResultRefreshed, nil)
	if r := lastRefresh(); r.id != "" || !r.exchange || r.outcome != refresher.OutcomeOK {
		t.Errorf("exchange reported as %+v", r)
	}
	call("exchanged token", tokencache.Token{ID: made.ID}, refresher.ResultFresh, nil)

	call("access token alone", tokencache.Token{AccessToken: "given", Expiry: now().Add(time.Hour)}, refresher.ResultFresh, nil)
	call("no token", tokencache.Token{UserName: "nobody", ClientID: "c"}, refresher.ResultError, tokencache.ErrNotFound)
	call("bad query", tokencache.Token{ClientID: "c"}, refresher.ResultError, tokencache.ErrInvalidToken)

	if _, _, waits := w.rec.snapshot(); len(waits) != 0 {
		t.Errorf("lock waits %v reported, want none", waits)
	}
	if n := refreshCount(); n != 4 {
		t.Errorf("%d refreshes reported, want 4", n)
	}
	if n := oep.unmarked.Load(); n != 0 {
		t.Errorf("%d endpoint calls without the Token call's or the refresh's context", n)
	}
	w.rec.checkClosed(t)
}

// TestObserverRefreshedAndWaitedInProcess has several goroutines of one
// process find the token expired: the one whose flight calls the endpoint
// is "refreshed", the others "waited", and each of those reports its wait.
func TestObserverRefreshedAndWaitedInProcess(t *testing.T) {
	ep := newEndpoint(newClock())
	ep.block = make(chan struct{})
	ep.started = make(chan struct{}, 10)
	w := newObsWorkers(t, 1, ep, ep.clock)[0]
	obsSeed(t, w.store, "u", "r0", ep.clock.Now().Add(time.Hour))
	ep.clock.Advance(2 * time.Hour)

	const callers = 5
	var wg sync.WaitGroup
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() { _, errs[i] = w.r.Token(context.Background(), userQuery) })
	}
	<-ep.started
	time.Sleep(200 * time.Millisecond) // every caller joins the flight
	close(ep.block)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
	if got := w.rec.count(refresher.ResultRefreshed); got != 1 {
		t.Errorf("%d callers refreshed, want 1", got)
	}
	if got := w.rec.count(refresher.ResultWaited); got != callers-1 {
		t.Errorf("%d callers waited, want %d", got, callers-1)
	}
	_, refreshes, waits := w.rec.snapshot()
	if len(refreshes) != 1 || refreshes[0].outcome != refresher.OutcomeOK {
		t.Errorf("refreshes reported: %+v, want one ok", refreshes)
	}
	if len(waits) != callers-1 {
		t.Errorf("%d lock waits reported, want %d", len(waits), callers-1)
	}
	for _, d := range waits {
		if d < 100*time.Millisecond {
			t.Errorf("a caller reported waiting %v, less than the refresh was held up", d)
		}
	}
	w.rec.checkClosed(t)
}

// TestObserverWaitedForAnotherWorker has worker B find the token expired
// while worker A refreshes it: B waits for A's lock and reports "waited"
// and its wait.
func TestObserverWaitedForAnotherWorker(t *testing.T) {
	ep := newEndpoint(newClock())
	ep.block = make(chan struct{})
	ep.started = make(chan struct{}, 10)
	ws := newObsWorkers(t, 2, ep, ep.clock)
	a, b := ws[0], ws[1]
	obsSeed(t, a.store, "u", "r0", ep.clock.Now().Add(time.Hour))
	ep.clock.Advance(2 * time.Hour)

	var wg sync.WaitGroup
	var errA, errB error
	wg.Go(func() { _, errA = a.r.Token(context.Background(), userQuery) })
	<-ep.started // A holds the lock and is in the endpoint
	wg.Go(func() { _, errB = b.r.Token(context.Background(), userQuery) })
	time.Sleep(300 * time.Millisecond) // B is waiting for the lock
	close(ep.block)
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("Token: A %v, B %v", errA, errB)
	}
	if got, _, _ := a.rec.snapshot(); len(got) != 1 || got[0] != refresher.ResultRefreshed {
		t.Errorf("A's results %v, want [refreshed]", got)
	}
	got, refreshes, waits := b.rec.snapshot()
	if len(got) != 1 || got[0] != refresher.ResultWaited {
		t.Errorf("B's results %v, want [waited]", got)
	}
	if len(refreshes) != 0 {
		t.Errorf("B reported refreshes %+v, want none", refreshes)
	}
	if len(waits) != 1 || waits[0] < 100*time.Millisecond {
		t.Errorf("B reported lock waits %v, want one of about 300ms", waits)
	}
	if n := ep.refresh.Load(); n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
	a.rec.checkClosed(t)
	b.rec.checkClosed(t)
}

// TestObserverWaiterGivesUp has a caller that joined a flight leave when
// its context ends: its result is an error and its wait is reported.
func TestObserverWaiterGivesUp(t *testing.T) {
	ep := newEndpoint(newClock())
	ep.block = make(chan struct{})
	ep.started = make(chan struct{}, 10)
	w := newObsWorkers(t, 1, ep, ep.clock)[0]
	obsSeed(t, w.store, "u", "r0", ep.clock.Now().Add(time.Hour))
	ep.clock.Advance(2 * time.Hour)

	var wg sync.WaitGroup
	var errLeader error
	wg.Go(func() { _, errLeader = w.r.Token(context.Background(), userQuery) })
	<-ep.started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := w.r.Token(ctx, userQuery); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Token with a short deadline = %v, want DeadlineExceeded", err)
	}
	if results, _, waits := w.rec.snapshot(); fmt.Sprint(results) != "[error]" || len(waits) != 1 || waits[0] < 50*time.Millisecond {
		t.Errorf("after giving up: results %v, waits %v; want [error] and one wait of about 100ms", results, waits)
	}
	close(ep.block)
	wg.Wait()
	if errLeader != nil {
		t.Fatal(errLeader)
	}
	if got := w.rec.count(refresher.ResultRefreshed); got != 1 {
		t.Errorf("%d callers refreshed, want 1", got)
	}
	w.rec.checkClosed(t)
}
