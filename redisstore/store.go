package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/announce"
)

// pendingTTL bounds how long the hash of an unfinished insert lives: an
// insert that dies before it claims its index leaves nothing for longer.
const pendingTTL = 30 * time.Second

// batchSize is how many tokens GetTokens and DeleteTokens handle per round
// trip.
const batchSize = 500

// maxDeletePasses bounds DeleteTokens' scans of the set of IDs.
const maxDeletePasses = 100

// Store is a tokencache.Store in Redis. It is safe for concurrent use, also
// by many processes sharing one Redis. See the package documentation for
// the key layout.
type Store struct {
	rdb       redis.UniversalClient
	keys      keys
	retention time.Duration
	now       func() time.Time
	hints     *hints
	obs       Observer // nil without WithObserver
	err       error    // an invalid option; returned by every method
	dur       *durable // the record behind Redis (WithDurableStore); nil: none

	scriptsLoaded atomic.Bool // pipelineScripts are loaded in Redis, as far as we know
}

var _ tokencache.Store = (*Store)(nil)

// New returns a Store that keeps its tokens in rdb. An invalid option does
// not panic: every method of the Store then returns an error wrapping
// ErrBadOption.
func New(rdb redis.UniversalClient, opts ...Option) *Store {
	c := newConfig(opts)
	s := &Store{
		rdb:       rdb,
		keys:      keys{ns: c.namespace, indexKey: c.indexKey},
		retention: c.retention,
		now:       c.now,
		hints:     newHints(c.hints),
		obs:       c.obs,
		err:       c.err,
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

// FindToken returns the token query matches; see tokencache.Store.
func (s *Store) FindToken(ctx context.Context, query tokencache.Token) (tokencache.Token, error) {
	if s.dur != nil {
		return s.dur.findToken(ctx, query)
	}
	if s.obs == nil {
		return s.findToken(ctx, query)
	}
	ctx, done := s.obs.StoreOperation(ctx, OpFindToken)
	t, err := s.findToken(ctx, query)
	done(err)
	return t, err
}

func (s *Store) findToken(ctx context.Context, query tokencache.Token) (tokencache.Token, error) {
	if s.err != nil {
		return tokencache.Token{}, s.err
	}
	if err := tokencache.ValidateQuery(query); err != nil {
		return tokencache.Token{}, err
	}
	rule := tokencache.RuleOf(query)
	var (
		d     decoded
		found bool
		err   error
	)
	if rule == tokencache.RuleID {
		d, found, err = s.readLive(ctx, query.ID)
	} else {
		d, found, err = s.lookup(ctx, query, rule)
	}
	if err != nil {
		return tokencache.Token{}, wrap("find token by "+rule.String(), err)
	}
	if !found {
		return tokencache.Token{}, fmt.Errorf("redisstore: find token by %s: %w", rule, tokencache.ErrNotFound)
	}
	return d.token, nil
}

// FindTokenByID returns the token with this ID; see tokencache.Store.
func (s *Store) FindTokenByID(ctx context.Context, id string) (tokencache.Token, error) {
	if s.dur != nil {
		return s.dur.findTokenByID(ctx, id)
	}
	if s.obs == nil {
		return s.findTokenByID(ctx, id)
	}
	ctx, done := s.obs.StoreOperation(ctx, OpFindTokenByID)
	t, err := s.findTokenByID(ctx, id)
	done(err)
	return t, err
}

func (s *Store) findTokenByID(ctx context.Context, id string) (tokencache.Token, error) {
	if s.err != nil {
		return tokencache.Token{}, s.err
	}
	if err := tokencache.ValidateID(id); err != nil {
		return tokencache.Token{}, err
	}
	return s.findToken(ctx, tokencache.Token{ID: id})
}

// readHash reads the hash of the token with this ID.
func (s *Store) readHash(ctx context.Context, id string) (decoded, bool, error) {
	m, err := s.rdb.HGetAll(ctx, s.keys.hash(id)).Result()
	if err != nil {
		return decoded{}, false, err
	}
	if len(m) == 0 {
		return decoded{}, false, nil
	}
	d, err := decodeFields(id, m)
	return d, err == nil, err
}

// readLive reads the token with this ID and reports whether it is live.
func (s *Store) readLive(ctx context.Context, id string) (decoded, bool, error) {
	d, found, err := s.readHash(ctx, id)
	if err != nil || !found || !d.token.Live(s.now()) {
		return decoded{}, false, err
	}
	return d, true, nil
}

// lookup finds the token query matches through the index of rule. It checks
// the hash the index names, and cleans an entry that no longer holds.
func (s *Store) lookup(ctx context.Context, query tokencache.Token, rule tokencache.Rule) (decoded, bool, error) {
	key := s.keys.index(rule, query)
	if id, ok := s.hints.get(key); ok {
		d, found, err := s.readHash(ctx, id)
		if err != nil {
			return decoded{}, false, err
		}
		if found && tokencache.Matches(query, d.token, s.now()) {
			return d, true, nil
		}
		s.hints.drop(key)
	}
	val, err := s.rdb.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return decoded{}, false, nil
	}
	if err != nil {
		return decoded{}, false, err
	}
	id, version, ok := parseIndexValue(val)
	if ok {
		d, found, err := s.readHash(ctx, id)
		if err != nil {
			return decoded{}, false, err
		}
		if found && tokencache.Matches(query, d.token, s.now()) {
			s.hints.put(key, id)
			return d, true, nil
		}
	}
	// The entry is stale: its token is gone or no longer holds the value.
	// Drop it unless a newer save has rewritten it meanwhile. A failure
	// here changes nothing about the answer, so it is not reported.
	if ok {
		_ = dropIndexScript.Run(ctx, s.rdb, []string{key}, id, version+1).Err()
	} else {
		_ = s.rdb.Eval(ctx, `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`, []string{key}, val).Err()
	}
	return decoded{}, false, nil
}

// SaveToken inserts or updates token; see tokencache.Store.
func (s *Store) SaveToken(ctx context.Context, token *tokencache.Token) error {
	if s.dur != nil {
		return s.dur.saveToken(ctx, token)
	}
	if s.obs == nil {
		return s.changedToken(ctx, s.saveToken(ctx, token), token)
	}
	ctx, done := s.obs.StoreOperation(ctx, OpSaveToken)
	err := s.changedToken(ctx, s.saveToken(ctx, token), token)
	done(err)
	return err
}

func (s *Store) saveToken(ctx context.Context, token *tokencache.Token) error {
	if s.err != nil {
		return s.err
	}
	now := s.now()
	if err := tokencache.ValidateSave(token, now); err != nil {
		return err
	}
	rule := tokencache.RuleOf(*token)
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return wrap("save token", err)
		}
		var (
			done bool
			err  error
		)
		if rule == tokencache.RuleID {
			done, err = s.saveByID(ctx, token, now, nil)
		} else {
			done, err = s.saveByIndex(ctx, token, rule, now)
		}
		if err != nil {
			if errors.Is(err, tokencache.ErrConflict) {
				return fmt.Errorf("redisstore: save token version %d: %w", token.Version, tokencache.ErrConflict)
			}
			return wrap("save token", err)
		}
		if done {
			return nil
		}
		// Lost a race with another writer of the same identity: try again,
		// backing off a little once it keeps happening.
		if attempt >= 3 {
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(min(attempt, 20)) * time.Millisecond):
			}
		}
	}
}

