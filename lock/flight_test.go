package lock_test

import (
	"errors"
	"testing"
	"time"

	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/lock"
)

func TestFlightRecord(t *testing.T) {
	tg := redistest.New(t).ExpireOnWallClock()
	const ttl = 5 * time.Second // long enough for a loaded machine: the pause is played by Release
	a := newLocker(t, tg.Client(t), lock.WithTTL(ttl))
	b := lock.New(tg.Client(t), lock.WithNamespace(a.Namespace()), lock.WithTTL(ttl)) // another process
	t.Cleanup(func() { _ = b.Close() })

	if _, ok, err := a.FlightOf(ctx, "tok"); ok || err != nil {
		t.Fatalf("FlightOf before any flight = %v, %v", ok, err)
	}
	held, err := a.TryObtain(ctx, "tok", 0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := held.BeginFlight(ctx, 7, 2*time.Second)
	if err != nil || f.Revision != 7 || f.Holder != held.Token() {
		t.Fatalf("BeginFlight = %+v, %v", f, err)
	}
	// The holder is paused past its lock TTL: the lock passes on, the
	// record stays, and the next holder may not send revision 7.
	_ = held.Release(ctx)
	next, err := b.TryObtain(ctx, "tok", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Release(ctx)
	other, err := next.BeginFlight(ctx, 7, time.Second)
	if !errors.Is(err, lock.ErrInFlight) || other.Revision != 7 || other.Holder != held.Token() || other.TTL <= 0 || other.TTL > 2*time.Second {
		t.Fatalf("BeginFlight over another's record = %+v, %v; want ErrInFlight with that record", other, err)
	}
	if got, ok, err := b.FlightOf(ctx, "tok"); !ok || err != nil || got.Revision != 7 || got.Holder != held.Token() {
		t.Errorf("FlightOf = %+v, %v, %v", got, ok, err)
	}
	// The first holder extends and ends its record after its lock is gone.
	if err := held.ExtendFlight(ctx, 3*time.Second); err != nil {
		t.Errorf("ExtendFlight after Release = %v", err)
	}
	if err := held.EndFlight(ctx); err != nil {
		t.Errorf("EndFlight = %v", err)
	}
	if err := held.EndFlight(ctx); !errors.Is(err, lock.ErrNotHeld) {
		t.Errorf("second EndFlight = %v, want ErrNotHeld", err)
	}
	if _, err := next.BeginFlight(ctx, 7, time.Second); err != nil {
		t.Errorf("BeginFlight once the record ended = %v", err)
	}
	// A holder whose lock is gone writes no record.
	if _, err := held.BeginFlight(ctx, 8, time.Second); !errors.Is(err, lock.ErrNotHeld) {
		t.Errorf("BeginFlight without the lock = %v, want ErrNotHeld", err)
	}
}

func TestFlightRecordExpires(t *testing.T) {
	tg := redistest.New(t).ExpireOnWallClock()
	l := newLocker(t, tg.Client(t))
	held, err := l.TryObtain(ctx, "tok", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release(ctx)
	if _, err := held.BeginFlight(ctx, 1, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	if _, ok, err := l.FlightOf(ctx, "tok"); ok || err != nil {
		t.Errorf("FlightOf after the record's TTL = %v, %v; want none", ok, err)
	}
}
