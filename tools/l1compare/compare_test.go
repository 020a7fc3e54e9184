// Package l1compare measures internal/l1 (copied in by run.sh) against the
// old refresher cache and hashicorp/golang-lru/v2 and maypok86/otter/v2:
// Get of one of 1,000 hot queries from 64 goroutines, every cache doing the
// same key building and validity checks around its lookup.
package l1compare

import (
	"fmt"
	"sync"
	"testing"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/maypok86/otter/v2"

	"github.com/tokencache/tokencache"
)

type tok = tokencache.Token

func qs() []tokencache.Token {
	out := make([]tokencache.Token, keys)
	for i := range out {
		out[i] = tokencache.Token{UserName: fmt.Sprintf("user-%d@example.com", i), ClientID: "1000.ABCDEFGHIJKLMNOPQRSTUVWXYZABCD"}
	}
	return out
}

func full(q tokencache.Token) tok {
	t := q
	t.ID = "id" + q.UserName
	t.AccessToken, t.RefreshToken = "at", "rt"
	t.Expiry = time.Now().Add(2 * time.Hour)
	t.Version = 1
	return t
}

func check(q tokencache.Token, t tok, ok bool) bool {
	now := time.Now()
	return ok && t.ValidAt(now) && tokencache.Matches(q, t, now)
}

// old is the structure of the refresher's first local cache: one mutex,
// a map by query key, random eviction.
type cached struct {
	tok   tok
	until time.Time
}
type old struct {
	mu      sync.Mutex
	entries map[string]cached
}

func (c *old) get(key string, now time.Time) (tok, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !now.Before(e.until) {
		return tok{}, false
	}
	return e.tok, true
}

const keys = 1000

func run(b *testing.B, get func(k tokencache.Token) bool) {
	ks := qs()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if !get(ks[i%keys]) {
				b.Fatal("miss")
			}
			i++
		}
	})
}

func BenchmarkOldMutexMap(b *testing.B) {
	c := &old{entries: map[string]cached{}}
	for _, q := range qs() {
		c.entries[Key(q)] = cached{tok: full(q), until: time.Now().Add(time.Hour)}
	}
	run(b, func(q tokencache.Token) bool { t, ok := c.get(Key(q), time.Now()); return check(q, t, ok) })
}

func BenchmarkGolangLRU(b *testing.B) {
	c, _ := lru.New[string, cached](10000)
	for _, q := range qs() {
		c.Add(Key(q), cached{tok: full(q), until: time.Now().Add(time.Hour)})
	}
	run(b, func(q tokencache.Token) bool {
		e, ok := c.Get(Key(q))
		return check(q, e.tok, ok && time.Now().Before(e.until))
	})
}

func BenchmarkGolangLRUExpirable(b *testing.B) {
	c := expirable.NewLRU[string, tok](10000, nil, time.Hour)
	for _, q := range qs() {
		c.Add(Key(q), full(q))
	}
	run(b, func(q tokencache.Token) bool { t, ok := c.Get(Key(q)); return check(q, t, ok) })
}

func BenchmarkOtter(b *testing.B) {
	c := otter.Must(&otter.Options[string, tok]{MaximumSize: 10000, ExpiryCalculator: otter.ExpiryWriting[string, tok](time.Hour)})
	for _, q := range qs() {
		c.Set(Key(q), full(q))
	}
	run(b, func(q tokencache.Token) bool { t, ok := c.GetIfPresent(Key(q)); return check(q, t, ok) })
}

func BenchmarkL1(b *testing.B) {
	c := New(time.Hour)
	c.Up()
	for _, q := range qs() {
		c.Put(q, full(q), c.Begin())
	}
	run(b, func(q tokencache.Token) bool { _, ok := c.Get(q); return ok })
}
