package refresher

import (
	"strconv"
	"sync"
	"time"

	"github.com/tokencache/tokencache"
)

// localCache is the optional in-process cache in front of the store
// (WithLocalCache): it answers a query again for a short time without a
// Redis round trip, and only with a token that is still fresh. It is safe
// for concurrent use.
type localCache struct {
	ttl time.Duration
	max int

	mu      sync.Mutex
	entries map[string]cached // guarded by mu; by query
}

type cached struct {
	tok   tokencache.Token
	until time.Time // when the entry stops answering, whatever the token's expiry
}

// localCacheEntries bounds the cache; past it a random entry is evicted.
const localCacheEntries = 10000

func newLocalCache(ttl time.Duration) *localCache {
	if ttl <= 0 {
		return nil
	}
	return &localCache{ttl: ttl, max: localCacheEntries, entries: make(map[string]cached)}
}

// cacheKey names a query by the fields its rule compares. Keys live only in
// this process's memory.
func cacheKey(q tokencache.Token) string {
	rule := tokencache.RuleOf(q)
	var value string
	switch rule {
	case tokencache.RuleID:
		value = q.ID
	case tokencache.RuleUserName:
		value = q.UserName
	case tokencache.RuleGrantToken:
		value = q.GrantToken
	case tokencache.RuleRefreshToken:
		value = q.RefreshToken
	case tokencache.RuleAccessToken:
		value = q.AccessToken
	}
	return strconv.Itoa(int(rule)) + ":" + strconv.Itoa(len(q.ClientID)) + ":" + q.ClientID + ":" + value
}

func (c *localCache) get(key string, now time.Time) (tokencache.Token, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return tokencache.Token{}, false
	}
	if !now.Before(e.until) {
		delete(c.entries, key)
		return tokencache.Token{}, false
	}
	return e.tok, true
}

func (c *localCache) put(key string, tok tokencache.Token, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		for k := range c.entries { // map order is random: a random eviction
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = cached{tok: tok, until: now.Add(c.ttl)}
}