// errLockLost is how saveByID reports that the fencing lock did not hold.
var errLockLost = fmt.Errorf("%w: the lock guarding the save is no longer held", tokencache.ErrConflict)

// SaveTokenIfLocked is SaveToken for a lock holder: token must have its ID,
// and the save happens only while the lock lockKey still holds lockToken,
// checked in the same atomic write as the token. Otherwise nothing changes
// and the error wraps tokencache.ErrConflict, so that a holder whose lock
// expired cannot overwrite what the next holder wrote. lockKey must carry
// the token's hash tag ("...{ID}"), as lock.Locker's keys do, so that both
// keys share a Cluster slot.
func (s *Store) SaveTokenIfLocked(ctx context.Context, token *tokencache.Token, lockKey, lockToken string) error {
	if s.dur != nil {
		return s.dur.saveTokenIfLocked(ctx, token, lockKey, lockToken)
	}
	if s.obs == nil {
		return s.changedToken(ctx, s.saveTokenIfLocked(ctx, token, lockKey, lockToken), token)
	}
	ctx, done := s.obs.StoreOperation(ctx, OpSaveTokenIfLocked)
	err := s.changedToken(ctx, s.saveTokenIfLocked(ctx, token, lockKey, lockToken), token)
	done(err)
	return err
}

