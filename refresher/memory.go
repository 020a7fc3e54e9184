package refresher

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokencache/tokencache"
)

// memory is what this process remembers of the tokens it served, so that
// an outage of the store does not fail a caller whose token still works:
// per query, the last valid token served, until that token expires. It is
// bounded (maxRemembered entries; past it expired entries go first, then
// random ones) and safe for concurrent use. It lives in this process's
// memory only, like the local cache.
type memory struct {
	max int

	mu      sync.RWMutex
	entries map[string]tokencache.Token // guarded by mu; by query (cacheKey)
}

// maxRemembered bounds the memory of served tokens.
const maxRemembered = 10000

func newMemory(max int) *memory {
	return &memory{max: max, entries: make(map[string]tokencache.Token)}
}

// usable reports whether t may be handed to a caller at now: it has an
// access token that has not expired.
func usable(t tokencache.Token, now time.Time) bool {
	return t.AccessToken != "" && !t.ExpiresWithin(now, 0)
}

// get returns the token remembered for key, if it is still usable.
func (m *memory) get(key string, now time.Time) (tokencache.Token, bool) {
	m.mu.RLock()
	t, ok := m.entries[key]
	m.mu.RUnlock()
	if !ok || !usable(t, now) {
		return tokencache.Token{}, false
	}
	return t, true
}

// put remembers t for key. Serving the same token again costs a read lock
// only.
func (m *memory) put(key string, t tokencache.Token, now time.Time) {
	if !usable(t, now) {
		return
	}
	m.mu.RLock()
	old, ok := m.entries[key]
	m.mu.RUnlock()
	if ok && old.ID == t.ID && old.Version == t.Version && old.AccessToken == t.AccessToken {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.entries[key]; !ok && len(m.entries) >= m.max {
		m.evictLocked(now)
	}
	m.entries[key] = t
}

// evictLocked makes room for one entry: every expired entry goes, or, when
// none has expired, a random one (map order is random).
func (m *memory) evictLocked(now time.Time) {
	for k, t := range m.entries {
		if !usable(t, now) {
			delete(m.entries, k)
		}
	}
	if len(m.entries) < m.max {
		return
	}
	for k := range m.entries {
		delete(m.entries, k)
		return
	}
}

// forget drops what is remembered for key: the store said the query
// matches nothing, which an outage never says.
func (m *memory) forget(key string) {
	m.mu.RLock()
	_, ok := m.entries[key]
	m.mu.RUnlock()
	if !ok {
		return
	}
	m.mu.Lock()
	delete(m.entries, key)
	m.mu.Unlock()
}

// successors are the renewed tokens of this process whose save has not
// landed yet: the server answered, the refresh token that was sent is dead,
// and the answer lives here until the store has it. Token serves them in
// place of the older revision the store still holds. Safe for concurrent
// use.
type successors struct {
	n atomic.Int64 // len(entries), read without the mutex on every Token call

	mu      sync.Mutex
	entries map[string]successor // guarded by mu; by token ID or pseudo-ID
}

type successor struct {
	tok  tokencache.Token
	base int64 // the stored revision the answer renews (0 for a new token)
}

func newSuccessors() *successors { return &successors{entries: make(map[string]successor)} }

func (s *successors) put(key string, tok tokencache.Token, base int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries[key] = successor{tok: tok, base: base}
	s.n.Store(int64(len(s.entries)))
}

func (s *successors) drop(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.entries, key)
	s.n.Store(int64(len(s.entries)))
}

// get returns the successor waiting to be saved under key.
func (s *successors) get(key string) (tokencache.Token, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	return e.tok, ok
}

// newer returns the successor of stored when there is one: an answer of
// the server for stored's revision (or an older one) not saved yet.
func (s *successors) newer(stored tokencache.Token) (tokencache.Token, bool) {
	if s.n.Load() == 0 {
		return tokencache.Token{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[stored.ID]
	if !ok || stored.Version > e.base {
		return tokencache.Token{}, false
	}
	return e.tok, true
}
