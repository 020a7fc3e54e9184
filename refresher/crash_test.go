package refresher_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/lock"
	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/refresher"
)

// The holder tests run a lock holder in a child process (this test binary
// again, running TestHolderHelper), stop or kill it by PID at a chosen
// point of its refresh, and watch what a worker of this process does.
const (
	holderNamespaceEnv = "TOKENCACHE_HOLDER_HELPER_NAMESPACE"
	holderModeEnv      = "TOKENCACHE_HOLDER_HELPER_MODE"
	holderReady        = "HOLDER-READY"
	crashLockTTL       = time.Second
	crashFlightTTL     = 3 * time.Second
)

// Where the helper stops: after taking the lock but before writing its
// in-flight record; inside the refresh call (after the record); or inside
// the refresh call with an answer coming (for SIGSTOP).
const (
	modeBeforeRecord = "before-record"
	modeInRefresh    = "in-refresh"
	modeAnswering    = "answering"
)

// holder is the helper process.
type holder struct {
	cmd   *exec.Cmd
	ready chan struct{}
}

// seedExpired saves the shared token, expired on the wall clock (the
// helper has a clock of its own), with refresh token r0.
func seedExpired(t *testing.T, store *redisstore.Store) tokencache.Token {
	t.Helper()
	tok := tokencache.Token{UserName: "u", ClientID: "c", ClientSecret: "s", RefreshToken: "r0", AccessToken: "a0", Expiry: time.Now().Add(-time.Minute)}
	if err := store.SaveToken(context.Background(), &tok); err != nil {
		t.Fatal(err)
	}
	return tok
}

func startHolder(t *testing.T, tg *redistest.Target, ns, mode string) *holder {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHolderHelper$", "-test.v")
	cmd.Env = append(append(os.Environ(), tg.Env()...), holderNamespaceEnv+"="+ns, holderModeEnv+"="+mode)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &holder{cmd: cmd, ready: make(chan struct{})}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	go func() {
		scanner := bufio.NewScanner(out)
		for scanner.Scan() {
			if strings.Contains(scanner.Text(), holderReady) {
				close(h.ready)
				break
			}
		}
		for scanner.Scan() { // drain
		}
	}()
	select {
	case <-h.ready:
	case <-time.After(20 * time.Second):
		t.Fatal("the helper process never reached its stopping point")
	}
	return h
}

// timedEndpoint records when this process first called Refresh.
type timedEndpoint struct {
	*fakeEndpoint
	first atomic.Int64 // UnixNano of the first Refresh call
}

func (e *timedEndpoint) Refresh(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	e.first.CompareAndSwap(0, time.Now().UnixNano())
	return e.fakeEndpoint.Refresh(ctx, t)
}

type workerResult struct {
	tok tokencache.Token
	err error
	at  time.Time
}

// holderFleet is this process's side: a store, a Locker and a worker that
// asks for the token in the background.
func holderWorker(t *testing.T, tg *redistest.Target, ns string, store *redisstore.Store, ep refresher.Endpoint) (*lock.Locker, <-chan workerResult) {
	t.Helper()
	locker := lock.New(tg.Client(t), lock.WithNamespace(ns), lock.WithPollInterval(50*time.Millisecond))
	t.Cleanup(func() { _ = locker.Close() })
	worker := refresher.New(store, locker, ep, refresher.WithLockTTL(crashLockTTL))
	got := make(chan workerResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		tok, err := worker.Token(ctx, userQuery)
		got <- workerResult{tok, err, time.Now()}
	}()
	return locker, got
}

func holderSetup(t *testing.T) (*redistest.Target, string, *redisstore.Store) {
	tg := redistest.New(t).ExpireOnWallClock()
	ns := redistest.Namespace(t)
	rdb := tg.Client(t)
	redistest.DropNamespaceAtCleanup(t, rdb, ns)
	store := redisstore.New(rdb, redisstore.WithNamespace(ns))
	t.Cleanup(func() { _ = store.DeleteTokens(context.Background()) })
	return tg, ns, store
}