func (s *Store) saveTokenIfLocked(ctx context.Context, token *tokencache.Token, lockKey, lockToken string) error {
	if s.err != nil {
		return s.err
	}
	now := s.now()
	if err := tokencache.ValidateSave(token, now); err != nil {
		return err
	}
	if token.ID == "" {
		return fmt.Errorf("%w: SaveTokenIfLocked needs the token's ID", tokencache.ErrInvalidToken)
	}
	if !strings.HasSuffix(lockKey, "{"+token.ID+"}") || lockToken == "" {
		return fmt.Errorf("%w: lock key must end with {%s} and the lock token must be set", tokencache.ErrInvalidToken, token.ID)
	}
	if _, err := s.saveByID(ctx, token, now, &fence{key: lockKey, token: lockToken}); err != nil {
		if errors.Is(err, tokencache.ErrConflict) {
			return fmt.Errorf("redisstore: save token %s: %w", token.ID, err)
		}
		return wrap("save token", err)
	}
	return nil
}

// saveByID saves a token that names its ID: an update, or an insert with a
// caller-chosen ID. A non-nil f makes the write conditional on that lock.
func (s *Store) saveByID(ctx context.Context, token *tokencache.Token, now time.Time, f *fence) (bool, error) {
	expect := token.Version
	if expect == 0 {
		expect = -1 // whatever is stored, or nothing
	}
	write := s.write(ctx, s.rdb, token.ID, expect, s.hashTTL(*token, now), *token, false, f)
	version, old, err := s.writeResult(token.ID, write)
	if err != nil {
		return false, err
	}
	switch version {
	case -1:
		return false, tokencache.ErrConflict
	case -2:
		return false, errLockLost
	}
	// The ID joins the set only once its hash exists (it may be a new ID):
	// GetTokens takes an ID without a hash for an expired token.
	return true, s.afterWrite(ctx, token, token.ID, version, old, now, afterWriteOpts{addToSet: token.Version == 0})
}

// saveByIndex saves a token found by user name, grant, refresh or access
// token. It returns false when a concurrent writer got in the way and the
// caller should try again.
func (s *Store) saveByIndex(ctx context.Context, token *tokencache.Token, rule tokencache.Rule, now time.Time) (bool, error) {
	current, found, err := s.lookup(ctx, *token, rule)
	if err != nil {
		return false, err
	}
	if found {
		if token.Version != 0 && token.Version != current.token.Version {
			return false, tokencache.ErrConflict
		}
		id := current.token.ID
		write := s.write(ctx, s.rdb, id, current.token.Version, s.hashTTL(*token, now), *token, false, nil)
		version, old, err := s.writeResult(id, write)
		if err != nil {
			return false, err
		}
		if version < 0 {
			if token.Version != 0 {
				return false, tokencache.ErrConflict
			}
			return false, nil // changed since we read it: read again
		}
		return true, s.afterWrite(ctx, token, id, version, old, now, afterWriteOpts{})
	}
	if token.Version != 0 {
		return false, tokencache.ErrConflict
	}
	return s.insert(ctx, token, rule, now)
}

// insert adds a new token for an identity no token holds. It writes the hash
// first, marked pending, then adds its ID to the set and claims the
// identity's index with SET NX. The loser of a race deletes its hash and
// tries again, finding the winner.
func (s *Store) insert(ctx context.Context, token *tokencache.Token, rule tokencache.Rule, now time.Time) (bool, error) {
	id := tokencache.NewID()
	ttl := s.hashTTL(*token, now)
	write := s.write(ctx, s.rdb, id, 0, min(orPending(ttl), pendingTTL), *token, true, nil)
	if version, _, err := s.writeResult(id, write); err != nil || version != 1 {
		if err == nil {
			err = fmt.Errorf("new token %s already existed", id) // 128 random bits: never
		}
		return false, err
	}
	claimKey := s.keys.index(rule, *token)
	var claim *redis.BoolCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, s.keys.ids(), id) // pending: GetTokens skips it until it is finalized
		// ValidateSave saw a live token at now, so the TTL is not negative here.
		claim = p.SetNX(ctx, claimKey, indexValue(id, 1), max(s.indexTTL(rule, *token, now), 0))
		return nil
	})
	if err != nil {
		return false, err
	}
	if !claim.Val() {
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Unlink(ctx, s.keys.hash(id))
			p.SRem(ctx, s.keys.ids(), id)
			return nil
		})
		return false, err
	}
	return true, s.afterWrite(ctx, token, id, 1, nil, now, afterWriteOpts{finalize: true})
}

// orPending turns "no TTL" (0) into the pending TTL.
func orPending(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return pendingTTL
	}
	return ttl
}

