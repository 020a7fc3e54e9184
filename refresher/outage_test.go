package refresher_test

// Tests of a refresh that survives faults of the store (issue 9, points 1
// and 3).

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/refresher"
)

// errOutage is what a faultyStore answers while it is down.
var errOutage = errors.New("faulty store: connection refused")

// faultyStore is a redisstore.Store that can be made to fail (down) or to
// hang until the caller gives up (hang), as a Redis that refuses or stalls.
type faultyStore struct {
	*redisstore.Store
	down  atomic.Bool
	hang  atomic.Bool
	byID  atomic.Bool  // FindTokenByID fails: the reads of a renewal, not Token's first read
	saves atomic.Int64 // SaveToken calls
}

func (s *faultyStore) fault(ctx context.Context) error {
	if s.hang.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	if s.down.Load() {
		return errOutage
	}
	return nil
}

func (s *faultyStore) FindToken(ctx context.Context, q tokencache.Token) (tokencache.Token, error) {
	if err := s.fault(ctx); err != nil {
		return tokencache.Token{}, err
	}
	return s.Store.FindToken(ctx, q)
}

func (s *faultyStore) FindTokenByID(ctx context.Context, id string) (tokencache.Token, error) {
	if err := s.fault(ctx); err != nil {
		return tokencache.Token{}, err
	}
	if s.byID.Load() {
		return tokencache.Token{}, errOutage
	}
	return s.Store.FindTokenByID(ctx, id)
}

func (s *faultyStore) FindTokenFromRecord(ctx context.Context, q tokencache.Token) (tokencache.Token, error) {
	if err := s.fault(ctx); err != nil {
		return tokencache.Token{}, err
	}
	return s.Store.FindTokenFromRecord(ctx, q)
}

func (s *faultyStore) SaveToken(ctx context.Context, t *tokencache.Token) error {
	s.saves.Add(1)
	if err := s.fault(ctx); err != nil {
		return err
	}
	return s.Store.SaveToken(ctx, t)
}

// eventRecorder is an Observer that also counts Events.
type eventRecorder struct {
	obsRecorder
	mu     sync.Mutex // guards events
	events map[refresher.Event]int
}

func (e *eventRecorder) Event(_ context.Context, ev refresher.Event, _ error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.events == nil {
		e.events = make(map[refresher.Event]int)
	}
	e.events[ev]++
}

func (e *eventRecorder) count(ev refresher.Event) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.events[ev]
}

// faultyWorker replaces worker i of f by one whose store is faulty.
func faultyWorker(t *testing.T, f *fleet, i int, opts ...refresher.Option) (*refresher.Refresher, *faultyStore, *eventRecorder) {
	t.Helper()
	fs := &faultyStore{Store: f.stores[i]}
	rec := &eventRecorder{}
	r := refresher.New(fs, f.lockers[i], f.ep, append([]refresher.Option{refresher.WithClock(f.clock.Now), refresher.WithObserver(rec)}, opts...)...)
	t.Cleanup(func() { _ = r.Close() })
	f.workers[i] = r
	return r, fs, rec
}

