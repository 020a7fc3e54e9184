package redisstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
)

// defaultPendingBound is how long a claim that has not committed counts as
// in flight. A younger one makes a competing insert of the same identity
// wait; an older one is fenced (it can then never commit) and removed. A
// claim this process left behind in a failed call is fenced at once.
const defaultPendingBound = 2 * time.Second

func (s *Store) findToken(ctx context.Context, query tokencache.Token) (tokencache.Token, error) {
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
		var r lookupResult
		r, err = s.lookup(ctx, query, rule)
		d, found = r.d, r.found
	}
	if err != nil {
		return tokencache.Token{}, wrap("find token by "+rule.String(), err)
	}
	if !found {
		return tokencache.Token{}, fmt.Errorf("redisstore: find token by %s: %w", rule, tokencache.ErrNotFound)
	}
	return d.token, nil
}

// readHash reads the hash of the token with this ID. found is false when
// there is no hash or it holds no revision.
func (s *Store) readHash(ctx context.Context, id string) (decoded, bool, error) {
	m, err := s.rdb.HGetAll(ctx, s.keys.hash(id)).Result()
	if err != nil {
		return decoded{}, false, err
	}
	return decodeHash(id, m)
}

// decodeHash decodes an HGETALL reply; an empty one is no token.
func decodeHash(id string, m map[string]string) (decoded, bool, error) {
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

// lookupResult is what a lookup through an index found.
type lookupResult struct {
	d     decoded
	found bool
	// busy: the index holds a claim that may still commit (an insert or
	// update in flight), so an insert of this identity must wait.
	busy bool
}

// lookup finds the token query matches through the index of rule: the
// valid member with the highest score, in the bucket entry of the current
// index key, then, while the namespace may still hold entries of the
// legacy layout, in its legacy key, then under each previous index key the
// same way. A hint, when it holds, saves reading the index.
func (s *Store) lookup(ctx context.Context, query tokencache.Token, rule tokencache.Rule) (lookupResult, error) {
	kind := kindIndex(rule)
	ref := s.keys.index(rule, query)
	hk := ref.hintKey()
	if id, ok := s.hints.get(hk); ok {
		d, found, err := s.readHash(ctx, id)
		if err != nil {
			return lookupResult{}, err
		}
		if found && tokencache.Matches(query, d.token, s.now()) && d.hintHolds(kind) {
			return lookupResult{d: d, found: true}, nil
		}
		s.hints.drop(hk)
	}
	r, err := s.walk(ctx, ref, query, kind)
	if err != nil || r.found {
		if r.found {
			s.hints.put(hk, r.d.token.ID)
		}
		return r, err
	}
	legacy, err := s.legacyMayExist(ctx)
	if err != nil {
		return lookupResult{}, err
	}
	var older []ixRef
	if legacy {
		older = append(older, s.keys.legacy(rule, query))
	}
	for _, prev := range s.prev {
		if old := prev.index(rule, query); old != ref {
			older = append(older, old)
		}
		if old := prev.legacy(rule, query); legacy && old != s.keys.legacy(rule, query) {
			older = append(older, old)
		}
	}
	for _, old := range older {
		pr, err := s.walk(ctx, old, query, kind)
		if err != nil {
			return lookupResult{}, err
		}
		if pr.found {
			// Move the token's entries to the current key's buckets; a
			// failure leaves them where they are, still found this way.
			_ = s.reindexToken(ctx, pr.d)
			return pr, nil
		}
		r.busy = r.busy || pr.busy
	}
	return r, nil
}

// layoutRecheck is how long a process that found no layout marker goes on
// reading legacy index keys before it looks for the marker again.
const layoutRecheck = 5 * time.Second

// legacyMayExist reports whether lookups must still read the legacy index
// keys: until the layout marker exists. A process that sees the marker
// remembers it; one that does not looks again after layoutRecheck. When the
// namespace holds no token at all (no set of IDs), it writes the marker
// itself: nothing of the legacy layout can matter there.
func (s *Store) legacyMayExist(ctx context.Context) (bool, error) {
	if s.migrated.Load() {
		return false, nil
	}
	if t := s.layoutChecked.Load(); t != 0 && time.Since(time.Unix(0, t)) < layoutRecheck {
		return true, nil
	}
	var marker *redis.IntCmd
	var ids *redis.IntCmd
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		marker = p.Exists(ctx, s.keys.layout())
		ids = p.Exists(ctx, s.keys.ids())
		return nil
	}); err != nil {
		return false, err
	}
	if marker.Val() == 0 && ids.Val() == 0 {
		if err := s.rdb.SetNX(ctx, s.keys.layout(), layoutBuckets, 0).Err(); err != nil {
			return false, err
		}
		s.migrated.Store(true)
		return false, nil
	}
	if marker.Val() > 0 {
		s.migrated.Store(true)
		return false, nil
	}
	s.layoutChecked.Store(time.Now().UnixNano())
	return true, nil
}

// layoutBuckets is the value of the layout marker.
const layoutBuckets = "buckets"

