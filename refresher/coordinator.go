package refresher

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/lock"
)

// coordinator is how the renewals of one token agree on who calls the
// server: across the fleet through Redis (fleetCoordinator, over a
// lock.Locker), or within this process (localCoordinator, when New is
// given no Locker). The Refresher is written once against it.
type coordinator interface {
	// tryLock takes id's lock without waiting: lock.ErrNotObtained when
	// another holder has it.
	tryLock(ctx context.Context, id string) (holding, error)
	// watch starts watching id for announcements; call it before looking
	// at id's state, so that none in between is missed.
	watch(ctx context.Context, id string) (watching, error)
	// announce wakes id's watchers: its token changed, or its note did.
	announce(ctx context.Context, id string)
	// note returns id's note (the zero note when there is none).
	note(ctx context.Context, id string) (note, error)
	// setNote records n about id for d.
	setNote(ctx context.Context, id string, n note, d time.Duration) error
	// close releases what the coordinator holds (a subscription).
	close() error
}

// holding is a held lock of one token, and the record of the refresh the
// holder is about to send.
type holding interface {
	// begin records that the holder is about to send this revision, for
	// ttl, after checking that the lock is still held (lock.ErrNotHeld if
	// not). When another holder's record of the revision lives, it returns
	// that record and an error wrapping lock.ErrInFlight.
	begin(ctx context.Context, revision int64, ttl time.Duration) (lock.Flight, error)
	// extend keeps the holder's record alive for ttl more.
	extend(ctx context.Context, ttl time.Duration)
	// end drops the holder's record: the answer is saved, or there was none.
	end(ctx context.Context)
	// release gives the lock up.
	release(ctx context.Context)
}

// watching waits for announcements about one token.
type watching interface {
	// wait returns when there may be news (an announcement, or the poll
	// interval passed), or with ctx's error.
	wait(ctx context.Context) error
	stop()
}

// fleetCoordinator coordinates through Redis: a lock.Locker's locks, notes,
// in-flight records and announcements.
type fleetCoordinator struct {
	l       *lock.Locker
	ttl     time.Duration             // lock TTL; 0: the Locker's
	derived bool                      // l was made by New for the store's namespace: close it
	record  tokencache.FlightRecorder // the durable record's in-flight marks; nil without one
}

// flightRecorder returns the durable record's in-flight marks, when the
// store is one (sqlstore) or keeps one behind it (redisstore with
// WithDurableStore, through its Record method).
func flightRecorder(store tokencache.Store) tokencache.FlightRecorder {
	if fr, ok := store.(tokencache.FlightRecorder); ok {
		return fr
	}
	if rs, ok := store.(interface{ Record() tokencache.Store }); ok {
		if fr, ok := rs.Record().(tokencache.FlightRecorder); ok {
			return fr
		}
	}
	return nil
}

func (c *fleetCoordinator) tryLock(ctx context.Context, id string) (holding, error) {
	k, err := c.l.TryObtain(ctx, id, c.ttl)
	if err != nil {
		return nil, err
	}
	if c.record != nil {
		return &durableHolding{fleetHolding: fleetHolding{k}, rec: c.record}, nil
	}
	return fleetHolding{k}, nil
}

func (c *fleetCoordinator) watch(ctx context.Context, id string) (watching, error) {
	w, err := c.l.Watch(ctx, id)
	if err != nil {
		return nil, err
	}
	return fleetWatching{w}, nil
}

func (c *fleetCoordinator) announce(ctx context.Context, id string) {
	_ = c.l.NotifyRefreshed(ctx, id) // waiters poll when a message is lost
}

func (c *fleetCoordinator) note(ctx context.Context, id string) (note, error) {
	text, err := c.l.Note(ctx, id)
	if err != nil {
		return note{}, err
	}
	return parseNote(text), nil
}

func (c *fleetCoordinator) setNote(ctx context.Context, id string, n note, d time.Duration) error {
	return c.l.SetNote(ctx, id, n.String(), d)
}

func (c *fleetCoordinator) close() error {
	if c.derived {
		return c.l.Close()
	}
	return nil
}

type fleetHolding struct{ k *lock.Lock }

func (h fleetHolding) begin(ctx context.Context, revision int64, ttl time.Duration) (lock.Flight, error) {
	return h.k.BeginFlight(ctx, revision, ttl)
}

func (h fleetHolding) extend(ctx context.Context, ttl time.Duration) { _ = h.k.ExtendFlight(ctx, ttl) }

// end drops the record; one that cannot be dropped expires by itself.
func (h fleetHolding) end(ctx context.Context) { _ = h.k.EndFlight(ctx) }

func (h fleetHolding) release(ctx context.Context) { _ = h.k.Release(ctx) }

type fleetWatching struct{ w *lock.Watch }

func (w fleetWatching) wait(ctx context.Context) error { return w.w.Wait(ctx) }
func (w fleetWatching) stop()                          { w.w.Stop() }

// durableHolding keeps the in-flight record in the durable record as well
// as in Redis, so that it survives the loss of Redis: a worker that takes
// the lock on a restarted, empty Redis still finds that another worker's
// refresh is at the server, and waits for its outcome instead of sending
// the same refresh token.
type durableHolding struct {
	fleetHolding
	rec   tokencache.FlightRecorder
	begun atomic.Bool // the durable record has this holder's mark
}

func (h *durableHolding) begin(ctx context.Context, revision int64, ttl time.Duration) (lock.Flight, error) {
	f, err := h.fleetHolding.begin(ctx, revision, ttl) // the lock is held, and Redis has the record
	if err != nil {
		return f, err
	}
	ok, cur, err := h.rec.BeginFlight(ctx, h.k.ID(), revision, h.k.Token(), ttl)
	if err != nil {
		h.fleetHolding.end(ctx)
		return lock.Flight{}, fmt.Errorf("refresher: recording the refresh in flight in the durable record: %w", err) // do not send
	}
	if !ok {
		h.fleetHolding.end(ctx)
		return lock.Flight{Revision: cur.Version, Holder: cur.Holder, TTL: max(time.Until(cur.Until), 0)},
			fmt.Errorf("%w (in the durable record)", lock.ErrInFlight)
	}
	h.begun.Store(true)
	return f, nil
}

func (h *durableHolding) extend(ctx context.Context, ttl time.Duration) {
	h.fleetHolding.extend(ctx, ttl)
	if h.begun.Load() {
		_, _ = h.rec.ExtendFlight(ctx, h.k.ID(), h.k.Token(), ttl)
	}
}

func (h *durableHolding) end(ctx context.Context) {
	h.fleetHolding.end(ctx)
	if h.begun.Swap(false) {
		_ = h.rec.EndFlight(ctx, h.k.ID(), h.k.Token()) // a mark left behind expires by itself
	}
}
