package lock

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// hub is a Locker's one subscription to its events channel; it hands each
// message to the Watches of the token it names.
type hub struct {
	ps *redis.PubSub

	mu      sync.Mutex
	watches map[string]map[*Watch]struct{} // guarded by mu; by token ID
	closed  bool                           // guarded by mu
}

// ensureHub returns the running subscription, subscribing first if there is
// none. When Redis cannot be reached it returns nil, and waiters poll.
func (l *Locker) ensureHub(ctx context.Context) *hub {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hub != nil {
		return l.hub
	}
	ps := l.rdb.Subscribe(ctx, l.channel())
	// Receive the confirmation, so that no message published after Watch
	// returns can be missed.
	rctx, cancel := context.WithTimeout(ctx, l.cfg.poll+time.Second)
	defer cancel()
	if _, err := ps.Receive(rctx); err != nil {
		_ = ps.Close()
		return nil
	}
	h := &hub{ps: ps, watches: make(map[string]map[*Watch]struct{})}
	go h.run(ps.Channel())
	l.hub = h
	return h
}

// run delivers messages until the subscription is closed. go-redis
// reconnects and resubscribes by itself; messages published meanwhile are
// lost, which the waiters' polling covers.
func (h *hub) run(msgs <-chan *redis.Message) {
	for msg := range msgs {
		_, id, ok := strings.Cut(msg.Payload, " ")
		if !ok {
			continue
		}
		h.mu.Lock()
		for w := range h.watches[id] {
			w.wake()
		}
		h.mu.Unlock()
	}
}

func (h *hub) add(w *Watch) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	set := h.watches[w.id]
	if set == nil {
		set = make(map[*Watch]struct{})
		h.watches[w.id] = set
	}
	set[w] = struct{}{}
	return true
}

func (h *hub) remove(w *Watch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if set := h.watches[w.id]; set != nil {
		delete(set, w)
		if len(set) == 0 {
			delete(h.watches, w.id)
		}
	}
}

func (h *hub) close() error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	return h.ps.Close()
}

// Watch waits for news of one token: a refresh or a lock release announced
// by any process. Register it before looking at the token's state, then
// Wait, then look again: a message sent in between is not lost. It is safe
// for concurrent use; Stop it when done.
type Watch struct {
	id   string
	poll time.Duration
	hub  *hub          // nil when the subscription failed: polling only
	c    chan struct{} // buffered 1: a wake-up is kept until the next Wait
}

// Watch starts watching token id through the Locker's shared subscription,
// subscribing on first use. When the subscription cannot be made, the
// Watch still works by polling alone.
func (l *Locker) Watch(ctx context.Context, id string) (*Watch, error) {
	if l.cfg.err != nil {
		return nil, l.cfg.err
	}
	w := &Watch{id: id, poll: l.cfg.poll, c: make(chan struct{}, 1)}
	if h := l.ensureHub(ctx); h != nil && h.add(w) {
		w.hub = h
	}
	return w, nil
}

func (w *Watch) wake() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}

// Wait returns when a message about the token arrives (or arrived since the
// last Wait), when the poll interval has passed, or, with ctx's error, when
// ctx ends.
func (w *Watch) Wait(ctx context.Context) error {
	timer := time.NewTimer(w.poll)
	defer timer.Stop()
	select {
	case <-w.c:
		return nil
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop ends the watch.
func (w *Watch) Stop() {
	if w.hub != nil {
		w.hub.remove(w)
	}
}
