package redisstore

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/announce"
)

// Store is a tokencache.Store in Redis. It is safe for concurrent use, also
// by many processes sharing one Redis. See the package documentation for
// the key layout and the write protocol.
type Store struct {
	rdb       redis.UniversalClient
	keys      keys
	prev      []keys // index keys of earlier WithIndexKey settings, newest first
	retention time.Duration
	now       func() time.Time
	hints     *hints
	obs       Observer // nil without WithObserver
	acks      int      // replicas that must acknowledge a write
	ackWait   time.Duration
	err       error    // an invalid option; returned by every method
	dur       *durable // the record behind Redis (WithDurableStore); nil: none

	pendingBound time.Duration // see defaultPendingBound
	walkClassN   int64         // see walkClassSize
	left         leftClaims    // claims of failed saves of this process

	scriptsLoaded atomic.Bool // pipelineScripts are loaded in Redis, as far as we know

	migrated      atomic.Bool  // the layout marker was seen: no legacy index keys to read
	layoutChecked atomic.Int64 // when the marker was last looked for in vain (Unix ns); 0: never
	expirySlack   int64        // seconds an index member outlives its TTL (see claimScript)
}

var _ tokencache.Store = (*Store)(nil)

// New returns a Store that keeps its tokens in rdb. An invalid option does
// not panic: every method of the Store then returns an error wrapping
// ErrBadOption.
func New(rdb redis.UniversalClient, opts ...Option) *Store {
	c := newConfig(opts)
	s := &Store{
		rdb:       rdb,
		keys:      keys{ns: c.namespace, indexKey: c.indexKey, bucketBits: c.bucketBits},
		retention: c.retention,
		now:       c.now,
		hints:     newHints(c.hints),
		obs:       c.obs,
		acks:      c.acks,
		ackWait:   c.ackWait,
		err:       c.err,

		pendingBound: c.pendingBound,
		walkClassN:   c.walkClass,
		expirySlack:  c.expirySlack,
	}
	for _, k := range c.prevKeys {
		s.prev = append(s.prev, keys{ns: c.namespace, indexKey: k, bucketBits: c.bucketBits})
	}
	if rdb == nil && s.err == nil {
		s.err = fmt.Errorf("%w: nil Redis client", ErrBadOption)
	}
	s.dur = newDurable(rdb, opts, c)
	return s
}

// Namespace returns the prefix of every key of the store.
func (s *Store) Namespace() string { return s.keys.ns }

// HashKey returns the key of the hash that holds the token with this ID.
// Its hash tag is the ID: a key "<namespace>:<anything>:{<id>}" falls in the
// same Cluster slot, which is how the lock package keeps a token's lock
// beside it.
func (s *Store) HashKey(id string) string { return s.keys.hash(id) }

func wrap(op string, err error) error {
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

// observe runs fn as the public method op: it refuses to run on a Store
// with an invalid option, and tells the Observer, if any, about the call.
func observe[T any](s *Store, ctx context.Context, op string, fn func(context.Context) (T, error)) (T, error) {
	if s.err != nil {
		var zero T
		return zero, s.err
	}
	if s.obs == nil {
		return fn(ctx)
	}
	ctx, done := s.obs.StoreOperation(ctx, op)
	v, err := fn(ctx)
	done(err)
	return v, err
}

// observeErr is observe for methods that return only an error.
func observeErr(s *Store, ctx context.Context, op string, fn func(context.Context) error) error {
	_, err := observe(s, ctx, op, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, fn(ctx)
	})
	return err
}

// FindToken returns the token query matches; see tokencache.Store.
func (s *Store) FindToken(ctx context.Context, query tokencache.Token) (tokencache.Token, error) {
	if s.dur != nil {
		return s.dur.findToken(ctx, query)
	}
	return observe(s, ctx, OpFindToken, func(ctx context.Context) (tokencache.Token, error) {
		return s.findToken(ctx, query)
	})
}

