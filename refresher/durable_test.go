package refresher_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/lock"
	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/refresher"
	"github.com/tokencache/tokencache/sqlstore"
)

// With a durable record, the read that decides a refresh comes from the
// record: a Redis that went back to an older revision (a restore, an
// asynchronous failover) holding a rotated refresh token never gets that
// refresh token sent.
func TestTheRecordDecidesTheRefresh(t *testing.T) {
	ctx := context.Background()
	record, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "record.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = record.Close() })
	tg := redistest.New(t).ExpireOnWallClock()
	rdb := tg.Client(t)
	ns := redistest.Namespace(t)
	redistest.DropNamespaceAtCleanup(t, rdb, ns)
	store := redisstore.New(rdb, redisstore.WithNamespace(ns), redisstore.WithDurableStore(record))
	cacheOnly := redisstore.New(rdb, redisstore.WithNamespace(ns)) // writes Redis behind the record's back
	ep := newEndpoint(newClock())
	locker := lock.New(rdb, lock.WithNamespace(ns), lock.WithPollInterval(50*time.Millisecond))
	t.Cleanup(func() { _ = locker.Close() })
	r := refresher.New(store, locker, ep, refresher.WithClock(ep.clock.Now))

	seeded := tokencache.Token{UserName: "u", ClientID: "c", ClientSecret: "s", RefreshToken: "r0", AccessToken: "a0", Expiry: ep.clock.Now().Add(time.Hour)}
	if err := store.SaveToken(ctx, &seeded); err != nil {
		t.Fatal(err)
	}
	ep.clock.Advance(2 * time.Hour)
	if tok, err := r.Token(ctx, userQuery); err != nil || tok.AccessToken != "a1" {
		t.Fatalf("first renewal: %q, %v", tok.AccessToken, err)
	}
	// Redis goes back to the first revision, with the rotated r0.
	stale := seeded
	stale.Version = 0
	if err := cacheOnly.SaveToken(ctx, &stale); err != nil {
		t.Fatal(err)
	}
	if got, err := cacheOnly.FindTokenByID(ctx, seeded.ID); err != nil || got.RefreshToken != "r0" {
		t.Fatalf("Redis after the rollback: %v, %v", got.RefreshToken, err)
	}
	ep.clock.Advance(2 * time.Hour)
	tok, err := r.Token(ctx, userQuery)
	if err != nil || tok.AccessToken != "a2" {
		t.Errorf("renewal after the rollback: %q, %v; want a2", tok.AccessToken, err)
	}
	if ep.reuses.Load() != 0 || ep.refresh.Load() != 2 {
		t.Errorf("refreshes %d, reuses %d; want 2, 0 (the rotated r0 must not be sent)", ep.refresh.Load(), ep.reuses.Load())
	}
	if rec, err := record.FindTokenByID(ctx, seeded.ID); err != nil || rec.AccessToken != "a2" {
		t.Errorf("the record holds %q, %v; want a2", rec.AccessToken, err)
	}
}

// With Redis down and the record up, valid tokens are served (the record
// answers the reads) and nothing is refreshed: without the fleet lock two
// workers could send one refresh token.
func TestRedisDownRecordUpRefusesToRefresh(t *testing.T) {
	ctx := context.Background()
	record, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "record.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = record.Close() })
	tg := redistest.New(t).ExpireOnWallClock()
	if tg.Mini == nil {
		t.Skip("stops the server: miniredis only")
	}
	rdb := tg.Client(t)
	ns := redistest.Namespace(t)
	store := redisstore.New(rdb, redisstore.WithNamespace(ns), redisstore.WithDurableStore(record))
	ep := newEndpoint(newClock())
	locker := lock.New(rdb, lock.WithNamespace(ns))
	t.Cleanup(func() { _ = locker.Close() })
	r := refresher.New(store, locker, ep, refresher.WithClock(ep.clock.Now))
	valid := tokencache.Token{UserName: "u", ClientID: "c", ClientSecret: "s", RefreshToken: "r0", AccessToken: "a0", Expiry: ep.clock.Now().Add(time.Hour)}
	expired := tokencache.Token{UserName: "v", ClientID: "c", ClientSecret: "s", RefreshToken: "rv", AccessToken: "av", Expiry: ep.clock.Now().Add(-time.Minute)}
	for _, tok := range []*tokencache.Token{&valid, &expired} {
		if err := store.SaveToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	tg.Mini.Close()
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if tok, err := r.Token(tctx, userQuery); err != nil || tok.AccessToken != "a0" {
		t.Errorf("valid token with Redis down: %q, %v; want a0 from the record", tok.AccessToken, err)
	}
	if _, err := r.Token(tctx, tokencache.Token{UserName: "v", ClientID: "c"}); !errors.Is(err, refresher.ErrTemporary) {
		t.Errorf("expired token with Redis down: %v, want ErrTemporary", err)
	}
	if n := ep.refresh.Load(); n != 0 {
		t.Errorf("%d refreshes sent without the fleet lock", n)
	}
}

// Redis restarts empty while a refresh is at the server: the lock and the
// in-flight record in Redis are gone, but the record's in-flight mark is
// not, so the worker that takes the new lock waits for the first holder's
// answer instead of sending the same refresh token.
func TestTheRecordKeepsTheFlightThroughARedisRestart(t *testing.T) {
	ctx := context.Background()
	record, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "record.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = record.Close() })
	tg := redistest.New(t).ExpireOnWallClock()
	if tg.Mini == nil {
		t.Skip("empties the server: miniredis only")
	}
	ns := redistest.Namespace(t)
	ep := newEndpoint(newClock())
	ep.block = make(chan struct{})
	ep.started = make(chan struct{}, 1)
	var workers []*refresher.Refresher
	var first *redisstore.Store
	for range 2 {
		rdb := tg.Client(t)
		store := redisstore.New(rdb, redisstore.WithNamespace(ns), redisstore.WithDurableStore(record))
		if first == nil {
			first = store
		}
		locker := lock.New(rdb, lock.WithNamespace(ns), lock.WithPollInterval(50*time.Millisecond))
		t.Cleanup(func() { _ = locker.Close() })
		workers = append(workers, refresher.New(store, locker, ep, refresher.WithClock(ep.clock.Now)))
	}
	seeded := tokencache.Token{UserName: "u", ClientID: "c", ClientSecret: "s", RefreshToken: "r0", AccessToken: "a0", Expiry: ep.clock.Now().Add(time.Hour)}
	if err := first.SaveToken(ctx, &seeded); err != nil {
		t.Fatal(err)
	}
	ep.clock.Advance(2 * time.Hour)
	got := make(chan error, 2)
	call := func(r *refresher.Refresher) {
		tok, err := r.Token(ctx, userQuery)
		if err == nil && tok.AccessToken != "a1" {
			err = errors.New("got " + tok.AccessToken + ", want a1")
		}
		got <- err
	}
	go call(workers[0])
	<-ep.started // worker 0's refresh is at the server
	tg.Mini.FlushAll()
	go call(workers[1])
	time.Sleep(500 * time.Millisecond) // worker 1 takes the new lock and finds the mark
	close(ep.block)
	for range 2 {
		if err := <-got; err != nil {
			t.Error(err)
		}
	}
	if ep.refresh.Load() != 1 || ep.reuses.Load() != 0 {
		t.Errorf("refreshes %d, reuses %d; want 1, 0", ep.refresh.Load(), ep.reuses.Load())
	}
}
