package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
)

// Crash safety of a save with a record, step by step. A save is (1) the
// record's commit (the revision N+1 is decided there, by its compare-and-set
// or its unique indexes), then (2) put: Redis gets exactly that token unless
// it already holds N+1 or later, then (3), only when (2) failed, the drop of
// the Redis copy.
//
//   - Interrupted before (1) commits: nothing changed anywhere; the caller
//     has an error (or, if the commit landed but its answer was lost, the
//     record has N+1 and the next save with Version N gets ErrConflict, as
//     with any store).
//   - Between (1) and (2) (a killed process, Redis down): the record has
//     N+1, Redis still N. Plain reads may be answered with N, whose access
//     token still works until it expires; the read that decides a refresh
//     is FindTokenFromRecord, which gets N+1 and puts it. Nothing can save
//     over N+1 from N: the record refuses Version N.
//   - (2) half done (the hash written, an index entry not): put's own
//     guarantees (see save.go); every lookup checks the hash it reaches.
//   - (2) failed and (3) failed too (Redis unreachable): as "between (1)
//     and (2)", counted in DurableStats.CacheDropFailures.
//
// A read-through (record read, then put, then a second record read by ID)
// interleaved with a save: Redis only moves forward (put ignores an older
// revision), and the second read replaces a copy that a save overtook, so a
// read that starts after a save returned never sees an older revision,
// while Redis is up and keeps its data. One window remains when Redis is
// flushed or restarted under load: a read-through that read N from the
// record before a save of N+1, and puts N after the flush wiped N+1 from
// Redis, leaves N in Redis until its own second record read replaces it
// (milliseconds); a plain read in that window can return N. The read that
// decides a refresh never can (FindTokenFromRecord), and a save from N is
// refused by the record. A fill lease (a marker set on the miss, removed
// by saves and flushes, required by the put) would close it; not done.
// TestDurableReadsNeverGoBack checks that such a read converges at once.

// cacheTimeout bounds the cache work a durable Store does after the record
// has answered (installing a token, dropping a stale copy). It runs on a
// context detached from the caller's, so that a caller giving up cannot
// leave a stale copy behind half way.
const cacheTimeout = 2 * time.Second

// WithDurableStore makes Redis a cache in front of durable, the record
// (for instance an sqlstore.Store), so that losing Redis loses no token:
//
//   - SaveToken saves to the record first; the record's revision is the
//     authority, and Redis then gets exactly the token the record stored.
//     When Redis fails after the record took the save, the save has still
//     succeeded: the stale copy is dropped from Redis (counted in
//     DurableStats) so that readers fall through to the record.
//   - FindToken and FindTokenByID answer from Redis; on a miss, or when
//     Redis fails, from the record, and the token is cached again (and
//     dropped once more if a save or delete overtook the read meanwhile).
//   - FindTokenFromRecord (tokencache.RecordFinder) reads the record only:
//     the refresher's read under the lock, so a flushed, restarted or
//     rolled-back Redis never hands out a rotated refresh token.
//   - GetTokens and Walk list the record; DeleteToken and DeleteTokens delete from
//     the record, then from Redis (an error says when Redis kept a copy).
//   - SaveTokenIfLocked with a Version relies on the record's
//     compare-and-set, so it works while Redis is down; with Version 0 it
//     needs the lock checked in Redis.
//
// The record must keep the tokencache.Store contract (IDs and revisions
// are its own). A nil durable leaves Redis as the only store.
func WithDurableStore(durable tokencache.Store) Option {
	return func(c *config) { c.durable = durable }
}

// DurableStats counts what a Store with a record did besides answering from
// Redis. Counters only grow.
type DurableStats struct {
	// ReadThroughs counts reads the record answered after Redis missed or
	// failed.
	ReadThroughs int64
	// CacheReadFailures counts reads Redis failed; the record answered them.
	CacheReadFailures int64
	// CacheWriteFailures counts saves the record took and Redis did not;
	// the stale copy was then dropped from Redis.
	CacheWriteFailures int64
	// CacheDropFailures counts stale copies that could not be dropped
	// either (Redis down): Redis may serve that older revision to plain
	// reads until it expires or the token is saved again, but never to
	// FindTokenFromRecord.
	CacheDropFailures int64
}

// durable is the record of a Store built WithDurableStore, with the
// Redis-only Store that caches it.
type durable struct {
	record tokencache.Store
	cache  *Store // same client, namespace and options, no record

	readThroughs, readFailures, writeFailures, dropFailures atomic.Int64
}

