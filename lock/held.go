package lock

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bsm/redislock"
)

// Lock is a held lock. Its watchdog extends it every third of its TTL until
// Release; when an extension fails for good, Lost is closed. It is safe for
// concurrent use.
type Lock struct {
	locker *Locker
	id     string
	rlock  *redislock.Lock
	ttl    time.Duration

	lost     chan struct{} // closed by the watchdog when the lock is gone
	stop     chan struct{} // closed by Release to stop the watchdog
	stopped  chan struct{} // closed when the watchdog has returned
	release  sync.Once
	released error // the result of the first Release; written inside release

	flight atomic.Pointer[Flight] // the in-flight record BeginFlight wrote
}

func startLock(l *Locker, id string, rlock *redislock.Lock, ttl time.Duration) *Lock {
	k := &Lock{
		locker:  l,
		id:      id,
		rlock:   rlock,
		ttl:     ttl,
		lost:    make(chan struct{}),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go k.watchdog()
	return k
}

// watchdog extends the lock every third of its TTL. A refused extension (the
// key expired or changed hands) loses the lock at once; failed round trips
// lose it once a whole TTL has passed since the last good extension, since
// the key has expired in Redis by then.
func (k *Lock) watchdog() {
	defer close(k.stopped)
	every := k.ttl / 3
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	lastGood := time.Now()
	for {
		select {
		case <-k.stop:
			return
		case <-ticker.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		err := k.rlock.Refresh(ctx, k.ttl, nil)
		cancel()
		switch {
		case err == nil:
			lastGood = time.Now()
		case errors.Is(err, redislock.ErrNotObtained) || time.Since(lastGood) >= k.ttl:
			close(k.lost)
			return
		}
	}
}

// ID returns the ID of the token the lock is for.
func (k *Lock) ID() string { return k.id }

// Key returns the lock's Redis key.
func (k *Lock) Key() string { return k.rlock.Key() }

// Token returns the lock's fencing value: the random value its key holds
// while this holder has it. A store that checks it atomically with a write
// refuses the write once the lock has passed to someone else.
func (k *Lock) Token() string { return k.rlock.Token() }

// Lost is closed when the watchdog could not keep the lock: the holder must
// not commit anything that needed it.
func (k *Lock) Lost() <-chan struct{} { return k.lost }

// Check asks Redis whether this holder still has the lock: nil if so,
// ErrNotHeld if not.
func (k *Lock) Check(ctx context.Context) error {
	if k == nil {
		return ErrNotHeld
	}
	select {
	case <-k.lost:
		return ErrNotHeld
	default:
	}
	ttl, err := k.rlock.TTL(ctx)
	if err != nil {
		return fmt.Errorf("lock: check %s: %w", k.id, err)
	}
	if ttl <= 0 {
		return ErrNotHeld
	}
	return nil
}

// Release stops the watchdog, deletes the lock if it is still this
// holder's, and wakes the token's waiters. It returns ErrNotHeld when the
// lock had already expired or passed on. Calling it on a nil Lock, or more
// than once, is safe: a nil Lock returns ErrNotHeld, and later calls return
// what the first one did.
func (k *Lock) Release(ctx context.Context) error {
	if k == nil {
		return ErrNotHeld
	}
	k.release.Do(func() {
		close(k.stop)
		<-k.stopped
		err := k.rlock.Release(ctx)
		if errors.Is(err, redislock.ErrLockNotHeld) {
			err = ErrNotHeld
		} else if err != nil {
			err = fmt.Errorf("lock: release %s: %w", k.id, err)
		}
		// Wake waiters even when the lock had expired: they may be
		// sleeping until their next poll.
		_ = k.locker.publish(ctx, eventReleased, k.id)
		k.released = err
	})
	return k.released
}
