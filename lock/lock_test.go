package lock_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bsm/redislock"
	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/lock"
)

var ctx = context.Background()

// newLocker returns a Locker in a fresh namespace, closed when the test ends.
func newLocker(t *testing.T, rdb redis.UniversalClient, opts ...lock.Option) *lock.Locker {
	t.Helper()
	ns := redistest.Namespace(t)
	redistest.DropNamespaceAtCleanup(t, rdb, ns)
	l := lock.New(rdb, append([]lock.Option{lock.WithNamespace(ns)}, opts...)...)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func TestTryObtainExcludesOthers(t *testing.T) {
	tg := redistest.New(t).ExpireOnWallClock()
	a := newLocker(t, tg.Client(t))
	b := lock.New(tg.Client(t), lock.WithNamespace(a.Namespace())) // another process
	t.Cleanup(func() { _ = b.Close() })

	held, err := a.TryObtain(ctx, "tok1", 0)
	if err != nil {
		t.Fatalf("TryObtain = %v", err)
	}
	if held.Key() != a.Namespace()+":lock:{tok1}" || held.ID() != "tok1" {
		t.Errorf("lock key %q, id %q", held.Key(), held.ID())
	}
	if _, err := b.TryObtain(ctx, "tok1", 0); !errors.Is(err, lock.ErrNotObtained) {
		t.Errorf("second TryObtain = %v, want ErrNotObtained", err)
	}
	other, err := b.TryObtain(ctx, "tok2", 0)
	if err != nil {
		t.Errorf("TryObtain of another token = %v", err)
	}
	_ = other.Release(ctx)
	if err := held.Check(ctx); err != nil {
		t.Errorf("Check while held = %v", err)
	}
	if err := held.Release(ctx); err != nil {
		t.Errorf("Release = %v", err)
	}
	if err := held.Release(ctx); err != nil {
		t.Errorf("second Release = %v, want the first one's nil", err)
	}
	again, err := b.TryObtain(ctx, "tok1", 0)
	if err != nil {
		t.Fatalf("TryObtain after release = %v", err)
	}
	_ = again.Release(ctx)

	var none *lock.Lock
	if err := none.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
		t.Errorf("Release of a nil Lock = %v, want ErrNotHeld", err)
	}
	if err := none.Check(ctx); !errors.Is(err, lock.ErrNotHeld) {
		t.Errorf("Check of a nil Lock = %v, want ErrNotHeld", err)
	}
}

func TestWatchdogKeepsTheLock(t *testing.T) {
	tg := redistest.New(t).ExpireOnWallClock()
	rdb := tg.Client(t)
	const ttl = 300 * time.Millisecond
	l := newLocker(t, rdb, lock.WithTTL(ttl))
	held, err := l.TryObtain(ctx, "slow", 0)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(4 * ttl)
	for time.Now().Before(deadline) {
		if _, err := l.TryObtain(ctx, "slow", 0); !errors.Is(err, lock.ErrNotObtained) {
			t.Fatalf("lock obtainable while its holder works: %v", err)
		}
		select {
		case <-held.Lost():
			t.Fatal("watchdog lost a lock nobody took")
		case <-time.After(ttl / 5):
		}
	}
	if v, err := rdb.Get(ctx, held.Key()).Result(); err != nil || v != held.Token() {
		t.Errorf("lock key holds %q, %v; want the fencing token", v, err)
	}
	if err := held.Release(ctx); err != nil {
		t.Errorf("Release after 4 TTLs = %v", err)
	}
}

func TestLostLockIsReported(t *testing.T) {
	tg := redistest.New(t).ExpireOnWallClock()
	rdb := tg.Client(t)
	l := newLocker(t, rdb, lock.WithTTL(300*time.Millisecond))
	held, err := l.TryObtain(ctx, "stolen", 0)
	if err != nil {
		t.Fatal(err)
	}
	// The key vanishes (expired during a pause, or deleted by an operator)
	// and someone else takes it.
	if err := rdb.Set(ctx, held.Key(), "someone-else", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("Lost not closed after the lock passed to another holder")
	}
	if err := held.Check(ctx); !errors.Is(err, lock.ErrNotHeld) {
		t.Errorf("Check after losing the lock = %v, want ErrNotHeld", err)
	}
	if err := held.Release(ctx); !errors.Is(err, lock.ErrNotHeld) {
		t.Errorf("Release after losing the lock = %v, want ErrNotHeld", err)
	}
	if v, _ := rdb.Get(ctx, held.Key()).Result(); v != "someone-else" {
		t.Errorf("Release of a lost lock deleted the new holder's key: %q", v)
	}
}

func TestObtainIsWokenByRelease(t *testing.T) {
	tg := redistest.New(t).ExpireOnWallClock()
	// A poll interval far beyond the test's bound: only the message can
	// wake the waiter in time.
	a := newLocker(t, tg.Client(t), lock.WithPollInterval(time.Minute))
	b := lock.New(tg.Client(t), lock.WithNamespace(a.Namespace()), lock.WithPollInterval(time.Minute))
	t.Cleanup(func() { _ = b.Close() })
	held, err := a.TryObtain(ctx, "tok", 0)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		lk, err := b.Obtain(ctx, "tok", 0)
		if err == nil {
			err = lk.Release(ctx)
		}
		got <- err
	}()
	time.Sleep(100 * time.Millisecond) // let the waiter find the lock held
	if err := held.Release(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Errorf("Obtain after release = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter not woken by the release message")
	}
}

