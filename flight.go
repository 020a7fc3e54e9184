package tokencache

import (
	"context"
	"time"
)

// Flight is a mark that a refresh of one token is at the authorization
// server: revision Version of the token is being renewed by Holder, whose
// refresh token must not be sent again until the mark ends (Until) or its
// holder clears it.
type Flight struct {
	Version int64
	Holder  string
	Until   time.Time
}

// FlightRecorder is implemented by durable records (sqlstore) that can keep
// the refresher's in-flight marks, so that a mark survives the loss of
// Redis: a worker that takes the lock after a Redis restart still sees that
// another worker's refresh is at the server and waits for its outcome
// instead of sending the same refresh token a second time.
type FlightRecorder interface {
	// BeginFlight marks revision version of token id as being refreshed by
	// holder for ttl. When another holder's live mark for id is of that
	// revision or a later one, it changes nothing and returns false with
	// that mark; any other mark (the same holder's, an expired one, one of
	// an earlier revision, whose answer has been saved) is replaced.
	BeginFlight(ctx context.Context, id string, version int64, holder string, ttl time.Duration) (ok bool, current Flight, err error)
	// ExtendFlight moves the end of holder's mark for id to ttl from now,
	// and reports false when holder has no live mark there.
	ExtendFlight(ctx context.Context, id, holder string, ttl time.Duration) (bool, error)
	// EndFlight removes holder's mark for id; removing a mark that is not
	// there, or is another holder's, changes nothing and returns nil.
	EndFlight(ctx context.Context, id, holder string) error
	// CurrentFlight returns the live mark for id, if there is one.
	CurrentFlight(ctx context.Context, id string) (Flight, bool, error)
}