// FindTokenByID returns the token with this ID; see tokencache.Store.
func (s *Store) FindTokenByID(ctx context.Context, id string) (tokencache.Token, error) {
	if s.dur != nil {
		return s.dur.findTokenByID(ctx, id)
	}
	return observe(s, ctx, OpFindTokenByID, func(ctx context.Context) (tokencache.Token, error) {
		if err := tokencache.ValidateID(id); err != nil {
			return tokencache.Token{}, err
		}
		return s.findToken(ctx, tokencache.Token{ID: id})
	})
}

// SaveToken inserts or updates token; see tokencache.Store.
func (s *Store) SaveToken(ctx context.Context, token *tokencache.Token) error {
	if s.dur != nil {
		return s.changedToken(ctx, s.dur.saveToken(ctx, token), token)
	}
	return observeErr(s, ctx, OpSaveToken, func(ctx context.Context) error {
		return s.changedToken(ctx, s.saveToken(ctx, token), token)
	})
}

// SaveTokenIfLocked is SaveToken for a lock holder: token must have its ID,
// and the save happens only while the lock lockKey still holds lockToken,
// checked in the same atomic write as the token. Otherwise nothing changes
// and the error wraps tokencache.ErrConflict, so that a holder whose lock
// expired cannot overwrite what the next holder wrote. lockKey must carry
// the token's hash tag ("...{ID}"), as lock.Locker's keys do, so that both
// keys share a Cluster slot.
func (s *Store) SaveTokenIfLocked(ctx context.Context, token *tokencache.Token, lockKey, lockToken string) error {
	if s.dur != nil {
		return s.changedToken(ctx, s.dur.saveTokenIfLocked(ctx, token, lockKey, lockToken), token)
	}
	return observeErr(s, ctx, OpSaveTokenIfLocked, func(ctx context.Context) error {
		return s.changedToken(ctx, s.saveTokenIfLocked(ctx, token, lockKey, lockToken), token)
	})
}

// DeleteToken removes the token with this ID; see tokencache.Store.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	if s.dur != nil {
		return s.changedID(ctx, s.dur.deleteToken(ctx, id), id)
	}
	return observeErr(s, ctx, OpDeleteToken, func(ctx context.Context) error {
		return s.changedID(ctx, s.deleteToken(ctx, id), id)
	})
}

// GetTokens returns every live token; see tokencache.Store. It reads the
// set of IDs in batches and each batch's hashes in one pipeline.
func (s *Store) GetTokens(ctx context.Context) ([]tokencache.Token, error) {
	if s.dur != nil {
		return s.dur.getTokens(ctx)
	}
	return observe(s, ctx, OpGetTokens, s.getTokens)
}

// DeleteTokens removes every token of this store; see tokencache.Store. It
// walks the set of IDs in batches and deletes each batch's hashes and index
// entries; keys of other namespaces are never touched.
func (s *Store) DeleteTokens(ctx context.Context) error {
	if s.dur != nil {
		return s.changedID(ctx, s.dur.deleteTokens(ctx), announce.All)
	}
	return observeErr(s, ctx, OpDeleteTokens, func(ctx context.Context) error {
		return s.changedID(ctx, s.deleteTokens(ctx), announce.All)
	})
}

// Reindex writes every token's index entries under the current index key
// (WithIndexKey) and removes its entries under the previous ones
// (WithPreviousIndexKeys) and those of the sorted-set layout of earlier
// versions; once every token is done it writes the layout marker, after
// which lookups stop looking for entries of that layout. It returns how
// many tokens it indexed. It is safe while other processes of this version
// use the store, and after a failure it can simply run again. Run it only
// once no process of an earlier version writes to the namespace.
func (s *Store) Reindex(ctx context.Context) (moved int, err error) {
	if s.err != nil {
		return 0, s.err
	}
	return s.reindex(ctx)
}
