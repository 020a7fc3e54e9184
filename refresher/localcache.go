package refresher

import (
	"sync"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/l1"
)

// localCache is the optional in-process cache in front of the store
// (WithLocalCache): an l1.Cache that answers a query again for a short time
// without a Redis round trip, only with a token that is still valid, and
// that drops a token as soon as the store announces that it changed, from
// any process. When the store cannot announce changes (it is no
// tokencache.ChangeWatcher), only the TTL bounds how stale an entry gets.
// It is safe for concurrent use; a nil *localCache is off.
type localCache struct {
	c        *l1.Cache
	stop     func() error // ends the watch; nil without one
	stopOnce sync.Once
}

func newLocalCache(ttl time.Duration, store tokencache.Store, now func() time.Time) *localCache {
	c := l1.New(ttl, l1.WithClock(now))
	if c == nil {
		return nil
	}
	lc := &localCache{c: c}
	if w, ok := store.(tokencache.ChangeWatcher); ok {
		lc.stop = w.WatchChanges(watchHandler{c})
	} else {
		c.Up() // nothing to watch: the TTL alone bounds staleness
	}
	return lc
}

// watchHandler feeds a store's change reports to the cache.
type watchHandler struct{ c *l1.Cache }

func (h watchHandler) Changed(id string) { h.c.Drop(id) }
func (h watchHandler) ChangedAll()       { h.c.DropAll() }
func (h watchHandler) Watching(ok bool) {
	if ok {
		h.c.Up()
	} else {
		h.c.Down()
	}
}

// begin returns the stamp of a store read that starts now; see l1.Cache.Begin.
func (lc *localCache) begin() l1.Stamp {
	if lc == nil {
		return 0
	}
	return lc.c.Begin()
}

func (lc *localCache) get(q tokencache.Token) (tokencache.Token, bool) {
	if lc == nil {
		return tokencache.Token{}, false
	}
	return lc.c.Get(q)
}

// put caches tok, read from the store by a read that began at since.
func (lc *localCache) put(q, tok tokencache.Token, since l1.Stamp) {
	if lc != nil {
		lc.c.Put(q, tok, since)
	}
}

// close ends the watch of the store's changes.
func (lc *localCache) close() error {
	if lc == nil || lc.stop == nil {
		return nil
	}
	var err error
	lc.stopOnce.Do(func() { err = lc.stop() })
	return err
}

// cacheKey names a query by the fields its rule compares, for the memory of
// served tokens. Keys live only in this process's memory.
func cacheKey(q tokencache.Token) string { return l1.Key(q) }