func TestObtainTakesOverFromADeadHolder(t *testing.T) {
	tg := redistest.New(t).ExpireOnWallClock()
	rdb := tg.Client(t)
	l := newLocker(t, rdb, lock.WithPollInterval(50*time.Millisecond))
	// A holder that died: its lock has no watchdog and no release message
	// will come.
	const ttl = 400 * time.Millisecond
	if _, err := redislock.Obtain(ctx, rdb, l.Key("orphan"), ttl, nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	lk, err := l.Obtain(cctx, "orphan", 0)
	if err != nil {
		t.Fatalf("Obtain = %v", err)
	}
	defer lk.Release(ctx)
	if waited := time.Since(start); waited > ttl+time.Second {
		t.Errorf("took over after %v, want within the TTL (%v) plus 1s", waited, ttl)
	}
}

func TestObtainHonoursContext(t *testing.T) {
	tg := redistest.New(t).ExpireOnWallClock()
	l := newLocker(t, tg.Client(t))
	held, err := l.TryObtain(ctx, "busy", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release(ctx)
	cctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel()
	if _, err := l.Obtain(cctx, "busy", 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Obtain of a busy lock with a deadline = %v, want DeadlineExceeded", err)
	}
}

func TestOneSubscriptionPerLocker(t *testing.T) {
	tg := redistest.New(t).ExpireOnWallClock()
	rdb := tg.Client(t)
	l := newLocker(t, rdb, lock.WithPollInterval(time.Minute))
	const n = 50
	watches := make([]*lock.Watch, n)
	for i := range watches {
		w, err := l.Watch(ctx, fmt.Sprint("tok", i%5))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		watches[i] = w
	}
	if got := subscribers(t, rdb, l.Namespace()+":events"); got != 1 {
		t.Errorf("%d watches made %d subscriptions, want 1", n, got)
	}

	// A refresh of tok3 wakes its watches, and only them.
	if err := l.NotifyRefreshed(ctx, "tok3"); err != nil {
		t.Fatal(err)
	}
	for i, w := range watches {
		if i%5 != 3 {
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := w.Wait(wctx); err != nil {
			t.Errorf("watch %d of tok3 not woken: %v", i, err)
		}
		cancel()
	}
	wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := watches[0].Wait(wctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("watch of tok0 woken by news of tok3: %v", err)
	}
}

// subscribers counts the subscribers of channel on every node: a Cluster
// answers PUBSUB NUMSUB for the node asked only.
func subscribers(t *testing.T, rdb redis.UniversalClient, channel string) int64 {
	t.Helper()
	var total atomic.Int64
	count := func(ctx context.Context, c redis.Cmdable) error {
		subs, err := c.PubSubNumSub(ctx, channel).Result()
		total.Add(subs[channel])
		return err
	}
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error { return count(ctx, node) })
	} else {
		err = count(ctx, rdb)
	}
	if err != nil {
		t.Fatal(err)
	}
	return total.Load()
}

func TestWatchPollsWithoutMessages(t *testing.T) {
	tg := redistest.New(t).ExpireOnWallClock()
	l := newLocker(t, tg.Client(t), lock.WithPollInterval(20*time.Millisecond))
	w, err := l.Watch(ctx, "quiet")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := w.Wait(wctx); err != nil {
		t.Errorf("Wait with no message = %v, want nil after the poll interval", err)
	}
}

func TestNote(t *testing.T) {
	tg := redistest.New(t).ExpireOnWallClock()
	l := newLocker(t, tg.Client(t))
	if r, err := l.Note(ctx, "tok"); err != nil || r != "" {
		t.Errorf("Note of a fresh token = %q, %v", r, err)
	}
	if err := l.SetNote(ctx, "tok", "cool 3", time.Minute); err != nil {
		t.Fatal(err)
	}
	if r, err := l.Note(ctx, "tok"); err != nil || r != "cool 3" {
		t.Errorf("Note = %q, %v; want cool 3", r, err)
	}
	if err := l.ClearNote(ctx, "tok"); err != nil {
		t.Fatal(err)
	}
	if r, _ := l.Note(ctx, "tok"); r != "" {
		t.Errorf("Note after clear = %q", r)
	}
}

func TestBadOptions(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	for name, l := range map[string]*lock.Locker{
		"brace namespace": lock.New(rdb, lock.WithNamespace("a{b")),
		"empty namespace": lock.New(rdb, lock.WithNamespace("")),
		"tiny TTL":        lock.New(rdb, lock.WithTTL(time.Millisecond)),
		"zero poll":       lock.New(rdb, lock.WithPollInterval(0)),
		"nil client":      lock.New(nil),
	} {
		if _, err := l.TryObtain(ctx, "x", 0); !errors.Is(err, lock.ErrBadOption) {
			t.Errorf("%s: TryObtain = %v, want ErrBadOption", name, err)
		}
		if _, err := l.Watch(ctx, "x"); !errors.Is(err, lock.ErrBadOption) {
			t.Errorf("%s: Watch = %v, want ErrBadOption", name, err)
		}
	}
}

func TestRedisDownIsAnError(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	l := lock.New(rdb)
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := l.TryObtain(cctx, "x", 0); err == nil || errors.Is(err, lock.ErrNotObtained) {
		t.Errorf("TryObtain with Redis down = %v, want a connection error", err)
	}
	if _, err := l.Note(cctx, "x"); err == nil {
		t.Errorf("Note with Redis down = nil error")
	}
	if _, _, err := l.FlightOf(cctx, "x"); err == nil {
		t.Errorf("FlightOf with Redis down = nil error")
	}
}