// newDurable returns the durable part of a Store built from these options,
// or nil without a record.
func newDurable(rdb redis.UniversalClient, opts []Option, c config) *durable {
	if c.durable == nil || c.err != nil || rdb == nil {
		return nil
	}
	return &durable{
		record: c.durable,
		cache:  New(rdb, slices.Concat(opts, []Option{WithDurableStore(nil)})...),
	}
}

// DurableStats returns the counters of the record; all zero without one.
func (s *Store) DurableStats() DurableStats {
	if s.dur == nil {
		return DurableStats{}
	}
	return DurableStats{
		ReadThroughs:       s.dur.readThroughs.Load(),
		CacheReadFailures:  s.dur.readFailures.Load(),
		CacheWriteFailures: s.dur.writeFailures.Load(),
		CacheDropFailures:  s.dur.dropFailures.Load(),
	}
}

// Record returns the durable record given to WithDurableStore, or nil
// without one. The refresher uses it to reach capabilities of the record
// itself, such as tokencache.FlightRecorder, that must outlive Redis.
func (s *Store) Record() tokencache.Store {
	if s.dur == nil {
		return nil
	}
	return s.dur.record
}

var _ tokencache.RecordFinder = (*Store)(nil)

// FindTokenFromRecord returns the token query matches as the record holds
// it, never from Redis, and caches it; see tokencache.RecordFinder. When the
// record has no such token, a copy Redis still holds is dropped. Without a
// record Redis is the record, and this is FindToken.
func (s *Store) FindTokenFromRecord(ctx context.Context, query tokencache.Token) (tokencache.Token, error) {
	if s.dur == nil {
		return s.FindToken(ctx, query)
	}
	return s.dur.fromRecord(ctx, query)
}

func (d *durable) findToken(ctx context.Context, query tokencache.Token) (tokencache.Token, error) {
	if err := tokencache.ValidateQuery(query); err != nil {
		return tokencache.Token{}, err
	}
	t, err := d.cache.FindToken(ctx, query)
	switch {
	case err == nil:
		return t, nil
	case errors.Is(err, tokencache.ErrNotFound):
	case ctx.Err() != nil, errors.Is(err, tokencache.ErrInvalidToken), errors.Is(err, ErrBadOption):
		return tokencache.Token{}, err
	default:
		d.readFailures.Add(1) // Redis failed: the record answers
	}
	t, err = d.record.FindToken(ctx, query)
	if err != nil {
		return tokencache.Token{}, err
	}
	d.readThroughs.Add(1)
	d.refill(ctx, t)
	return t, nil
}

func (d *durable) findTokenByID(ctx context.Context, id string) (tokencache.Token, error) {
	if err := tokencache.ValidateID(id); err != nil {
		return tokencache.Token{}, err
	}
	return d.findToken(ctx, tokencache.Token{ID: id})
}

func (d *durable) fromRecord(ctx context.Context, query tokencache.Token) (tokencache.Token, error) {
	if err := tokencache.ValidateQuery(query); err != nil {
		return tokencache.Token{}, err
	}
	t, err := d.record.FindToken(ctx, query)
	if errors.Is(err, tokencache.ErrNotFound) {
		// Whatever Redis holds for this query is stale.
		cctx, cancel := detached(ctx)
		defer cancel()
		if stale, err := d.cache.FindToken(cctx, query); err == nil {
			d.drop(cctx, stale.ID)
		}
		return tokencache.Token{}, fmt.Errorf("redisstore: find token in the record: %w", err)
	}
	if err != nil {
		return tokencache.Token{}, err
	}
	d.refill(ctx, t)
	return t, nil
}

// refill caches t, just read from the record, then reads the record once
// more: a save that overtook the read may have found no copy to replace
// (its own cache write failed, or Redis had been flushed), and then the
// older t was installed after it. Redis then gets the record's current
// revision instead; it only ever moves forward, so a stale refill that
// comes later still is a no-op. A token the record no longer has is
// dropped. Failures are counted, never returned: the caller has its answer.
func (d *durable) refill(ctx context.Context, t tokencache.Token) {
	cctx, cancel := detached(ctx)
	defer cancel()
	if err := d.cache.put(cctx, t); err != nil {
		d.writeFailures.Add(1)
		return
	}
	d.catchUp(cctx, t)
}

// catchUp reads the record once more after t was installed in Redis, and
// moves Redis on to the record's current revision when that is not t.
func (d *durable) catchUp(cctx context.Context, t tokencache.Token) {
	cur, err := d.record.FindTokenByID(cctx, t.ID)
	switch {
	case err == nil && cur.Version == t.Version:
		return
	case err == nil && cur.Version > t.Version:
		if d.cache.put(cctx, cur) == nil {
			return
		}
	case err == nil:
		// Deleted and saved again under the same ID: its revisions started
		// over, below the copy just installed.
		d.drop(cctx, t.ID)
		if d.cache.put(cctx, cur) == nil {
			return
		}
	}
	d.drop(cctx, t.ID) // gone from the record, or it cannot say: a miss is safe
}

