package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/internal/sqltest"
	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/sqlstore"
	"github.com/tokencache/tokencache/storetest"
)

// TestDurableConformance runs the storetest suite on Redis (miniredis, or
// the real server redistest is pointed at) in front of each record sqltest
// offers: SQLite always, PostgreSQL and MySQL when their URLs are set.
func TestDurableConformance(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	for _, db := range sqltest.Targets(t) {
		t.Run(db.Name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) tokencache.Store {
				ns := redistest.Namespace(t)
				redistest.DropNamespaceAtCleanup(t, rdb, ns)
				return redisstore.New(rdb, redisstore.WithNamespace(ns), redisstore.WithDurableStore(sqltest.Open(t, db)))
			})
		})
	}
}

// durableFixture is a Store with a record on SQLite, the record itself, and
// a plain Store on the same namespace that sees only what Redis holds.
type durableFixture struct {
	store  *redisstore.Store
	record *sqlstore.Store
	plain  *redisstore.Store
	rdb    redis.UniversalClient
	ns     string
}

func newDurableFixture(t *testing.T, rdb redis.UniversalClient) durableFixture {
	t.Helper()
	ns := redistest.Namespace(t)
	redistest.DropNamespaceAtCleanup(t, rdb, ns)
	record := sqltest.Open(t, sqltest.SQLite())
	return durableFixture{
		store:  redisstore.New(rdb, redisstore.WithNamespace(ns), redisstore.WithDurableStore(record)),
		record: record,
		plain:  redisstore.New(rdb, redisstore.WithNamespace(ns)),
		rdb:    rdb,
		ns:     ns,
	}
}