// fence names a lock that must still hold a value for a write to happen.
type fence struct {
	key, token string
}

// write queues or runs the write script for the token with this ID; a
// non-nil f makes it conditional on the lock.
func (s *Store) write(ctx context.Context, c redis.Scripter, id string, expect int64, ttl time.Duration, t tokencache.Token, pending bool, f *fence) *redis.Cmd {
	keys := []string{s.keys.hash(id)}
	lockToken := ""
	if f != nil {
		keys = append(keys, f.key)
		lockToken = f.token
	}
	args := append([]any{expect, ttl.Milliseconds(), lockToken}, encodeFields(t, pending)...)
	if _, isPipe := c.(redis.Pipeliner); isPipe {
		// A pipeline cannot fall back from EVALSHA to EVAL on NOSCRIPT.
		return writeScript.Eval(ctx, c, keys, args...)
	}
	return writeScript.Run(ctx, c, keys, args...)
}

// writeResult decodes the write script's reply: the new revision (-1 on a
// revision mismatch, -2 when the fencing lock was lost) and the token it
// replaced, if any.
func (s *Store) writeResult(id string, cmd *redis.Cmd) (int64, *tokencache.Token, error) {
	res, err := cmd.Slice()
	if err != nil {
		return 0, nil, err
	}
	if len(res) != 2 {
		return 0, nil, fmt.Errorf("write script replied %d values", len(res))
	}
	version, ok := res[0].(int64)
	if !ok {
		return 0, nil, fmt.Errorf("write script replied revision %v", res[0])
	}
	if version < 0 {
		return version, nil, nil
	}
	flat, _ := res[1].([]any)
	d, found, err := decodeFlat(id, flat)
	if err != nil || !found {
		return version, nil, nil // nothing usable was replaced: no old index entries to drop
	}
	return version, &d.token, nil
}

// afterWriteOpts says what else afterWrite does besides the index entries.
type afterWriteOpts struct {
	finalize bool // end a pending insert
	addToSet bool // add the ID to the set of IDs (a save by a possibly new ID)
}

// afterWrite points the index entries at the token just written at this
// revision, drops the entries of values the write replaced, ends a pending
// insert, and reports the saved ID and revision to the caller. On a client
// that keeps command order (not a Cluster) the same round trip reads the
// hash's revision back for dropOvertaken.
func (s *Store) afterWrite(ctx context.Context, token *tokencache.Token, id string, version int64, old *tokencache.Token, now time.Time, o afterWriteOpts) error {
	saved := *token
	saved.ID = id
	value := indexValue(id, version)
	_, cluster := s.rdb.(*redis.ClusterClient)
	var revision *redis.StringCmd
	err := s.pipelined(ctx, func(p redis.Pipeliner) {
		if o.addToSet {
			p.SAdd(ctx, s.keys.ids(), id)
		}
		for _, rule := range indexKinds {
			key := s.keys.index(rule, saved)
			ttl := s.indexTTL(rule, saved, now)
			if key != "" && ttl >= 0 {
				p.Set(ctx, key, value, ttl)
			} else {
				key = "" // nothing to point at: drop the old entry below
			}
			if old != nil {
				if oldKey := s.keys.index(rule, *old); oldKey != "" && oldKey != key {
					dropIndexScript.EvalSha(ctx, p, []string{oldKey}, id, version)
					s.hints.drop(oldKey)
				}
			}
		}
		if o.finalize {
			finalizeScript.EvalSha(ctx, p, []string{s.keys.hash(id)}, version, s.hashTTL(saved, now).Milliseconds())
		}
		if !cluster {
			revision = p.HGet(ctx, s.keys.hash(id), fieldVersion)
		}
	})
	if err != nil {
		return err
	}
	if revision == nil {
		revision = s.rdb.HGet(ctx, s.keys.hash(id), fieldVersion)
	}
	s.dropOvertaken(ctx, saved, version, revision)
	for _, rule := range indexKinds {
		if key := s.keys.index(rule, saved); key != "" {
			s.hints.put(key, id)
		}
	}
	token.ID, token.Version = id, version
	return nil
}