// drop removes the cached copy of the token with this ID.
func (d *durable) drop(ctx context.Context, id string) {
	if err := d.cache.DeleteToken(ctx, id); err != nil {
		d.dropFailures.Add(1)
	}
}

func (d *durable) saveToken(ctx context.Context, token *tokencache.Token) error {
	chosenID := token != nil && token.ID != ""
	if err := d.record.SaveToken(ctx, token); err != nil {
		return err
	}
	d.cacheSaved(ctx, *token, chosenID)
	return nil
}

// cacheSaved installs a token the record has just stored. If Redis refuses,
// the save stands (the record has it) and the older cached revision is
// dropped, so that readers fall through to the record.
//
// A copy only ever replaces an older one, so concurrent saves leave Redis
// at the latest revision, except after such a drop: a slower save of an
// earlier revision then finds no copy and installs its own. So when a save
// of a revision above 1 installs its copy where Redis had none, it reads
// the record again, as a read-through does (catchUp).
//
// chosenID says the caller named the ID. A new token (Version 1) under such
// an ID may replace one that was deleted while Redis was unreachable, whose
// copy Redis still holds at a higher revision, which put would keep: it is
// dropped first. A new random ID has no such past.
func (d *durable) cacheSaved(ctx context.Context, t tokencache.Token, chosenID bool) {
	cctx, cancel := detached(ctx)
	defer cancel()
	if t.Version == 1 && chosenID {
		d.drop(cctx, t.ID)
	}
	fresh, err := d.cache.putFresh(cctx, t)
	if err != nil {
		d.writeFailures.Add(1)
		d.drop(cctx, t.ID)
		return
	}
	if fresh && t.Version > 1 {
		d.catchUp(cctx, t)
	}
}

func (d *durable) saveTokenIfLocked(ctx context.Context, token *tokencache.Token, lockKey, lockToken string) error {
	if err := tokencache.ValidateSave(token, d.cache.now()); err != nil {
		return err
	}
	if token.ID == "" {
		return fmt.Errorf("%w: SaveTokenIfLocked needs the token's ID", tokencache.ErrInvalidToken)
	}
	if !strings.HasSuffix(lockKey, "{"+token.ID+"}") || lockToken == "" {
		return fmt.Errorf("%w: lock key must end with {%s} and the lock token must be set", tokencache.ErrInvalidToken, token.ID)
	}
	if token.Version == 0 {
		// No revision to compare: only the lock guards the save.
		holder, err := d.cache.rdb.Get(ctx, lockKey).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return wrap("save token: checking the lock", err)
		}
		if holder != lockToken {
			return fmt.Errorf("redisstore: save token %s: %w", token.ID, errLockLost)
		}
	}
	// With a revision, the record's compare-and-set is the fence: a holder
	// whose lock expired cannot overwrite what the next holder saved, since
	// that save moved the revision on. It needs no Redis.
	if err := d.record.SaveToken(ctx, token); err != nil {
		return err
	}
	d.cacheSaved(ctx, *token, true)
	return nil
}

func (d *durable) deleteToken(ctx context.Context, id string) error {
	if err := tokencache.ValidateID(id); err != nil {
		return err
	}
	if err := d.record.DeleteToken(ctx, id); err != nil {
		return err
	}
	if err := d.cache.DeleteToken(ctx, id); err != nil {
		d.dropFailures.Add(1)
		return fmt.Errorf("redisstore: token %s is deleted from the record, but its cached copy is not: %w", id, err)
	}
	return nil
}

func (d *durable) getTokens(ctx context.Context) ([]tokencache.Token, error) {
	return d.record.GetTokens(ctx)
}

// walk visits the record's tokens: Redis may have lost some.
func (d *durable) walk(ctx context.Context, fn func(tokencache.Token) error) error {
	return tokencache.WalkStore(ctx, d.record, fn)
}

func (d *durable) deleteTokens(ctx context.Context) error {
	if err := d.record.DeleteTokens(ctx); err != nil {
		return err
	}
	if err := d.cache.DeleteTokens(ctx); err != nil {
		return fmt.Errorf("redisstore: the record's tokens are deleted, but not their cached copies: %w", err)
	}
	return nil
}

// detached returns a context for cache work after the record has answered:
// it keeps ctx's values but not its cancellation, and ends after
// cacheTimeout.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cacheTimeout)
}
