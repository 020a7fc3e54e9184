package redisstore

import "sync"

// hints remembers which token ID an index key pointed to. Every hint is
// checked against the token's hash before it is used, so a stale one is
// harmless. It is safe for concurrent use.
type hints struct {
	size int

	mu sync.Mutex
	m  map[string]string // guarded by mu; index key -> ID
}

func newHints(size int) *hints {
	return &hints{size: size, m: make(map[string]string)}
}

func (h *hints) get(key string) (string, bool) {
	if h.size == 0 {
		return "", false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	id, ok := h.m[key]
	return id, ok
}

func (h *hints) put(key, id string) {
	if h.size == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.m[key]; !ok && len(h.m) >= h.size {
		for k := range h.m { // map order is random: this evicts a random hint
			delete(h.m, k)
			break
		}
	}
	h.m[key] = id
}

func (h *hints) drop(key string) {
	if h.size == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.m, key)
}