func expectWaiting(t *testing.T, got <-chan workerResult) {
	t.Helper()
	time.Sleep(200 * time.Millisecond)
	select {
	case r := <-got:
		t.Fatalf("the worker did not wait for the lock holder: %v, %v", r.tok.AccessToken, r.err)
	default:
	}
}

// TestHolderKilledBeforeItsRecord kills (SIGKILL) a holder that has taken
// the lock but not yet written its in-flight record: it sent nothing, so
// another worker takes over within the lock TTL plus one second.
func TestHolderKilledBeforeItsRecord(t *testing.T) {
	tg, ns, store := holderSetup(t)
	seedExpired(t, store)
	h := startHolder(t, tg, ns, modeBeforeRecord)
	ep := &timedEndpoint{fakeEndpoint: newEndpoint(newClock())}
	_, got := holderWorker(t, tg, ns, store, ep)
	expectWaiting(t, got)

	killed := time.Now()
	if err := h.cmd.Process.Kill(); err != nil { // SIGKILL: no release, no clean-up
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil || r.tok.AccessToken != "a1" {
		t.Fatalf("worker after the holder died: %q, %v; want the refreshed a1", r.tok.AccessToken, r.err)
	}
	if took := r.at.Sub(killed); took > crashLockTTL+time.Second {
		t.Errorf("taken over %v after the holder died; want within the lock TTL (%v) plus 1s", took, crashLockTTL)
	}
	if n := ep.refresh.Load(); n != 1 || ep.reuses.Load() != 0 {
		t.Errorf("the surviving worker refreshed %d times (%d reuses), want once", n, ep.reuses.Load())
	}
}

// TestHolderKilledInFlight kills a holder whose refresh is at the server:
// its refresh token may have been spent, so nobody sends it while the
// holder's in-flight record lives, and a worker takes over within the
// record's lifetime plus one second.
func TestHolderKilledInFlight(t *testing.T) {
	tg, ns, store := holderSetup(t)
	seeded := seedExpired(t, store)
	h := startHolder(t, tg, ns, modeInRefresh)
	ep := &timedEndpoint{fakeEndpoint: newEndpoint(newClock())}
	locker, got := holderWorker(t, tg, ns, store, ep)
	expectWaiting(t, got)

	f, ok, err := locker.FlightOf(context.Background(), seeded.ID)
	if err != nil || !ok || f.Revision != seeded.Version {
		t.Fatalf("in-flight record of the holder = %+v, %v, %v; want revision %d", f, ok, err, seeded.Version)
	}
	killed := time.Now()
	recordEnds := killed.Add(f.TTL)
	if err := h.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil || r.tok.AccessToken != "a1" {
		t.Fatalf("worker after the holder died: %q, %v; want the refreshed a1", r.tok.AccessToken, r.err)
	}
	if took := r.at.Sub(killed); took > f.TTL+time.Second {
		t.Errorf("taken over %v after the holder died; want within the record's remaining lifetime (%v) plus 1s", took, f.TTL)
	}
	sent := time.Unix(0, ep.first.Load())
	if slack := 50 * time.Millisecond; sent.Before(recordEnds.Add(-slack)) {
		t.Errorf("the worker sent the refresh token %v before the holder's in-flight record ended", recordEnds.Sub(sent))
	}
	if n := ep.refresh.Load(); n != 1 {
		t.Errorf("the surviving worker refreshed %d times, want 1", n)
	}
}

// TestHolderPausedPastItsLockTTL stops (SIGSTOP) a holder while the server
// is answering its refresh, for twice its lock TTL: the lock passes to a
// worker, which must not take the paused holder for a dead one. When the
// holder resumes, it saves its answer with a revision check (its lock is
// gone), and the worker serves that answer without refreshing.
func TestHolderPausedPastItsLockTTL(t *testing.T) {
	tg, ns, store := holderSetup(t)
	seeded := seedExpired(t, store)
	h := startHolder(t, tg, ns, modeAnswering)
	if err := h.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	ep := &timedEndpoint{fakeEndpoint: newEndpoint(newClock())}
	_, got := holderWorker(t, tg, ns, store, ep)
	time.Sleep(2 * crashLockTTL) // the paused holder's lock expires; the worker takes it
	select {
	case r := <-got:
		t.Fatalf("the worker did not wait for the paused holder: %q, %v", r.tok.AccessToken, r.err)
	default:
	}
	if err := h.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil || r.tok.AccessToken != "helper-a1" {
		t.Fatalf("worker after the holder resumed: %q, %v; want the holder's helper-a1", r.tok.AccessToken, r.err)
	}
	if n := ep.refresh.Load(); n != 0 {
		t.Errorf("the worker refreshed %d times while the paused holder's refresh was in flight, want 0", n)
	}
	stored, err := store.FindTokenByID(context.Background(), seeded.ID)
	if err != nil || stored.AccessToken != "helper-a1" || stored.Version != seeded.Version+1 {
		t.Errorf("stored: %q at version %d, %v; want helper-a1 at %d", stored.AccessToken, stored.Version, err, seeded.Version+1)
	}
}

// TestHolderHelper is the process the holder tests stop or kill.
func TestHolderHelper(t *testing.T) {
	ns, mode := os.Getenv(holderNamespaceEnv), os.Getenv(holderModeEnv)
	if ns == "" {
		t.Skip("helper process of the holder tests; runs only when started by them")
	}
	tg := redistest.New(t).ExpireOnWallClock()
	rdb := tg.Client(t)
	var store tokencache.Store = redisstore.New(rdb, redisstore.WithNamespace(ns))
	var ep refresher.Endpoint = hangingEndpoint{}
	switch mode {
	case modeBeforeRecord:
		store = &hangingReadStore{Store: store.(*redisstore.Store)}
	case modeAnswering:
		ep = answeringEndpoint{}
	}
	locker := lock.New(rdb, lock.WithNamespace(ns))
	r := refresher.New(store, locker, ep, refresher.WithLockTTL(crashLockTTL),
		refresher.WithRefreshTimeout(crashFlightTTL-time.Second), refresher.WithFlightTTL(crashFlightTTL))
	tok, err := r.Token(context.Background(), userQuery)
	if mode != modeAnswering {
		t.Fatalf("the helper's refresh returned: %v", err)
	}
	if err != nil || tok.AccessToken != "helper-a1" {
		t.Fatalf("the helper's refresh = %q, %v", tok.AccessToken, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// hangingEndpoint announces the refresh on stdout and never answers.
type hangingEndpoint struct{}

func (hangingEndpoint) Refresh(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	fmt.Println(holderReady)
	select {}
}

func (hangingEndpoint) Exchange(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	return hangingEndpoint{}.Refresh(ctx, t)
}

// answeringEndpoint announces the refresh, and answers it a moment later:
// long enough for the test to stop the process in between.
type answeringEndpoint struct{}

func (answeringEndpoint) Refresh(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	fmt.Println(holderReady)
	time.Sleep(300 * time.Millisecond)
	t.AccessToken, t.RefreshToken, t.Expiry = "helper-a1", "helper-r1", time.Now().Add(time.Hour)
	return t, nil
}

func (answeringEndpoint) Exchange(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	return answeringEndpoint{}.Refresh(ctx, t)
}

// hangingReadStore hangs in the read the lock holder makes once it has the
// lock (the read from the record), after saying so.
type hangingReadStore struct {
	*redisstore.Store
}

func (s *hangingReadStore) FindTokenFromRecord(ctx context.Context, q tokencache.Token) (tokencache.Token, error) {
	fmt.Println(holderReady)
	select {}
}
