package lock

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// hub is a Locker's one subscription to its events channel; it hands each
// message to the Watches of the token it names. Its own goroutine
// subscribes, so that no caller ever waits for a connection while holding
// a lock of the Locker: when new connections to Redis hang, Watches of
// different tokens do not queue behind one another, each just polls.
type hub struct {
	ready chan struct{} // closed once the subscription is confirmed
	stop  chan struct{} // closed by close

	mu      sync.Mutex
	watches map[string]map[*Watch]struct{} // guarded by mu; by token ID
	ps      *redis.PubSub                  // guarded by mu; nil until subscribed
	failed  bool                           // guarded by mu; an attempt to subscribe failed
	closed  bool                           // guarded by mu
}

// subscribeBackoff bounds the pause between two attempts to subscribe.
const subscribeBackoff = 5 * time.Second

// hubFor returns the Locker's hub, starting it if there is none. It never
// waits for Redis.
func (l *Locker) hubFor() *hub {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.hub == nil {
		l.hub = &hub{ready: make(chan struct{}), stop: make(chan struct{}), watches: make(map[string]map[*Watch]struct{})}
		go l.hub.subscribe(l.rdb, l.channel(), l.cfg.poll)
	}
	return l.hub
}

// subscribe subscribes until it succeeds or the hub is closed, then
// delivers messages. go-redis reconnects and resubscribes by itself once
// subscribed; messages published meanwhile are lost, which the waiters'
// polling covers.
func (h *hub) subscribe(rdb redis.UniversalClient, channel string, poll time.Duration) {
	pause := poll
	for {
		ctx, cancel := context.WithTimeout(context.Background(), poll+time.Second)
		ps := rdb.Subscribe(ctx, channel)
		// Receive the confirmation: a message published after it reaches us.
		_, err := ps.Receive(ctx)
		cancel()
		if err == nil {
			h.mu.Lock()
			if h.closed {
				h.mu.Unlock()
				_ = ps.Close()
				return
			}
			h.ps = ps
			h.mu.Unlock()
			close(h.ready)
			h.run(ps.Channel())
			return
		}
		_ = ps.Close()
		h.mu.Lock()
		h.failed = true
		h.mu.Unlock()
		select {
		case <-h.stop:
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, subscribeBackoff)
	}
}

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

// add registers w; false when the hub is closed.
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

// settling reports whether the first attempt to subscribe is still under
// way: a new Watch then waits a little for it.
func (h *hub) settling() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.failed && h.ps == nil && !h.closed
}

func (h *hub) close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	ps := h.ps
	close(h.stop)
	h.mu.Unlock()
	if ps == nil {
		return nil
	}
	return ps.Close()
}

// Watch waits for news of one token: a refresh or a lock release announced
// by any process. Register it before looking at the token's state, then
// Wait, then look again: a message sent in between is not lost. It is safe
// for concurrent use; Stop it when done.
type Watch struct {
	id   string
	poll time.Duration
	hub  *hub          // nil when the Locker was closed: polling only
	c    chan struct{} // buffered 1: a wake-up is kept until the next Wait
}

// Watch starts watching token id through the Locker's shared subscription,
// which the first Watch starts. While that first subscription is being
// made, Watch waits for it for at most the poll interval (or until ctx
// ends); once an attempt has failed it does not wait at all. A Watch
// without a working subscription still works, by polling alone.
func (l *Locker) Watch(ctx context.Context, id string) (*Watch, error) {
	if l.cfg.err != nil {
		return nil, l.cfg.err
	}
	w := &Watch{id: id, poll: l.cfg.poll, c: make(chan struct{}, 1)}
	h := l.hubFor()
	if h.add(w) {
		w.hub = h
	}
	if h.settling() {
		timer := time.NewTimer(l.cfg.poll)
		select {
		case <-h.ready:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
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
