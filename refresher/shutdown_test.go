package refresher_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/lock"
	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/refresher"
	"github.com/tokencache/tokencache/sqlstore"
)

// lockAttempts signals each lock obtain that found the lock taken.
type lockAttempts struct{ busy chan struct{} }

func (h lockAttempts) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h lockAttempts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h lockAttempts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		name := strings.ToLower(cmd.Name())
		if args := cmd.Args(); (name == "evalsha" || name == "eval") && len(args) == 7 && errors.Is(err, redis.Nil) {
			if key, _ := args[3].(string); strings.Contains(key, ":lock:") {
				select {
				case h.busy <- struct{}{}:
				default:
				}
			}
		}
		return err
	}
}

// A renewal waiting for another worker's lock when Shutdown begins sends
// nothing afterwards: a request sent then could be answered after the
// process has gone (Shutdown's deadline), and the successor, which the
// server has already swapped for the refresh token, would be lost. That
// is how the chaos suite's rollback scenario lost a user: the rolled-back
// Redis brought back a lock released after the copy, the fleet's renewals
// of that token waited for it, and when it expired one of them sent its
// refresh token while its process was being shut down and exited before
// the save.
func TestShutdownSendsNothingForARenewalThatWaited(t *testing.T) {
	ctx := context.Background()
	record, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "record.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = record.Close() })
	tg := redistest.New(t).ExpireOnWallClock()
	rdb := tg.Client(t)
	attempts := lockAttempts{busy: make(chan struct{}, 1)}
	rdb.AddHook(attempts)
	ns := redistest.Namespace(t)
	redistest.DropNamespaceAtCleanup(t, rdb, ns)
	store := redisstore.New(rdb, redisstore.WithNamespace(ns), redisstore.WithDurableStore(record))
	ep := newEndpoint(newClock())
	locker := lock.New(rdb, lock.WithNamespace(ns), lock.WithPollInterval(20*time.Millisecond))
	t.Cleanup(func() { _ = locker.Close() })
	r := refresher.New(store, locker, ep, refresher.WithClock(ep.clock.Now))

	seeded := tokencache.Token{UserName: "u", ClientID: "c", ClientSecret: "s", RefreshToken: "r0", AccessToken: "a0", Expiry: ep.clock.Now().Add(time.Hour)}
	if err := store.SaveToken(ctx, &seeded); err != nil {
		t.Fatal(err)
	}
	ep.clock.Advance(2 * time.Hour)
	// The lock of a holder that has finished, as a rolled-back Redis brings
	// it back: nobody releases it; it goes when it expires.
	if err := rdb.Set(ctx, locker.Key(seeded.ID), "brought-back", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}

	caller := make(chan error, 1)
	go func() {
		_, err := r.Token(ctx, userQuery)
		caller <- err
	}()
	select {
	case <-attempts.busy: // the renewal found the lock taken and waits
	case <-time.After(5 * time.Second):
		t.Fatal("the renewal never tried the lock")
	}
	shut := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		shut <- r.Shutdown(sctx)
	}()
	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("Shutdown = %v", err)
		}
	case <-time.After(time.Second):
		// Still waiting for the renewal: the lock expires now.
		if err := rdb.Del(ctx, locker.Key(seeded.ID)).Err(); err != nil {
			t.Fatal(err)
		}
		t.Errorf("Shutdown waited for a renewal that had sent nothing: %v", <-shut)
	}
	select {
	case err := <-caller:
		if !errors.Is(err, refresher.ErrTemporary) {
			t.Errorf("the caller of the expired token: %v, want ErrTemporary", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the caller did not return")
	}
	if n := ep.refresh.Load(); n != 0 {
		t.Errorf("%d refresh requests sent after Shutdown began, want 0", n)
	}
	if rec, err := record.FindTokenByID(ctx, seeded.ID); err != nil || rec.RefreshToken != "r0" {
		t.Errorf("the record holds %q, %v; want r0, still the live refresh token", rec.RefreshToken, err)
	}
}

// pausedRecordRead holds the lock holder's read from the record until
// resume is closed, after saying so on reading.
type pausedRecordRead struct {
	*redisstore.Store
	reading chan struct{}
	resume  chan struct{}
}

func (s *pausedRecordRead) FindTokenFromRecord(ctx context.Context, q tokencache.Token) (tokencache.Token, error) {
	select {
	case s.reading <- struct{}{}:
	default:
	}
	<-s.resume
	return s.Store.FindTokenFromRecord(ctx, q)
}

// A holder that took the lock before Shutdown began but had not sent its
// request yet does not send it either: the check comes right before the
// request.
func TestShutdownStopsAHolderBeforeItSends(t *testing.T) {
	ctx := context.Background()
	ep := newEndpoint(newClock())
	f := newFleet(t, 1, ep, nil)
	seeded := f.seed(t)
	store := &pausedRecordRead{Store: f.stores[0], reading: make(chan struct{}, 1), resume: make(chan struct{})}
	r := refresher.New(store, f.lockers[0], ep, refresher.WithClock(ep.clock.Now))
	ep.clock.Advance(2 * time.Hour)

	caller := make(chan error, 1)
	go func() {
		_, err := r.Token(ctx, userQuery)
		caller <- err
	}()
	select {
	case <-store.reading:
	case <-time.After(5 * time.Second):
		t.Fatal("the holder never read the token under the lock")
	}
	shut := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		shut <- r.Shutdown(sctx)
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		// Shutdown has begun once it refuses new renewals.
		if _, err := r.Token(ctx, tokencache.Token{UserName: "other", ClientID: "c", RefreshToken: "x"}); errors.Is(err, refresher.ErrTemporary) && strings.Contains(err.Error(), "shutting down") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Shutdown did not begin")
		}
	}
	close(store.resume)
	if err := <-shut; err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	if err := <-caller; !errors.Is(err, refresher.ErrTemporary) {
		t.Errorf("the caller of the expired token: %v, want ErrTemporary", err)
	}
	if n := ep.refresh.Load(); n != 0 {
		t.Errorf("%d refresh requests sent after Shutdown began, want 0", n)
	}
	if got, err := f.stores[0].FindTokenByID(ctx, seeded.ID); err != nil || got.RefreshToken != "r0" {
		t.Errorf("the store holds %q, %v; want r0", got.RefreshToken, err)
	}
}