// flush deletes every key of the fixture's namespace, as a Redis restarted
// without persistence would have none.
func (f durableFixture) flush(t *testing.T) {
	t.Helper()
	for _, key := range redistest.Keys(t, f.rdb, f.ns+":") {
		if err := f.rdb.Del(context.Background(), key).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func saveAll(t *testing.T, s tokencache.Store, n int) []tokencache.Token {
	t.Helper()
	toks := make([]tokencache.Token, n)
	for i := range toks {
		toks[i] = tokencache.Token{
			UserName: fmt.Sprint("user-", i), ClientID: "c", ClientSecret: "s",
			RefreshToken: fmt.Sprint("refresh-", i), AccessToken: fmt.Sprint("access-", i), GrantToken: fmt.Sprint("grant-", i),
			Expiry: time.Now().Add(time.Hour).Truncate(time.Millisecond),
		}
		if err := s.SaveToken(context.Background(), &toks[i]); err != nil {
			t.Fatal(err)
		}
	}
	return toks
}

// queries returns a query for every rule that finds tok.
func queries(tok tokencache.Token) []tokencache.Token {
	return []tokencache.Token{
		{ID: tok.ID},
		{UserName: tok.UserName, ClientID: tok.ClientID},
		{GrantToken: tok.GrantToken, ClientID: tok.ClientID},
		{RefreshToken: tok.RefreshToken, ClientID: tok.ClientID},
		{AccessToken: tok.AccessToken},
	}
}

// TestDurableRedisFlushed: after Redis loses everything, every token is
// still found by every rule, GetTokens lists them all, and the reads put
// them back into Redis.
func TestDurableRedisFlushed(t *testing.T) {
	ctx := context.Background()
	f := newDurableFixture(t, redistest.New(t).Client(t))
	toks := saveAll(t, f.store, 20)
	f.flush(t)
	if _, err := f.plain.FindTokenByID(ctx, toks[0].ID); !errors.Is(err, tokencache.ErrNotFound) {
		t.Fatalf("Redis still has the token after the flush: %v", err)
	}
	all, err := f.store.GetTokens(ctx)
	if err != nil || len(all) != len(toks) {
		t.Fatalf("GetTokens after the flush = %d tokens, %v; want %d", len(all), err, len(toks))
	}
	walked := 0
	if err := f.store.Walk(ctx, func(tokencache.Token) error { walked++; return nil }); err != nil || walked != len(toks) {
		t.Errorf("Walk after the flush visited %d tokens, %v; want %d", walked, err, len(toks))
	}
	for _, tok := range toks {
		for _, q := range queries(tok) {
			got, err := f.store.FindToken(ctx, q)
			if err != nil || got != tok {
				t.Errorf("FindToken(%s) after the flush = %v, %v; want %v", tokencache.RuleOf(q), got, err, tok)
			}
		}
		// Re-cached: Redis alone answers now.
		if got, err := f.plain.FindToken(ctx, tokencache.Token{UserName: tok.UserName, ClientID: tok.ClientID}); err != nil || got != tok {
			t.Errorf("Redis after the read-through: %v, %v", got, err)
		}
	}
	if st := f.store.DurableStats(); st.ReadThroughs < int64(len(toks)) {
		t.Errorf("DurableStats = %+v, want at least %d read-throughs", st, len(toks))
	}
	// Saves after the flush keep the record's revisions.
	upd := toks[0]
	upd.AccessToken = "access-after-flush"
	if err := f.store.SaveToken(ctx, &upd); err != nil || upd.Version != toks[0].Version+1 {
		t.Errorf("save after the flush: version %d, %v; want %d", upd.Version, err, toks[0].Version+1)
	}
}

// TestDurableRedisDown: with Redis unreachable and the record up, reads,
// saves, deletes of the record and GetTokens work; when Redis comes back
// with what it had, the read that decides a refresh sees the newer token.
func TestDurableRedisDown(t *testing.T) {
	ctx := context.Background()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialerRetries: 1, PoolSize: 4, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	f := newDurableFixture(t, rdb)
	toks := saveAll(t, f.store, 5)

	mr.Close() // Redis is down
	for _, tok := range toks {
		for _, q := range queries(tok) {
			if got, err := f.store.FindToken(ctx, q); err != nil || got != tok {
				t.Errorf("FindToken(%s) with Redis down = %v, %v", tokencache.RuleOf(q), got, err)
			}
		}
	}
	if _, err := f.store.FindToken(ctx, tokencache.Token{UserName: "nobody", ClientID: "c"}); !errors.Is(err, tokencache.ErrNotFound) {
		t.Errorf("a token the record does not have, with Redis down = %v, want ErrNotFound", err)
	}
	refreshed := toks[0]
	refreshed.RefreshToken, refreshed.AccessToken = "refresh-rotated", "access-rotated"
	if err := f.store.SaveToken(ctx, &refreshed); err != nil {
		t.Fatalf("SaveToken with Redis down = %v, want nil: the record took it", err)
	}
	fenced := refreshed
	fenced.AccessToken = "access-fenced"
	if err := f.store.SaveTokenIfLocked(ctx, &fenced, f.ns+":lock:{"+fenced.ID+"}", "holder"); err != nil {
		t.Errorf("SaveTokenIfLocked with a Version, Redis down = %v, want nil: the record's revision fences it", err)
	}
	created := tokencache.Token{UserName: "new", ClientID: "c", RefreshToken: "refresh-new"}
	if err := f.store.SaveToken(ctx, &created); err != nil {
		t.Errorf("new token with Redis down = %v", err)
	}
	if all, err := f.store.GetTokens(ctx); err != nil || len(all) != len(toks)+1 {
		t.Errorf("GetTokens with Redis down = %d, %v", len(all), err)
	}
	if err := f.store.DeleteToken(ctx, toks[1].ID); err == nil || errors.Is(err, tokencache.ErrNotFound) {
		t.Errorf("DeleteToken with Redis down = %v, want an error saying the cached copy remains", err)
	}
	if _, err := f.record.FindTokenByID(ctx, toks[1].ID); !errors.Is(err, tokencache.ErrNotFound) {
		t.Errorf("the record still has the deleted token: %v", err)
	}
	if st := f.store.DurableStats(); st.CacheReadFailures == 0 || st.CacheWriteFailures == 0 {
		t.Errorf("DurableStats = %+v, want read and write failures counted", st)
	}

	// The record's in-flight marks work without Redis.
	flights, ok := f.store.Record().(tokencache.FlightRecorder)
	if !ok {
		t.Fatalf("Record() = %T, want a tokencache.FlightRecorder", f.store.Record())
	}
	if ok, _, err := flights.BeginFlight(ctx, fenced.ID, fenced.Version, "holder", time.Minute); err != nil || !ok {
		t.Errorf("BeginFlight on the record with Redis down = %v, %v", ok, err)
	}

	// Redis comes back with what it had before: the older revision.
	if err := mr.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Ping(ctx).Err() != nil { // go-redis probes a failed server once a second
		if time.Now().After(deadline) {
			t.Fatal("Redis did not come back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	got, err := f.store.FindTokenFromRecord(ctx, tokencache.Token{UserName: toks[0].UserName, ClientID: "c"})
	if err != nil || got.RefreshToken != "refresh-rotated" || got.Version != fenced.Version {
		t.Fatalf("FindTokenFromRecord after Redis came back = %v, %v; want the rotated token at version %d", got, err, fenced.Version)
	}
	if got, err := f.plain.FindTokenByID(ctx, toks[0].ID); err != nil || got.Version != fenced.Version {
		t.Errorf("Redis after FindTokenFromRecord = version %d, %v; want %d", got.Version, err, fenced.Version)
	}
	if _, err := f.store.FindTokenFromRecord(ctx, tokencache.Token{ID: toks[1].ID}); !errors.Is(err, tokencache.ErrNotFound) {
		t.Errorf("FindTokenFromRecord of the deleted token = %v, want ErrNotFound", err)
	}
	if _, err := f.plain.FindTokenByID(ctx, toks[1].ID); !errors.Is(err, tokencache.ErrNotFound) {
		t.Errorf("Redis still serves the deleted token after the record said it is gone: %v", err)
	}
}

// TestDurableRollback restores Redis to a copy taken before a refresh, as
// a host crash with appendfsync everysec would: the read under the lock
// gets the record's rotated refresh token, and Redis is brought forward.
func TestDurableRollback(t *testing.T) {
	ctx := context.Background()
	f := newDurableFixture(t, redistest.New(t).Client(t))
	tok := saveAll(t, f.store, 1)[0]
	restore := snapshot(t, f.rdb, f.ns)
	rotated := tok
	rotated.RefreshToken, rotated.AccessToken = "refresh-rotated", "access-rotated"
	if err := f.store.SaveToken(ctx, &rotated); err != nil {
		t.Fatal(err)
	}
	f.flush(t)
	restore()
	if got, _ := f.plain.FindTokenByID(ctx, tok.ID); got.RefreshToken != tok.RefreshToken {
		t.Fatalf("the rollback did not restore the old revision: %v", got)
	}
	got, err := f.store.FindTokenFromRecord(ctx, tokencache.Token{UserName: tok.UserName, ClientID: tok.ClientID})
	if err != nil || got.RefreshToken != "refresh-rotated" || got.Version != rotated.Version {
		t.Fatalf("FindTokenFromRecord after the rollback = %v, %v; want the rotated refresh token", got, err)
	}
	if got, err := f.store.FindToken(ctx, tokencache.Token{ID: tok.ID}); err != nil || got.Version != rotated.Version {
		t.Errorf("FindToken after the record read = version %d, %v; want %d", got.Version, err, rotated.Version)
	}
	// Saving on the rolled-back revision conflicts: the record decides.
	stale := tok
	stale.AccessToken = "access-stale"
	if err := f.store.SaveToken(ctx, &stale); !errors.Is(err, tokencache.ErrConflict) {
		t.Errorf("save with the rolled-back Version = %v, want ErrConflict", err)
	}
}

// snapshot copies the namespace's keys (hashes, sets and strings, with their
// TTLs) and returns the function that puts that copy back: a Redis restored
// from an older AOF or RDB file.
func snapshot(t *testing.T, rdb redis.UniversalClient, ns string) (restore func()) {
	t.Helper()
	ctx := context.Background()
	var restores []func() error
	for _, key := range redistest.Keys(t, rdb, ns+":") {
		ttl := rdb.PTTL(ctx, key).Val()
		if ttl < 0 {
			ttl = 0
		}
		switch typ := rdb.Type(ctx, key).Val(); typ {
		case "hash":
			m := rdb.HGetAll(ctx, key).Val()
			restores = append(restores, func() error {
				if err := rdb.HSet(ctx, key, m).Err(); err != nil || ttl == 0 {
					return err
				}
				return rdb.PExpire(ctx, key, ttl).Err()
			})
		case "set":
			members := rdb.SMembers(ctx, key).Val()
			restores = append(restores, func() error { return rdb.SAdd(ctx, key, members).Err() })
		case "zset":
			members := rdb.ZRangeWithScores(ctx, key, 0, -1).Val()
			restores = append(restores, func() error {
				if err := rdb.ZAdd(ctx, key, members...).Err(); err != nil || ttl == 0 {
					return err
				}
				return rdb.PExpire(ctx, key, ttl).Err()
			})
		case "string":
			v := rdb.Get(ctx, key).Val()
			restores = append(restores, func() error { return rdb.Set(ctx, key, v, ttl).Err() })
		default:
			t.Fatalf("snapshot: key of type %s", typ)
		}
	}
	return func() {
		t.Helper()
		for _, r := range restores {
			if err := r(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestDurableReadsNeverGoBack races read-throughs (Redis starts empty:
// every token is only in the record) with saves, and checks that a read
// that starts after a save was acknowledged never returns an older
// revision: a stale refill must not outlive a newer save.
func TestDurableReadsNeverGoBack(t *testing.T) {
	ctx := context.Background()
	f := newDurableFixture(t, redistest.New(t).Client(t))
	const tokens, writes, readers = 4, 30, 4
	ids := make([]string, tokens)
	acked := make([]atomic.Int64, tokens)
	for i := range ids {
		tok := tokencache.Token{UserName: fmt.Sprint("u", i), ClientID: "c", RefreshToken: fmt.Sprint("r", i)}
		if err := f.record.SaveToken(ctx, &tok); err != nil { // the record only
			t.Fatal(err)
		}
		ids[i] = tok.ID
		acked[i].Store(tok.Version)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 100)
	for i := range ids {
		wg.Go(func() {
			for w := range writes {
				tok := tokencache.Token{ID: ids[i], UserName: fmt.Sprint("u", i), ClientID: "c", RefreshToken: fmt.Sprint("r", i, "-", w)}
				if err := f.store.SaveToken(ctx, &tok); err != nil {
					errs <- err
					return
				}
				acked[i].Store(tok.Version)
				if w%5 == 0 {
					f.flush(t) // force further read-throughs
				}
			}
		})
	}
	var rg sync.WaitGroup
	for r := range readers {
		rg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-done:
					return
				default:
				}
				i := (n + r) % tokens
				floor := acked[i].Load()
				got, err := f.store.FindToken(ctx, tokencache.Token{UserName: fmt.Sprint("u", i), ClientID: "c"})
				if err != nil {
					errs <- err
					return
				}
				// Right after a flush, a read-through that began before
				// a save may fill Redis with the revision before it; the
				// filling read confirms against the record and corrects
				// it at once (see durable.go). So a read below the floor
				// must converge within a few milliseconds, never stay.
				for try := 0; got.Version < floor && try < 20; try++ {
					time.Sleep(5 * time.Millisecond)
					if got, err = f.store.FindToken(ctx, tokencache.Token{UserName: fmt.Sprint("u", i), ClientID: "c"}); err != nil {
						errs <- err
						return
					}
				}
				if got.Version < floor {
					errs <- fmt.Errorf("token %d: read version %d after version %d was acknowledged, for 100 ms", i, got.Version, floor)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	rg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestDurableRecordDown: with the record unreachable a save fails and
// leaves Redis as it was (the record is the authority), a Redis hit is
// still answered, and a miss is an error, never ErrNotFound.
func TestDurableRecordDown(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.New(t).Client(t)
	ns := redistest.Namespace(t)
	redistest.DropNamespaceAtCleanup(t, rdb, ns)
	record, err := sqlstore.Open(ctx, sqltest.SQLite().DSN(t)) // a file in the test's own directory
	if err != nil {
		t.Fatal(err)
	}
	s := redisstore.New(rdb, redisstore.WithNamespace(ns), redisstore.WithDurableStore(record))
	tok := saveAll(t, s, 1)[0]
	if err := record.Close(); err != nil { // the record is gone
		t.Fatal(err)
	}
	upd := tok
	upd.AccessToken = "access-while-the-record-is-down"
	if err := s.SaveToken(ctx, &upd); err == nil {
		t.Fatalf("SaveToken with the record down = nil, want an error")
	}
	got, err := s.FindTokenByID(ctx, tok.ID)
	if err != nil || got != tok {
		t.Errorf("Redis hit with the record down = %v, %v; want the token as saved before", got, err)
	}
	if _, err := s.FindToken(ctx, tokencache.Token{UserName: "nobody", ClientID: "c"}); err == nil || errors.Is(err, tokencache.ErrNotFound) {
		t.Errorf("a miss with the record down = %v, want an error that is not ErrNotFound", err)
	}
	if _, err := s.FindTokenFromRecord(ctx, tokencache.Token{ID: tok.ID}); err == nil || errors.Is(err, tokencache.ErrNotFound) {
		t.Errorf("FindTokenFromRecord with the record down = %v, want an error that is not ErrNotFound", err)
	}
	if _, err := s.GetTokens(ctx); err == nil {
		t.Errorf("GetTokens with the record down = nil error")
	}
	if err := s.DeleteToken(ctx, tok.ID); err == nil {
		t.Errorf("DeleteToken with the record down = nil, want an error")
	}
	if _, err := s.FindTokenByID(ctx, tok.ID); err != nil {
		t.Errorf("a failed delete dropped the cached copy: %v", err)
	}
}

// A save whose copy could not be installed in Redis drops the older copy,
// so that readers go to the record; a slower save of an earlier revision
// that installs its copy after that drop must not leave Redis holding that
// earlier revision. (Fifty concurrent saves of one token on a loaded
// machine did: the conformance suite found Version 46 after 50 saves.)
func TestDurableLateSaveAfterADropDoesNotGoBack(t *testing.T) {
	f := newDurableFixture(t, redistest.New(t).Client(t))
	ctx := context.Background()
	tok := tokencache.Token{UserName: "u", ClientID: "c", RefreshToken: "r1", AccessToken: "a1", Expiry: time.Now().Add(time.Hour)}
	if err := f.store.SaveToken(ctx, &tok); err != nil {
		t.Fatal(err)
	}
	second := tok
	second.RefreshToken, second.AccessToken = "r2", "a2"
	if err := f.store.SaveToken(ctx, &second); err != nil {
		t.Fatal(err)
	}
	// A third save reaches the record; its copy fails to reach Redis, which
	// then drops the copy it has.
	third := second
	third.RefreshToken, third.AccessToken = "r3", "a3"
	if err := f.record.SaveToken(ctx, &third); err != nil {
		t.Fatal(err)
	}
	if err := f.plain.DeleteToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	// The second save's copy arrives only now.
	redisstore.CacheSaved(ctx, f.store, second)

	for _, q := range []tokencache.Token{{ID: tok.ID}, {UserName: "u", ClientID: "c"}} {
		got, err := f.store.FindToken(ctx, q)
		if err != nil || got.Version != third.Version || got.RefreshToken != "r3" {
			t.Errorf("FindToken(%v) = version %d, %v; want version %d, the record's", q, got.Version, err, third.Version)
		}
	}
	if got, err := f.plain.FindTokenByID(ctx, tok.ID); err == nil && got.Version < third.Version {
		t.Errorf("Redis holds version %d, behind the record's %d", got.Version, third.Version)
	}
}
