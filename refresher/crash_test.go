package refresher_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/lock"
	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/refresher"
)

const (
	crashHelperEnv   = "TOKENCACHE_CRASH_HELPER_NAMESPACE"
	crashLockTTL     = time.Second
	crashHelperReady = "REFRESHING"
)

// TestHolderCrash kills, with SIGKILL, a process that holds a token's lock
// in the middle of its refresh, and checks that another worker completes
// the refresh within the lock TTL plus one second.
func TestHolderCrash(t *testing.T) {
	tg := redistest.New(t).ExpireOnWallClock()
	ns := redistest.Namespace(t)
	rdb := tg.Client(t)
	redistest.DropNamespaceAtCleanup(t, rdb, ns)
	store := redisstore.New(rdb, redisstore.WithNamespace(ns))
	t.Cleanup(func() { _ = store.DeleteTokens(context.Background()) })
	seeded := tokencache.Token{UserName: "u", ClientID: "c", RefreshToken: "r0", AccessToken: "a0", Expiry: time.Now().Add(-time.Minute)}
	if err := store.SaveToken(context.Background(), &seeded); err != nil {
		t.Fatal(err)
	}

	child := exec.Command(os.Args[0], "-test.run=^TestHolderCrashHelper$", "-test.v")
	child.Env = append(append(os.Environ(), tg.Env()...), crashHelperEnv+"="+ns)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	ready := make(chan struct{})
	go func() {
		scanner := bufio.NewScanner(out)
		for scanner.Scan() {
			if strings.Contains(scanner.Text(), crashHelperReady) {
				close(ready)
				break
			}
		}
		for scanner.Scan() { // drain
		}
	}()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Fatal("the helper process never started its refresh")
	}

	// A worker of this process asks for the token while the helper holds
	// the lock, and waits.
	ep := newEndpoint(newClock())
	locker := lock.New(rdb, lock.WithNamespace(ns), lock.WithPollInterval(50*time.Millisecond))
	t.Cleanup(func() { _ = locker.Close() })
	worker := refresher.New(store, locker, ep, refresher.WithLockTTL(crashLockTTL))
	type result struct {
		tok tokencache.Token
		err error
		at  time.Time
	}
	got := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		tok, err := worker.Token(ctx, userQuery)
		got <- result{tok, err, time.Now()}
	}()
	time.Sleep(200 * time.Millisecond)
	select {
	case r := <-got:
		t.Fatalf("the worker did not wait for the lock holder: %v, %v", r.tok.AccessToken, r.err)
	default:
	}

	killed := time.Now()
	if err := child.Process.Kill(); err != nil { // SIGKILL: no release, no clean-up
		t.Fatal(err)
	}
	_ = child.Wait()
	r := <-got
	if r.err != nil {
		t.Fatalf("worker after the holder died: %v", r.err)
	}
	if r.tok.AccessToken != "a1" {
		t.Errorf("worker got %q, want the refreshed a1", r.tok.AccessToken)
	}
	if took := r.at.Sub(killed); took > crashLockTTL+time.Second {
		t.Errorf("the refresh completed %v after the holder died; want within the lock TTL (%v) plus 1s", took, crashLockTTL)
	}
	if n := ep.refresh.Load(); n != 1 {
		t.Errorf("the surviving worker refreshed %d times, want 1", n)
	}
}

// TestHolderCrashHelper is the process TestHolderCrash kills: it takes the
// lock and hangs inside the refresh.
func TestHolderCrashHelper(t *testing.T) {
	ns := os.Getenv(crashHelperEnv)
	if ns == "" {
		t.Skip("helper process of TestHolderCrash; runs only when started by it")
	}
	tg := redistest.New(t).ExpireOnWallClock()
	rdb := tg.Client(t)
	store := redisstore.New(rdb, redisstore.WithNamespace(ns))
	locker := lock.New(rdb, lock.WithNamespace(ns))
	r := refresher.New(store, locker, hangingEndpoint{}, refresher.WithLockTTL(crashLockTTL))
	_, err := r.Token(context.Background(), userQuery)
	t.Fatalf("the hanging refresh returned: %v", err)
}

// hangingEndpoint announces the refresh on stdout and never answers.
type hangingEndpoint struct{}

func (hangingEndpoint) Refresh(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	fmt.Println(crashHelperReady)
	select {}
}

func (hangingEndpoint) Exchange(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	return hangingEndpoint{}.Refresh(ctx, t)
}
