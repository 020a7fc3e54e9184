package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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
// valid member with the highest score, under the current index key and
// then under the previous ones. A hint, when it holds, saves reading the
// index.
func (s *Store) lookup(ctx context.Context, query tokencache.Token, rule tokencache.Rule) (lookupResult, error) {
	kind := kindIndex(rule)
	key := s.keys.index(rule, query)
	if id, ok := s.hints.get(key); ok {
		d, found, err := s.readHash(ctx, id)
		if err != nil {
			return lookupResult{}, err
		}
		if found && tokencache.Matches(query, d.token, s.now()) && d.hintHolds(kind) {
			return lookupResult{d: d, found: true}, nil
		}
		s.hints.drop(key)
	}
	r, err := s.walk(ctx, key, query, kind)
	if err != nil || r.found {
		if r.found {
			s.hints.put(key, r.d.token.ID)
		}
		return r, err
	}
	for _, prev := range s.prev {
		old := prev.index(rule, query)
		if old == key {
			continue
		}
		pr, err := s.walk(ctx, old, query, kind)
		if err != nil {
			return lookupResult{}, err
		}
		if pr.found {
			// Move the token's entries to the current key; a failure
			// leaves them where they are, still found this way.
			_ = s.reindexToken(ctx, pr.d)
			return pr, nil
		}
		r.busy = r.busy || pr.busy
	}
	return r, nil
}

// walk reads the index key and checks its members against their hashes in
// score order, highest first. A member is valid when its hash is of its
// incarnation and matches query; the answer is the valid one whose hash
// committed the highest claim score for this kind. Members that can never
// be valid again are removed (best effort: a failure changes no answer).
func (s *Store) walk(ctx context.Context, key string, query tokencache.Token, kind int) (lookupResult, error) {
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

// readIndex returns the members of an index key, highest score first. A
// key of the legacy string layout is read as one member of score 0.
func (s *Store) readIndex(ctx context.Context, key string) ([]redis.Z, error) {
	zs, err := s.rdb.ZRevRangeWithScores(ctx, key, 0, -1).Result()
	if err == nil || !redis.HasErrorPrefix(err, "WRONGTYPE") {
		return zs, err
	}
	v, err := s.rdb.Get(ctx, key).Result()
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

// dropMember removes exactly this member from an index, best effort. The
// member names one claim of one incarnation, which nobody writes again, so
// removing it can never remove a newer entry.
func (s *Store) dropMember(ctx context.Context, key string, zm redis.Z) {
	_ = s.rdb.ZRem(ctx, key, zm.Member).Err()
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