// dropOvertaken removes the index entries just written for saved at this
// revision when a later save (or a delete) replaced the hash before they
// landed: that writer's clean-up may have run before them, which would leave
// them stale for good. revision is the hash's revision read after the
// entries were written; nothing else is sent when it is still ours, which
// is almost always. Failing it loses nothing: stale entries are also cleaned
// on lookup.
func (s *Store) dropOvertaken(ctx context.Context, saved tokencache.Token, version int64, revision *redis.StringCmd) {
	cur, err := revision.Int64()
	if err == nil && cur == version {
		return
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return
	}
	var current *tokencache.Token
	if cur > version {
		if d, found, err := s.readHash(ctx, saved.ID); err != nil {
			return
		} else if found {
			current = &d.token
		}
	}
	_ = s.pipelined(ctx, func(p redis.Pipeliner) {
		for _, rule := range indexKinds {
			key := s.keys.index(rule, saved)
			if key != "" && (current == nil || s.keys.index(rule, *current) != key) {
				dropIndexScript.EvalSha(ctx, p, []string{key}, saved.ID, version+1)
			}
		}
	})
}

// pipelined runs the commands fn queues in one pipeline. Scripts in it are
// sent as EVALSHA (a pipeline cannot fall back to EVAL), so the scripts are
// loaded first, and once more if Redis has lost them (a restart or a
// failover) before the pipeline runs again. fn must be safe to run twice:
// every pipeline of this package is idempotent.
func (s *Store) pipelined(ctx context.Context, fn func(p redis.Pipeliner)) error {
	for attempt := 0; ; attempt++ {
		if !s.scriptsLoaded.Load() {
			for _, script := range pipelineScripts {
				if err := script.Load(ctx, s.rdb).Err(); err != nil {
					return err
				}
			}
			s.scriptsLoaded.Store(true)
		}
		cmds, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			fn(p)
			return nil
		})
		if err != nil && attempt == 0 && lostScripts(cmds) {
			s.scriptsLoaded.Store(false)
			continue
		}
		return err
	}
}

// lostScripts reports whether a command failed because Redis did not have
// its script.
func lostScripts(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		if err := c.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			return true
		}
	}
	return false
}

// hashTTL is how long the token's hash lives from now; 0 means forever.
func (s *Store) hashTTL(t tokencache.Token, now time.Time) time.Duration {
	if t.Expiry.IsZero() {
		return 0
	}
	if t.RefreshToken == "" {
		return max(t.Expiry.Sub(now), time.Millisecond)
	}
	if s.retention == 0 {
		return 0
	}
	return max(t.Expiry.Sub(now), 0) + s.retention
}

// indexTTL is how long the token's index entry for rule lives: as long as
// the hash, except the access-token entry, which ends with the access token.
// It is negative when there must be no entry: the access token has expired.
func (s *Store) indexTTL(rule tokencache.Rule, t tokencache.Token, now time.Time) time.Duration {
	if rule == tokencache.RuleAccessToken && !t.Expiry.IsZero() {
		left := t.Expiry.Sub(now)
		if left <= 0 {
			return -1
		}
		return max(left, time.Millisecond)
	}
	return s.hashTTL(t, now)
}

// DeleteToken removes the token with this ID; see tokencache.Store.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	if s.dur != nil {
		return s.dur.deleteToken(ctx, id)
	}
	if s.obs == nil {
		return s.changedID(ctx, s.deleteToken(ctx, id), id)
	}
	ctx, done := s.obs.StoreOperation(ctx, OpDeleteToken)
	err := s.changedID(ctx, s.deleteToken(ctx, id), id)
	done(err)
	return err
}

func (s *Store) deleteToken(ctx context.Context, id string) error {
	if s.err != nil {
		return s.err
	}
	if err := tokencache.ValidateID(id); err != nil {
		return err
	}
	m, err := s.rdb.HGetAll(ctx, s.keys.hash(id)).Result()
	if err != nil {
		return wrap("delete token", err)
	}
	var old []tokencache.Token
	if d, err := decodeFields(id, m); len(m) > 0 && err == nil {
		old = append(old, d.token)
	}
	if err := s.unlink(ctx, []string{id}, old); err != nil {
		return wrap("delete token", err)
	}
	return nil
}

// unlink removes the hashes of these IDs, their set members, and the index
// entries of the tokens in old that still point at them.
func (s *Store) unlink(ctx context.Context, ids []string, old []tokencache.Token) error {
	if len(ids) == 0 {
		return nil
	}
	members := make([]any, len(ids))
	return s.pipelined(ctx, func(p redis.Pipeliner) {
		for i, id := range ids {
			p.Unlink(ctx, s.keys.hash(id)) // one key per command: a Cluster refuses a multi-slot UNLINK
			members[i] = id
		}
		p.SRem(ctx, s.keys.ids(), members...)
		for _, t := range old {
			for _, rule := range indexKinds {
				if key := s.keys.index(rule, t); key != "" {
					dropIndexScript.EvalSha(ctx, p, []string{key}, t.ID, strconv.FormatInt(math.MaxInt64, 10))
					s.hints.drop(key)
				}
			}
		}
	})
}

