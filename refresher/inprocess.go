package refresher

import (
	"context"
	"sync"
	"time"

	"github.com/tokencache/tokencache/lock"
)

// localCoordinator coordinates the renewals of one process, for a
// Refresher without a Locker: in-memory locks (which no holder outlives,
// so they need no TTL and in-flight records have nothing to add), notes
// and announcements. A foreground and a background renewal of one token
// exclude each other through it as two workers of a fleet do.
type localCoordinator struct {
	poll time.Duration

	mu      sync.Mutex
	locks   map[string]*localHolding            // guarded by mu; by ID
	notes   map[string]localNote                // guarded by mu; by ID
	watches map[string]map[*localWatch]struct{} // guarded by mu; by ID
}

type localNote struct {
	n     note
	until time.Time
}

// localPoll is how often an in-process waiter looks again without news: a
// safety net only, every change is announced.
const localPoll = 250 * time.Millisecond

// maxLocalNotes is how many notes the map holds before expired ones are
// swept.
const maxLocalNotes = 1024

func newLocalCoordinator() *localCoordinator {
	return &localCoordinator{
		poll:    localPoll,
		locks:   make(map[string]*localHolding),
		notes:   make(map[string]localNote),
		watches: make(map[string]map[*localWatch]struct{}),
	}
}

func (c *localCoordinator) tryLock(_ context.Context, id string) (holding, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.locks[id] != nil {
		return nil, lock.ErrNotObtained
	}
	h := &localHolding{c: c, id: id}
	c.locks[id] = h
	return h, nil
}

func (c *localCoordinator) watch(_ context.Context, id string) (watching, error) {
	w := &localWatch{c: c, id: id, ch: make(chan struct{}, 1)}
	c.mu.Lock()
	defer c.mu.Unlock()
	set := c.watches[id]
	if set == nil {
		set = make(map[*localWatch]struct{})
		c.watches[id] = set
	}
	set[w] = struct{}{}
	return w, nil
}

func (c *localCoordinator) announce(_ context.Context, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wakeLocked(id)
}

func (c *localCoordinator) wakeLocked(id string) {
	for w := range c.watches[id] {
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}
}

func (c *localCoordinator) note(_ context.Context, id string) (note, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.notes[id]
	if !ok {
		return note{}, nil
	}
	if !time.Now().Before(n.until) {
		delete(c.notes, id)
		return note{}, nil
	}
	return n.n, nil
}

func (c *localCoordinator) setNote(_ context.Context, id string, n note, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if len(c.notes) >= maxLocalNotes {
		for k, v := range c.notes {
			if !now.Before(v.until) {
				delete(c.notes, k)
			}
		}
	}
	c.notes[id] = localNote{n: n, until: now.Add(d)}
	return nil
}

func (c *localCoordinator) close() error { return nil }

type localHolding struct {
	c    *localCoordinator
	id   string
	once sync.Once
}

// begin has nothing to record: nobody else of this process can hold the
// lock, and a paused holder pauses the whole process.
func (h *localHolding) begin(_ context.Context, revision int64, ttl time.Duration) (lock.Flight, error) {
	return lock.Flight{Revision: revision, TTL: ttl}, nil
}

func (h *localHolding) extend(context.Context, time.Duration) {}
func (h *localHolding) end(context.Context)                   {}

func (h *localHolding) release(context.Context) {
	h.once.Do(func() {
		h.c.mu.Lock()
		defer h.c.mu.Unlock()
		if h.c.locks[h.id] == h {
			delete(h.c.locks, h.id)
		}
		h.c.wakeLocked(h.id)
	})
}

type localWatch struct {
	c  *localCoordinator
	id string
	ch chan struct{} // buffered 1: a wake-up is kept until the next wait
}

func (w *localWatch) wait(ctx context.Context) error {
	timer := time.NewTimer(w.c.poll)
	defer timer.Stop()
	select {
	case <-w.ch:
		return nil
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *localWatch) stop() {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	if set := w.c.watches[w.id]; set != nil {
		delete(set, w)
		if len(set) == 0 {
			delete(w.c.watches, w.id)
		}
	}
}