// The store fails right after the server answered a refresh: the renewed
// token is served at once, its save is retried until the store is back,
// and no worker sends the refresh token the server retired meanwhile.
func TestSuccessorSurvivesAFailedSave(t *testing.T) {
	ep := newEndpoint(newClock())
	f := newFleet(t, 2, ep, nil)
	seeded := f.seed(t)
	r, fs, rec := faultyWorker(t, f, 0)
	f.clock.Advance(2 * time.Hour)

	ep.started = make(chan struct{}, 1)
	ep.block = make(chan struct{})
	got := make(chan error, 1)
	go func() {
		tok, err := r.Token(context.Background(), userQuery)
		if err == nil && tok.AccessToken != "a1" {
			err = errors.New("got " + tok.AccessToken + ", want a1")
		}
		got <- err
	}()
	<-ep.started
	fs.down.Store(true) // Redis goes away while the refresh is at the server
	close(ep.block)
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("the holder's caller: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the holder's caller did not get the renewed token at once")
	}
	// Its process keeps serving it while the store is down.
	if tok, err := r.Token(context.Background(), userQuery); err != nil || tok.AccessToken != "a1" {
		t.Errorf("during the outage: %q, %v; want a1", tok.AccessToken, err)
	}
	// Another worker (whose Redis works) must not send r0 again.
	other := make(chan error, 1)
	go func() {
		tok, err := f.workers[1].Token(context.Background(), userQuery)
		if err == nil && tok.AccessToken != "a1" {
			err = errors.New("got " + tok.AccessToken + ", want a1")
		}
		other <- err
	}()
	time.Sleep(500 * time.Millisecond)
	fs.down.Store(false)
	if err := <-other; err != nil {
		t.Errorf("the other worker: %v", err)
	}
	stored, err := f.stores[1].FindTokenByID(context.Background(), seeded.ID)
	if err != nil || stored.AccessToken != "a1" || stored.Version != seeded.Version+1 {
		t.Errorf("stored: %q at version %d, %v; want a1 at %d", stored.AccessToken, stored.Version, err, seeded.Version+1)
	}
	if ep.refresh.Load() != 1 || ep.reuses.Load() != 0 {
		t.Errorf("refreshes %d, reuses %d; want 1, 0", ep.refresh.Load(), ep.reuses.Load())
	}
	if rec.count(refresher.EventSaveRetry) == 0 {
		t.Errorf("no save_retry event")
	}
	deadline := time.Now().Add(5 * time.Second)
	for rec.count(refresher.EventSaveLanded) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if rec.count(refresher.EventSaveLanded) != 1 {
		t.Errorf("save_landed events: %d, want 1", rec.count(refresher.EventSaveLanded))
	}
}

// The token vanished from the store (a flushed Redis) while its refresh
// was at the server: the renewed token is inserted again under its ID.
func TestSuccessorOfAVanishedToken(t *testing.T) {
	ep := newEndpoint(newClock())
	ep.block = make(chan struct{})
	ep.started = make(chan struct{}, 1)
	f := newFleet(t, 1, ep, nil)
	seeded := f.seed(t)
	f.clock.Advance(2 * time.Hour)
	got := make(chan error, 1)
	go func() {
		_, err := f.workers[0].Token(context.Background(), userQuery)
		got <- err
	}()
	<-ep.started
	if err := f.stores[0].DeleteToken(context.Background(), seeded.ID); err != nil {
		t.Fatal(err)
	}
	close(ep.block)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	stored, err := f.stores[0].FindToken(context.Background(), userQuery)
	if err != nil || stored.ID != seeded.ID || stored.AccessToken != "a1" {
		t.Errorf("stored after the flush: %s %q, %v; want %s with a1", stored.ID, stored.AccessToken, err, seeded.ID)
	}
}

// Shutdown waits for a save being retried, and gives it up, saying so,
// when its deadline passes first.
func TestShutdownWaitsForRetriedSaves(t *testing.T) {
	ep := newEndpoint(newClock())
	f := newFleet(t, 1, ep, nil)
	seeded := f.seed(t)
	r, fs, rec := faultyWorker(t, f, 0)
	f.clock.Advance(2 * time.Hour)
	ep.started = make(chan struct{}, 1)
	ep.block = make(chan struct{})
	go func() { _, _ = r.Token(context.Background(), userQuery) }()
	<-ep.started
	fs.down.Store(true)
	close(ep.block)
	deadline := time.Now().Add(5 * time.Second)
	for rec.count(refresher.EventSaveRetry) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- r.Shutdown(ctx)
	}()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned while a save was retried: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	fs.down.Store(false)
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	stored, err := f.stores[0].FindTokenByID(context.Background(), seeded.ID)
	if err != nil || stored.AccessToken != "a1" {
		t.Errorf("after Shutdown the store holds %q, %v; want a1", stored.AccessToken, err)
	}

	// Once more, with the store down until Shutdown's deadline.
	f.clock.Advance(2 * time.Hour)
	r2, fs2, rec2 := faultyWorker(t, f, 0)
	ep.started = make(chan struct{}, 1)
	ep.block = make(chan struct{})
	go func() { _, _ = r2.Token(context.Background(), userQuery) }()
	<-ep.started
	fs2.down.Store(true)
	close(ep.block)
	for rec2.count(refresher.EventSaveRetry) == 0 && time.Now().Before(deadline.Add(5*time.Second)) {
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := r2.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with the store down = %v, want DeadlineExceeded", err)
	}
	for rec2.count(refresher.EventSaveLost) == 0 && time.Now().Before(deadline.Add(10*time.Second)) {
		time.Sleep(10 * time.Millisecond)
	}
	if rec2.count(refresher.EventSaveLost) != 1 {
		t.Errorf("save_lost events: %d, want 1", rec2.count(refresher.EventSaveLost))
	}
}