// GetTokens returns every live token; see tokencache.Store. It reads the
// set of IDs in batches and each batch's hashes in one pipeline, and drops
// IDs whose hash has expired.
func (s *Store) GetTokens(ctx context.Context) ([]tokencache.Token, error) {
	if s.dur != nil {
		return s.dur.getTokens(ctx)
	}
	if s.obs == nil {
		return s.getTokens(ctx)
	}
	ctx, done := s.obs.StoreOperation(ctx, OpGetTokens)
	t, err := s.getTokens(ctx)
	done(err)
	return t, err
}

func (s *Store) getTokens(ctx context.Context) ([]tokencache.Token, error) {
	if s.err != nil {
		return nil, s.err
	}
	out := []tokencache.Token{}
	var gone []any
	err := s.eachBatch(ctx, func(batch []string, hashes []map[string]string) error {
		now := s.now()
		for i, id := range batch {
			if len(hashes[i]) == 0 {
				gone = append(gone, id)
				continue
			}
			d, err := decodeFields(id, hashes[i])
			if err != nil {
				return err
			}
			if !d.pending && d.token.Live(now) {
				out = append(out, d.token)
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrap("get tokens", err)
	}
	// Lazy clean-up of expired tokens' IDs, once the scan is over: removing
	// members during an SSCAN may make it skip others. Failing it loses
	// nothing.
	for len(gone) > 0 {
		n := min(len(gone), batchSize)
		_ = s.rdb.SRem(ctx, s.keys.ids(), gone[:n]...).Err()
		gone = gone[n:]
	}
	return out, nil
}

// DeleteTokens removes every token of this store; see tokencache.Store. It
// walks the set of IDs in batches and unlinks each batch's hashes and index
// entries; keys of other namespaces are never touched.
func (s *Store) DeleteTokens(ctx context.Context) error {
	if s.dur != nil {
		return s.dur.deleteTokens(ctx)
	}
	if s.obs == nil {
		return s.changedID(ctx, s.deleteTokens(ctx), announce.All)
	}
	ctx, done := s.obs.StoreOperation(ctx, OpDeleteTokens)
	err := s.changedID(ctx, s.deleteTokens(ctx), announce.All)
	done(err)
	return err
}

func (s *Store) deleteTokens(ctx context.Context) error {
	if s.err != nil {
		return s.err
	}
	// Removing members while scanning may make a scan skip some (miniredis
	// does; Redis does not for members present throughout), so scan again
	// until a pass finds nothing. Tokens saved meanwhile may survive.
	for pass := 0; pass < maxDeletePasses; pass++ {
		found := 0
		err := s.eachBatch(ctx, func(batch []string, hashes []map[string]string) error {
			found += len(batch)
			old := make([]tokencache.Token, 0, len(batch))
			for i, id := range batch {
				if d, err := decodeFields(id, hashes[i]); err == nil {
					old = append(old, d.token)
				}
			}
			return s.unlink(ctx, batch, old)
		})
		if err != nil {
			return wrap("delete tokens", err)
		}
		if found == 0 {
			return nil
		}
	}
	return nil
}

// eachBatch scans the set of IDs and calls fn with each batch of IDs and
// their hashes, read in one pipeline. IDs are passed once even when SSCAN
// returns them twice.
func (s *Store) eachBatch(ctx context.Context, fn func(ids []string, hashes []map[string]string) error) error {
	seen := make(map[string]struct{})
	var cursor uint64
	for {
		ids, next, err := s.rdb.SScan(ctx, s.keys.ids(), cursor, "", batchSize).Result()
		if err != nil {
			return err
		}
		batch := ids[:0]
		for _, id := range ids {
			if _, dup := seen[id]; !dup && tokencache.ValidateID(id) == nil {
				seen[id] = struct{}{}
				batch = append(batch, id)
			}
		}
		if len(batch) > 0 {
			cmds := make([]*redis.MapStringStringCmd, len(batch))
			_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i, id := range batch {
					cmds[i] = p.HGetAll(ctx, s.keys.hash(id))
				}
				return nil
			})
			if err != nil {
				return err
			}
			hashes := make([]map[string]string, len(batch))
			for i, c := range cmds {
				hashes[i] = c.Val()
			}
			if err := fn(batch, hashes); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}
