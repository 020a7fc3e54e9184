package l1_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/l1"
)

// clock is a settable clock for the tests.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func token(c *clock, id string, version int64, life time.Duration) tokencache.Token {
	return tokencache.Token{
		ID: id, UserName: "user-" + id, ClientID: "client", AccessToken: "at-" + id + fmt.Sprint(version),
		RefreshToken: "rt-" + id, Expiry: c.Now().Add(life), Version: version,
	}
}

func byUser(t tokencache.Token) tokencache.Token {
	return tokencache.Token{UserName: t.UserName, ClientID: t.ClientID}
}

func newUp(t *testing.T, c *clock, ttl time.Duration, opts ...l1.Option) *l1.Cache {
	t.Helper()
	lc := l1.New(ttl, append([]l1.Option{l1.WithClock(c.Now)}, opts...)...)
	lc.Up()
	return lc
}

func mustPut(t *testing.T, lc *l1.Cache, q, tok tokencache.Token) {
	t.Helper()
	if !lc.Put(q, tok, lc.Begin()) {
		t.Fatalf("Put(%v) refused", tok)
	}
}

func wantHit(t *testing.T, lc *l1.Cache, q tokencache.Token, want tokencache.Token) {
	t.Helper()
	got, ok := lc.Get(q)
	if !ok {
		t.Fatalf("Get(%v): miss, want %v", q, want)
	}
	if got != want {
		t.Fatalf("Get(%v) = %v, want %v", q, got, want)
	}
}

func wantMiss(t *testing.T, lc *l1.Cache, q tokencache.Token) {
	t.Helper()
	if got, ok := lc.Get(q); ok {
		t.Fatalf("Get(%v) = %v, want a miss", q, got)
	}
}

func TestNilAndZeroTTL(t *testing.T) {
	if lc := l1.New(0); lc != nil {
		t.Fatalf("New(0) = %v, want nil", lc)
	}
	var lc *l1.Cache
	lc.Up()
	c := newClock()
	tok := token(c, "a", 1, time.Hour)
	if lc.Put(byUser(tok), tok, lc.Begin()) {
		t.Fatal("a nil cache took a token")
	}
	wantMiss(t, lc, byUser(tok))
	lc.Drop("a")
	lc.DropAll()
	lc.Down()
	if lc.Len() != 0 || lc.IsUp() {
		t.Fatal("a nil cache is not empty and down")
	}
}

func TestStartsDown(t *testing.T) {
	c := newClock()
	lc := l1.New(time.Minute, l1.WithClock(c.Now))
	tok := token(c, "a", 1, time.Hour)
	if lc.Put(byUser(tok), tok, lc.Begin()) {
		t.Fatal("Put accepted before Up")
	}
	lc.Up()
	mustPut(t, lc, byUser(tok), tok)
	wantHit(t, lc, byUser(tok), tok)
	wantMiss(t, lc, tokencache.Token{ID: "a"}) // not put under the ID query
}

func TestGetOnlyUnderTheQueryPut(t *testing.T) {
	c := newClock()
	lc := newUp(t, c, time.Minute)
	tok := token(c, "a", 1, time.Hour)
	mustPut(t, lc, byUser(tok), tok)
	wantMiss(t, lc, tokencache.Token{AccessToken: tok.AccessToken})
	wantMiss(t, lc, tokencache.Token{UserName: tok.UserName, ClientID: "other"})
}

func TestTTL(t *testing.T) {
	c := newClock()
	lc := newUp(t, c, time.Minute)
	tok := token(c, "a", 1, time.Hour)
	mustPut(t, lc, byUser(tok), tok)
	c.Advance(59 * time.Second)
	wantHit(t, lc, byUser(tok), tok)
	c.Advance(time.Second)
	wantMiss(t, lc, byUser(tok))
}

// The cache never serves a token that is not valid by the root package's
// rule (tokencache.Token.ValidAt, with its expiry margin), whatever the TTL.
func TestNeverServesAnExpiredToken(t *testing.T) {
	c := newClock()
	lc := newUp(t, c, time.Hour)
	tok := token(c, "a", 1, 15*time.Second)
	tok.RefreshToken = "" // access-only: the store forgets it at Expiry
	mustPut(t, lc, byUser(tok), tok)
	c.Advance(4 * time.Second)
	wantHit(t, lc, byUser(tok), tok)
	c.Advance(time.Second) // 10 s before Expiry: not Valid any more
	if tok.ValidAt(c.Now()) {
		t.Fatal("test setup: the token is still valid")
	}
	wantMiss(t, lc, byUser(tok))
	c.Advance(time.Hour)
	wantMiss(t, lc, byUser(tok))
	if lc.Put(byUser(tok), tok, lc.Begin()) {
		t.Fatal("Put took an expired token")
	}
}