// A store that fails does not fail a caller whose token still works; a
// store that says not found is believed.
func TestStoreOutageServesTheRememberedToken(t *testing.T) {
	ep := newEndpoint(newClock())
	f := newFleet(t, 1, ep, nil)
	seeded := f.seed(t)
	r, fs, rec := faultyWorker(t, f, 0)
	for _, q := range []tokencache.Token{userQuery, {ID: seeded.ID}} {
		if _, err := r.Token(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	fs.down.Store(true)
	for _, q := range []tokencache.Token{userQuery, {ID: seeded.ID}} {
		tok, err := r.Token(context.Background(), q)
		if err != nil || tok.AccessToken != "a0" {
			t.Errorf("%s during the outage: %q, %v; want the remembered a0", tokencache.RuleOf(q), tok.AccessToken, err)
		}
	}
	// A query this process never answered has nothing to fall back on.
	if _, err := r.Token(context.Background(), tokencache.Token{UserName: "v", ClientID: "c"}); !errors.Is(err, refresher.ErrTemporary) {
		t.Errorf("unknown query during the outage: %v, want ErrTemporary", err)
	}
	// Inside the window the remembered token is still served.
	f.clock.Advance(time.Hour - 30*time.Second)
	if tok, err := r.Token(context.Background(), userQuery); err != nil || tok.AccessToken != "a0" {
		t.Errorf("inside the window during the outage: %q, %v", tok.AccessToken, err)
	}
	if rec.count(refresher.EventStoreFallback) < 3 {
		t.Errorf("store_fallback events: %d, want at least 3", rec.count(refresher.EventStoreFallback))
	}
	// Expired, the remembered token is not served.
	f.clock.Advance(time.Minute)
	if _, err := r.Token(context.Background(), userQuery); !errors.Is(err, refresher.ErrTemporary) {
		t.Errorf("expired during the outage: %v, want ErrTemporary", err)
	}
	// Back up: a token deleted meanwhile is not found, whatever was remembered.
	f.clock.Advance(-time.Minute)
	fs.down.Store(false)
	if err := f.stores[0].DeleteToken(context.Background(), seeded.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Token(context.Background(), userQuery); !errors.Is(err, tokencache.ErrNotFound) {
		t.Errorf("deleted token: %v, want ErrNotFound", err)
	}
}

// A store that hangs costs a caller with a remembered token the store
// timeout, not its deadline.
func TestHangingStoreServesTheRememberedTokenSoon(t *testing.T) {
	ep := newEndpoint(newClock())
	f := newFleet(t, 1, ep, nil)
	f.seed(t)
	const bound = 100 * time.Millisecond
	r, fs, rec := faultyWorker(t, f, 0, refresher.WithStoreTimeout(bound))
	if _, err := r.Token(context.Background(), userQuery); err != nil {
		t.Fatal(err)
	}
	fs.hang.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	tok, err := r.Token(ctx, userQuery)
	took := time.Since(start)
	if err != nil || tok.AccessToken != "a0" {
		t.Fatalf("with the store hanging: %q, %v; want the remembered a0", tok.AccessToken, err)
	}
	if took > bound+time.Second {
		t.Errorf("took %v with a store timeout of %v", took, bound)
	}
	if rec.count(refresher.EventStoreTimeout) != 1 {
		t.Errorf("store_timeout events: %d, want 1", rec.count(refresher.EventStoreTimeout))
	}
}

// A renewal in the background that fails is reported, not dropped; the
// callers keep the valid token.
func TestBackgroundRenewalErrorsAreReported(t *testing.T) {
	ep := newEndpoint(newClock())
	f := newFleet(t, 1, ep, nil)
	f.seed(t)
	r, fs, rec := faultyWorker(t, f, 0)
	fs.byID.Store(true)
	f.clock.Advance(time.Hour - 30*time.Second) // inside the window
	if tok, err := r.Token(context.Background(), userQuery); err != nil || tok.AccessToken != "a0" {
		t.Fatalf("inside the window: %q, %v", tok.AccessToken, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for rec.count(refresher.EventBackgroundError) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if rec.count(refresher.EventBackgroundError) != 1 {
		t.Errorf("background_error events: %d, want 1", rec.count(refresher.EventBackgroundError))
	}
}
