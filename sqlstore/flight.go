package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tokencache/tokencache"
)

var _ tokencache.FlightRecorder = (*Store)(nil)

// flightQueries is the SQL of the in-flight marks.
type flightQueries struct {
	lock, insert, update, extend, end, current string
	tokenVersion                               string // the stored revision of the token itself
}

func buildFlightQueries(d *dialect, name string) flightQueries {
	t := d.ident(flightsTable(name))
	return flightQueries{
		lock:         d.rebind("SELECT version, holder, until_ms FROM " + t + " WHERE id = ?" + d.forUpdate),
		insert:       d.rebind("INSERT INTO " + t + " (id, version, holder, until_ms) VALUES (?, ?, ?, ?)"),
		update:       d.rebind("UPDATE " + t + " SET version = ?, holder = ?, until_ms = ? WHERE id = ?"),
		extend:       d.rebind("UPDATE " + t + " SET until_ms = ? WHERE id = ? AND holder = ? AND until_ms > ?"),
		end:          d.rebind("DELETE FROM " + t + " WHERE id = ? AND holder = ?"),
		current:      d.rebind("SELECT version, holder, until_ms FROM " + t + " WHERE id = ? AND until_ms > ?"),
		tokenVersion: d.rebind("SELECT version FROM " + d.ident(name) + " WHERE id = ?"),
	}
}

// checkFlight validates the arguments every flight method shares.
func checkFlight(id, holder string, ttl time.Duration) error {
	if err := tokencache.ValidateID(id); err != nil {
		return err
	}
	if holder == "" || len(holder) > 1024 {
		return fmt.Errorf("%w: a flight holder must be 1 to 1024 bytes", tokencache.ErrInvalidToken)
	}
	if ttl <= 0 {
		return fmt.Errorf("%w: a flight needs a positive TTL", tokencache.ErrInvalidToken)
	}
	return nil
}

func scanFlight(sc scanner) (tokencache.Flight, error) {
	var (
		f      tokencache.Flight
		holder []byte
		until  int64
	)
	if err := sc.Scan(&f.Version, &holder, &until); err != nil {
		return tokencache.Flight{}, err
	}
	f.Holder, f.Until = string(holder), time.UnixMilli(until)
	return f, nil
}

// BeginFlight marks revision version of token id as being refreshed by
// holder for ttl; see tokencache.FlightRecorder. The mark is a row of the
// table <table>_flights, claimed in one transaction, so two processes can
// never both hold a live mark for one token.
func (s *Store) BeginFlight(ctx context.Context, id string, version int64, holder string, ttl time.Duration) (bool, tokencache.Flight, error) {
	if err := checkFlight(id, holder, ttl); err != nil {
		return false, tokencache.Flight{}, err
	}
	var last error
	for attempt := 0; attempt < maxSaveAttempts; attempt++ {
		ok, cur, err := s.beginFlight(ctx, id, version, holder, ttl)
		if err == nil || !s.d.retryable(err) || ctx.Err() != nil {
			if err != nil {
				err = fmt.Errorf("sqlstore: begin flight: %w", err)
			}
			return ok, cur, err
		}
		last = err // two processes inserted the first mark at once: read the winner's
	}
	return false, tokencache.Flight{}, fmt.Errorf("sqlstore: begin flight: %w", last)
}

func (s *Store) beginFlight(ctx context.Context, id string, version int64, holder string, ttl time.Duration) (bool, tokencache.Flight, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: s.d.isolation})
	if err != nil {
		return false, tokencache.Flight{}, err
	}
	defer func() { _ = tx.Rollback() }()
	now := s.now()
	until := now.Add(ttl).UnixMilli()
	cur, err := scanFlight(tx.QueryRowContext(ctx, s.fq.lock, id))
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, tokencache.Flight{}, err
	}
	// A mark is only for the revision the record holds: when another
	// holder saved a later revision between the caller's read and this
	// call (possible once the lock was lost: a restarted Redis, a paused
	// holder), the refresh token of revision version is already spent.
	// Refuse with an ended mark of the stored revision, so the caller
	// reads again instead of sending it.
	var stored int64
	switch verr := tx.QueryRowContext(ctx, s.fq.tokenVersion, id).Scan(&stored); {
	case verr == nil && stored > version:
		return false, tokencache.Flight{Version: stored, Until: now}, nil
	case verr != nil && !errors.Is(verr, sql.ErrNoRows):
		return false, tokencache.Flight{}, verr
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = tx.ExecContext(ctx, s.fq.insert, id, version, []byte(holder), until)
	case err != nil:
		return false, tokencache.Flight{}, err
	case cur.Holder != holder && cur.Until.After(now) && cur.Version >= version:
		return false, cur, nil
	default:
		_, err = tx.ExecContext(ctx, s.fq.update, version, []byte(holder), until, id)
	}
	if err != nil {
		return false, tokencache.Flight{}, err
	}
	if err := tx.Commit(); err != nil {
		return false, tokencache.Flight{}, err
	}
	return true, tokencache.Flight{Version: version, Holder: holder, Until: time.UnixMilli(until)}, nil
}

// ExtendFlight moves the end of holder's live mark; see
// tokencache.FlightRecorder.
func (s *Store) ExtendFlight(ctx context.Context, id, holder string, ttl time.Duration) (bool, error) {
	if err := checkFlight(id, holder, ttl); err != nil {
		return false, err
	}
	now := s.now()
	res, err := s.db.ExecContext(ctx, s.fq.extend, now.Add(ttl).UnixMilli(), id, []byte(holder), now.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("sqlstore: extend flight: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlstore: extend flight: %w", err)
	}
	return n == 1, nil
}

// EndFlight removes holder's mark; see tokencache.FlightRecorder.
func (s *Store) EndFlight(ctx context.Context, id, holder string) error {
	if err := checkFlight(id, holder, time.Second); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, s.fq.end, id, []byte(holder)); err != nil {
		return fmt.Errorf("sqlstore: end flight: %w", err)
	}
	return nil
}

// CurrentFlight returns the live mark for id; see tokencache.FlightRecorder.
func (s *Store) CurrentFlight(ctx context.Context, id string) (tokencache.Flight, bool, error) {
	if err := tokencache.ValidateID(id); err != nil {
		return tokencache.Flight{}, false, err
	}
	f, err := scanFlight(s.db.QueryRowContext(ctx, s.fq.current, id, s.now().UnixMilli()))
	if errors.Is(err, sql.ErrNoRows) {
		return tokencache.Flight{}, false, nil
	}
	if err != nil {
		return tokencache.Flight{}, false, fmt.Errorf("sqlstore: current flight: %w", err)
	}
	return f, true, nil
}