func TestDropRemovesEveryQueryOfTheID(t *testing.T) {
	c := newClock()
	lc := newUp(t, c, time.Minute)
	a, b := token(c, "a", 1, time.Hour), token(c, "b", 1, time.Hour)
	queries := []tokencache.Token{byUser(a), {ID: "a"}, {AccessToken: a.AccessToken}}
	for _, q := range queries {
		mustPut(t, lc, q, a)
	}
	mustPut(t, lc, byUser(b), b)
	lc.Drop("a")
	for _, q := range queries {
		wantMiss(t, lc, q)
	}
	wantHit(t, lc, byUser(b), b)
	lc.DropAll()
	wantMiss(t, lc, byUser(b))
	if n := lc.Len(); n != 0 {
		t.Fatalf("Len after DropAll = %d", n)
	}
}

// A query whose token changed under another query (a refresh replaced the
// access token) finds nothing: the cached token no longer matches it.
func TestReplacedValueStopsMatching(t *testing.T) {
	c := newClock()
	lc := newUp(t, c, time.Minute)
	v1 := token(c, "a", 1, time.Hour)
	byAT := tokencache.Token{AccessToken: v1.AccessToken}
	mustPut(t, lc, byAT, v1)
	v2 := token(c, "a", 2, time.Hour)
	mustPut(t, lc, byUser(v2), v2)
	wantMiss(t, lc, byAT)
	wantHit(t, lc, byUser(v2), v2)
	// An older revision read late does not replace the newer one.
	if lc.Put(tokencache.Token{ID: "a"}, v1, lc.Begin()) {
		t.Fatal("Put of revision 1 over revision 2 accepted")
	}
	wantHit(t, lc, byUser(v2), v2)
}

// A read that began before an invalidation of its token, or of everything,
// or before the cache went down and up, may have seen the old state: its
// put is refused.
func TestPutRefusedAfterInvalidation(t *testing.T) {
	c := newClock()
	tok := token(c, "a", 1, time.Hour)
	cases := []struct {
		name string
		in   func(lc *l1.Cache)
	}{
		{"Drop of the ID", func(lc *l1.Cache) { lc.Drop("a") }},
		{"DropAll", func(lc *l1.Cache) { lc.DropAll() }},
		{"Down and Up", func(lc *l1.Cache) { lc.Down(); lc.Up() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lc := newUp(t, c, time.Minute)
			since := lc.Begin()
			tc.in(lc)
			if lc.Put(byUser(tok), tok, since) {
				t.Fatal("Put accepted a read that began before the invalidation")
			}
			wantMiss(t, lc, byUser(tok))
			mustPut(t, lc, byUser(tok), tok) // a read begun after it is fine
			wantHit(t, lc, byUser(tok), tok)
		})
	}
}

func TestDownEmptiesAndRefuses(t *testing.T) {
	c := newClock()
	lc := newUp(t, c, time.Minute)
	tok := token(c, "a", 1, time.Hour)
	mustPut(t, lc, byUser(tok), tok)
	lc.Down()
	wantMiss(t, lc, byUser(tok))
	if lc.Put(byUser(tok), tok, lc.Begin()) {
		t.Fatal("Put accepted while down")
	}
	lc.Up()
	wantMiss(t, lc, byUser(tok)) // nothing survives a Down
	if n := lc.Len(); n != 0 {
		t.Fatalf("Len after Down and Up = %d", n)
	}
}

func TestBounded(t *testing.T) {
	c := newClock()
	const limit = 64
	lc := newUp(t, c, time.Hour, l1.WithMaxEntries(limit))
	hot := token(c, "hot", 1, time.Hour)
	mustPut(t, lc, byUser(hot), hot)
	for i := range 5000 {
		tok := token(c, fmt.Sprint("t", i), 1, time.Hour)
		mustPut(t, lc, byUser(tok), tok)
		c.Advance(2 * time.Millisecond)
		if _, ok := lc.Get(byUser(hot)); !ok {
			t.Fatalf("the entry used on every put was evicted after %d puts", i+1)
		}
	}
	if n := lc.Len(); n > limit {
		t.Fatalf("Len = %d, bound %d", n, limit)
	}
}

func TestConcurrentUse(t *testing.T) {
	c := newClock()
	lc := newUp(t, c, time.Minute, l1.WithMaxEntries(100))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				tok := token(c, fmt.Sprint("t", (g*7+i)%150), 1, time.Hour)
				switch i % 10 {
				case 0:
					lc.Drop(tok.ID)
				case 1:
					if g == 0 && i%500 == 1 {
						lc.DropAll()
					}
				default:
					since := lc.Begin()
					if got, ok := lc.Get(byUser(tok)); ok && got.ID != tok.ID {
						t.Errorf("Get for %s returned %s", tok.ID, got.ID)
					}
					lc.Put(byUser(tok), tok, since)
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkGet is a hit on one hot token from every goroutine.
func BenchmarkGet(b *testing.B) {
	c := newClock()
	lc := l1.New(time.Hour, l1.WithClock(c.Now))
	lc.Up()
	tok := token(c, "a", 1, 2*time.Hour)
	lc.Put(byUser(tok), tok, lc.Begin())
	q := byUser(tok)
	b.SetParallelism(32) // 64 goroutines on 2 cores
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := lc.Get(q); !ok {
				b.Fatal("miss")
			}
		}
	})
}
