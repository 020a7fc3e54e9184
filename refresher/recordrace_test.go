package refresher_test

import (
	"context"
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

// Tests of the window between a holder's read under the lock and its
// in-flight record. An earlier holder whose lock expired (paused, not dead)
// still has its own record, so the new holder waits for it; but if that
// earlier holder saves its answer and ends its record inside the window,
// the new holder finds no record and what it read is already spent. Each
// test plays that earlier holder inside the window, and failed before the
// new holder read the token again once its own record was in place.

// windowStore is the store of the worker under test. The first time the
// worker reads what trigger accepts while a lock of the namespace is held,
// play runs (the earlier holder finishing) before the read's answer is
// returned.
type windowStore struct {
	tokencache.Store
	t       *testing.T
	rdb     redis.UniversalClient
	ns      string
	trigger func(q tokencache.Token, got tokencache.Token, err error) bool
	play    func(ctx context.Context)
	played  atomic.Bool
}

func (s *windowStore) after(ctx context.Context, q, got tokencache.Token, err error) {
	if s.played.Load() || !s.trigger(q, got, err) {
		return
	}
	held, xerr := anyKey(ctx, s.rdb, s.ns+":lock:*")
	if xerr != nil {
		s.t.Errorf("reading the locks: %v", xerr)
		return
	}
	if held && s.played.CompareAndSwap(false, true) {
		s.play(ctx)
	}
}

// anyKey reports whether a key matches pattern, on every master of a
// Cluster.
func anyKey(ctx context.Context, rdb redis.UniversalClient, pattern string) (bool, error) {
	c, ok := rdb.(*redis.ClusterClient)
	if !ok {
		keys, err := rdb.Keys(ctx, pattern).Result()
		return len(keys) > 0, err
	}
	var n atomic.Int64
	err := c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		keys, err := m.Keys(ctx, pattern).Result()
		n.Add(int64(len(keys)))
		return err
	})
	return n.Load() > 0, err
}

func (s *windowStore) FindTokenByID(ctx context.Context, id string) (tokencache.Token, error) {
	got, err := s.Store.FindTokenByID(ctx, id)
	s.after(ctx, tokencache.Token{ID: id}, got, err)
	return got, err
}

func (s *windowStore) FindToken(ctx context.Context, q tokencache.Token) (tokencache.Token, error) {
	got, err := s.Store.FindToken(ctx, q)
	s.after(ctx, q, got, err)
	return got, err
}

func newWindowWorker(t *testing.T, ep *fakeEndpoint) (*redisstore.Store, *windowStore, *refresher.Refresher) {
	t.Helper()
	tg := redistest.New(t).ExpireOnWallClock()
	ns := redistest.Namespace(t)
	rdb := tg.Client(t)
	redistest.DropNamespaceAtCleanup(t, rdb, ns)
	store := redisstore.New(rdb, redisstore.WithNamespace(ns))
	t.Cleanup(func() { _ = store.DeleteTokens(context.Background()) })
	locker := lock.New(rdb, lock.WithNamespace(ns), lock.WithPollInterval(50*time.Millisecond))
	t.Cleanup(func() { _ = locker.Close() })
	ws := &windowStore{Store: store, t: t, rdb: rdb, ns: ns}
	r := refresher.New(ws, locker, ep, refresher.WithClock(ep.clock.Now))
	t.Cleanup(func() { _ = r.Close() })
	return store, ws, r
}

// The earlier holder's renewal lands between the new holder's read of
// revision N and its record: the new holder must not send N's refresh
// token, which the server has rotated away.
func TestRenewalLandingBeforeTheRecordIsNotSentAgain(t *testing.T) {
	ep := newEndpoint(newClock())
	store, ws, r := newWindowWorker(t, ep)
	seeded := tokencache.Token{UserName: "u", ClientID: "c", ClientSecret: "s", RefreshToken: "r0", AccessToken: "a0", Expiry: ep.clock.Now().Add(time.Hour)}
	if err := store.SaveToken(context.Background(), &seeded); err != nil {
		t.Fatal(err)
	}
	ws.trigger = func(q, got tokencache.Token, err error) bool {
		return q.ID == seeded.ID && err == nil && got.Version == seeded.Version
	}
	var earlier tokencache.Token
	ws.play = func(ctx context.Context) {
		// The earlier holder sent r0 before its lock expired; now its
		// answer comes back, it saves it with a revision check and ends
		// its record.
		renewed, err := ep.Refresh(ctx, seeded)
		if err != nil {
			t.Errorf("the earlier holder's refresh: %v", err)
			return
		}
		renewed.ID, renewed.Version = seeded.ID, seeded.Version
		if err := store.SaveToken(ctx, &renewed); err != nil {
			t.Errorf("the earlier holder's save: %v", err)
		}
		earlier = renewed
	}

	ep.clock.Advance(2 * time.Hour)
	tok, err := r.Token(context.Background(), tokencache.Token{ID: seeded.ID})
	if !ws.played.Load() {
		t.Fatal("the earlier holder never played: the worker did not read the token under its lock")
	}
	if err != nil || tok.AccessToken != earlier.AccessToken {
		t.Errorf("Token = %q, %v; want the earlier holder's %q", tok.AccessToken, err, earlier.AccessToken)
	}
	if ep.refresh.Load() != 1 || ep.reuses.Load() != 0 {
		t.Errorf("the server got %d refreshes and %d reuses; want 1 and 0", ep.refresh.Load(), ep.reuses.Load())
	}
}

// The same for a grant code: the earlier holder's exchange lands between
// the new holder's look for it and its record; the code must not be
// exchanged a second time.
func TestExchangeLandingBeforeTheRecordIsNotSentAgain(t *testing.T) {
	ep := newEndpoint(newClock())
	ep.grants["g1"] = true
	store, ws, r := newWindowWorker(t, ep)
	query := tokencache.Token{UserName: "u", ClientID: "c", ClientSecret: "s", GrantToken: "g1"}
	ws.trigger = func(q, _ tokencache.Token, _ error) bool { return q.GrantToken == "g1" }
	var earlier tokencache.Token
	ws.play = func(ctx context.Context) {
		made, err := ep.Exchange(ctx, query)
		if err != nil {
			t.Errorf("the earlier holder's exchange: %v", err)
			return
		}
		if err := store.SaveToken(ctx, &made); err != nil {
			t.Errorf("the earlier holder's save: %v", err)
		}
		earlier = made
	}

	tok, err := r.Token(context.Background(), query)
	if !ws.played.Load() {
		t.Fatal("the earlier holder never played: the worker did not look for the code under its lock")
	}
	if err != nil || tok.AccessToken != earlier.AccessToken {
		t.Errorf("Token = %q, %v; want the earlier holder's %q", tok.AccessToken, err, earlier.AccessToken)
	}
	if ep.exchange.Load() != 1 {
		t.Errorf("the server got %d exchanges of the code; want 1", ep.exchange.Load())
	}
}
