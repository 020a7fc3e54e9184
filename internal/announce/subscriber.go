package announce

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Handler receives what a Subscriber learns. Its methods are called from the
// Subscriber's single goroutine, one at a time and in order, and must not
// block.
//
// A Handler starts out down: until the first Up, messages may have been
// missed.
type Handler interface {
	// Drop is called for every announced token ID.
	Drop(id string)
	// DropAll is called when every token may have changed.
	DropAll()
	// Up is called once the server has confirmed the subscription: from
	// now on every announcement reaches Drop or DropAll, until Down.
	Up()
	// Down is called when announcements may be missed from now on: the
	// connection failed, went silent, or the Subscriber is closing.
	Down()
}

// Defaults of a Subscriber.
const (
	// DefaultPingInterval is how long a quiet subscription waits before it
	// pings the server; a ping unanswered for another interval counts as a
	// dead connection.
	DefaultPingInterval = time.Second
	minBackoff          = 20 * time.Millisecond
	maxBackoff          = 2 * time.Second
)

// Option configures a Subscriber.
type Option func(*Subscriber)

// WithPingInterval sets how often a quiet subscription checks that its
// connection is alive (default one second). A connection that answers
// nothing for two intervals is dropped, so this bounds how long a silently
// dead connection goes unnoticed. Values below 10 ms are raised to 10 ms.
func WithPingInterval(d time.Duration) Option {
	return func(s *Subscriber) { s.interval = max(d, 10*time.Millisecond) }
}

// Subscriber listens to the announcements of one namespace and reconnects
// on its own after a failure. It is safe for concurrent use; Close stops it.
type Subscriber struct {
	rdb      redis.UniversalClient
	channel  string
	h        Handler
	interval time.Duration

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once

	mu     sync.Mutex
	ps     *redis.PubSub // guarded by mu; the session's, nil between sessions
	closed bool          // guarded by mu
}

// Subscribe starts a Subscriber for the namespace ns on rdb that reports to
// h. It returns at once; h.Up tells when the subscription holds.
func Subscribe(rdb redis.UniversalClient, ns string, h Handler, opts ...Option) *Subscriber {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Subscriber{
		rdb: rdb, channel: Channel(ns), h: h, interval: DefaultPingInterval,
		cancel: cancel, done: make(chan struct{}),
	}
	for _, opt := range opts {
		if opt != nil {
			opt(s)
		}
	}
	go s.run(ctx)
	return s
}

// Close stops the Subscriber and waits for its goroutine; the Handler gets
// a last Down if it was up. It is safe to call more than once and on a nil
// Subscriber.
func (s *Subscriber) Close() error {
	if s == nil {
		return nil
	}
	s.closeOnce.Do(func() {
		s.cancel()
		s.mu.Lock()
		s.closed = true
		if s.ps != nil {
			_ = s.ps.Close() // interrupts a read in progress
		}
		s.mu.Unlock()
	})
	<-s.done
	return nil
}

func (s *Subscriber) run(ctx context.Context) {
	defer close(s.done)
	backoff := minBackoff
	for ctx.Err() == nil {
		if s.session(ctx) {
			backoff = minBackoff
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// session subscribes on a connection of its own and reads it until it
// fails. It reports whether the subscription was up at some point.
func (s *Subscriber) session(ctx context.Context) (wasUp bool) {
	ps := s.rdb.Subscribe(ctx, s.channel)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ps.Close()
		return false
	}
	s.ps = ps
	s.mu.Unlock()
	defer func() {
		if wasUp {
			s.h.Down()
		}
		s.mu.Lock()
		s.ps = nil
		s.mu.Unlock()
		_ = ps.Close()
	}()
	heard := time.Now() // the last time anything arrived, or the session's start
	for {
		msg, err := ps.ReceiveTimeout(ctx, s.interval)
		if ctx.Err() != nil {
			return wasUp
		}
		if err != nil {
			if !isTimeout(err) || time.Since(heard) >= 2*s.interval {
				return wasUp // failed, or silent for two intervals
			}
			if err := ps.Ping(ctx); err != nil {
				return wasUp
			}
			continue
		}
		heard = time.Now()
		switch m := msg.(type) {
		case *redis.Subscription:
			switch {
			case m.Channel != s.channel:
			case m.Kind == "subscribe" && !wasUp:
				wasUp = true
				s.h.Up()
			case m.Kind == "unsubscribe":
				return wasUp
			}
		case *redis.Message:
			if !wasUp || m.Channel != s.channel {
				continue
			}
			if m.Payload == All {
				s.h.DropAll()
			} else {
				s.h.Drop(m.Payload)
			}
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