// walk reads the index key and checks its members against their hashes in
// score order, highest first. A member is valid when its hash is of its
// incarnation and matches query; the answer is the valid one whose hash
// committed the highest claim score for this kind. Members that can never
// be valid again are removed (best effort: a failure changes no answer).
func (s *Store) walk(ctx context.Context, key ixRef, query tokencache.Token, kind int) (lookupResult, error) {
	members, err := s.readIndex(ctx, key)
	if err != nil {
		return lookupResult{}, err
	}
	var r lookupResult
	for _, zm := range members {
		if r.found && int64(zm.Score) < r.d.score[kind] {
			// A member's score is its latest claim, at least the committed
			// one: nothing further down can outrank the answer.
			break
		}
		m, ok := parseMember(zm.Member.(string))
		if !ok {
			s.dropMember(ctx, key, zm) // nobody writes a malformed entry again
			continue
		}
		d, found, err := s.readHash(ctx, m.id)
		if err != nil {
			return lookupResult{}, err
		}
		now := s.now()
		sameInc := found && d.inc == m.inc
		if sameInc && tokencache.Matches(query, d.token, now) {
			// Holders rank by the claim their hash committed (s_k), not
			// by a later claim that may never commit.
			if !r.found || d.score[kind] > r.d.score[kind] {
				r.d, r.found = d, true
			}
			continue
		}
		switch {
		case sameInc && d.token.Version >= m.rev, !sameInc && m.rev > 1:
			// Resolved and not matching, or an update of a token that is
			// gone: this entry can never become valid again.
			s.dropMember(ctx, key, zm)
		case s.now().Sub(time.UnixMilli(int64(zm.Score))) < s.pendingBound && !s.left.has(zm.Member.(string)):
			r.busy = true // a claim in flight
		default:
			// An old claim that has not committed: fence it in its slot,
			// so that it never can, then drop it.
			code, err := settleScript.Run(ctx, s.rdb, []string{s.keys.hash(m.id), s.keys.abort(m.id)},
				m.inc, m.rev, "", 0, abortTTL.Milliseconds()).Int64()
			switch {
			case err != nil:
				r.busy = true
			case code == settleFenced || code == settleDead:
				s.dropMember(ctx, key, zm)
				s.left.drop(zm.Member.(string))
			default:
				// It committed meanwhile, but not with this value (or it
				// would have matched above on a reread): check again next time.
				r.busy = true
			}
		}
	}
	return r, nil
}

// readIndex returns the members of an index entry, highest score first:
// the members in a bucket field, or those of a legacy key (a sorted set,
// or a string read as one member of score 0).
func (s *Store) readIndex(ctx context.Context, ref ixRef) ([]redis.Z, error) {
	if ref.field != "" {
		v, err := s.rdb.HGet(ctx, ref.key, ref.field).Result()
		if errors.Is(err, redis.Nil) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return parseEntries(v), nil
	}
	zs, err := s.rdb.ZRevRangeWithScores(ctx, ref.key, 0, -1).Result()
	if err == nil || !redis.HasErrorPrefix(err, "WRONGTYPE") {
		return zs, err
	}
	v, err := s.rdb.Get(ctx, ref.key).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m, ok := parseLegacyIndex(v)
	if !ok {
		return nil, nil
	}
	return []redis.Z{{Score: 0, Member: m.String()}}, nil
}

// parseEntries decodes a bucket field (see bucketLib), highest score
// first. Expiry is left to the scripts, which compare it with the
// server's clock; a reader checks every member against its hash anyway.
func parseEntries(v string) []redis.Z {
	var out []redis.Z
	for e := range strings.SplitSeq(v, ",") {
		if e == "" {
			continue
		}
		m, rest, _ := strings.Cut(e, ";")
		sc, _, _ := strings.Cut(rest, ";")
		score, _ := strconv.ParseInt(sc, 36, 64)
		out = append(out, redis.Z{Score: float64(score), Member: m})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Score > out[j].Score })
	return out
}

// dropMember removes exactly this member from an index, best effort. The
// member names one claim of one incarnation, which nobody writes again, so
// removing it can never remove a newer entry.
func (s *Store) dropMember(ctx context.Context, ref ixRef, zm redis.Z) {
	if ref.field != "" {
		_ = bucketDropScript.Run(ctx, s.rdb, []string{ref.key}, ref.field, "", 0, zm.Member).Err()
		return
	}
	_ = s.rdb.ZRem(ctx, ref.key, zm.Member).Err()
}

// formatScore writes a claim score as a hash field value.
func formatScore(sc int64) string { return strconv.FormatInt(sc, 10) }

// leftClaims remembers the claims of this process's saves that failed
// before committing, so that this process fences them at once instead of
// waiting pendingBound for them (a caller retrying a failed insert would
// otherwise wait for its own claim). Fencing is always safe: a fenced claim
// belongs to a call that has already returned an error. It is bounded and
// safe for concurrent use.
type leftClaims struct {
	mu sync.Mutex
	m  map[string]struct{} // guarded by mu; index members
}

const maxLeftClaims = 1024

func (l *leftClaims) add(member string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = make(map[string]struct{})
	}
	if len(l.m) >= maxLeftClaims {
		for k := range l.m { // random eviction: a forgotten claim just waits pendingBound
			delete(l.m, k)
			break
		}
	}
	l.m[member] = struct{}{}
}

func (l *leftClaims) has(member string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.m[member]
	return ok
}

func (l *leftClaims) drop(member string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, member)
}
