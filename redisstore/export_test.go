package redisstore

import (
	"context"
	"time"

	"github.com/tokencache/tokencache"
)

// IndexKey exposes the name of an index entry to the external tests, which
// plant stale entries in it.
func IndexKey(s *Store, rule tokencache.Rule, t tokencache.Token) string {
	return s.keys.index(rule, t)
}

// IDsKey exposes the name of the set of IDs.
func IDsKey(s *Store) string { return s.keys.ids() }

// InIDSet reports whether the set of IDs has a member for this ID (of any
// incarnation).
func InIDSet(ctx context.Context, s *Store, id string) (bool, error) {
	members, err := s.rdb.SMembers(ctx, s.keys.ids()).Result()
	if err != nil {
		return false, err
	}
	for _, m := range members {
		if got, _, _ := parseSetMember(m); got == id {
			return true, nil
		}
	}
	return false, nil
}

// IndexMember is the index entry a token at its current revision would
// have: "ID:incarnation:revision", the incarnation read from its hash.
func IndexMember(ctx context.Context, s *Store, id string, rev int64) (string, error) {
	inc, err := s.rdb.HGet(ctx, s.keys.hash(id), fieldIncarnation).Result()
	if err != nil {
		return "", err
	}
	return member{id: id, inc: inc, rev: rev}.String(), nil
}

// Put exposes put to the external tests.
func Put(ctx context.Context, s *Store, t tokencache.Token) error { return s.put(ctx, t) }

// WithPendingBound shortens how long a claim that has not committed counts
// as in flight (default 2 s), so that tests with many faults run fast.
func WithPendingBound(d time.Duration) Option {
	return func(c *config) { c.pendingBound = d }
}

// CacheSaved runs what a save through a store with a record does once the
// record has stored t: install t in Redis. Tests call it late, as a slow
// save would.
func CacheSaved(ctx context.Context, s *Store, t tokencache.Token) {
	s.dur.cacheSaved(ctx, t, false)
}

// WithWalkClassSize makes Walk split a set of more than n members into
// passes, so that tests reach several passes with a few hundred tokens.
func WithWalkClassSize(n int64) Option {
	return func(c *config) { c.walkClass = n }
}

// WalkClasses exposes the SSCAN patterns of Walk's passes.
func WalkClasses(ctx context.Context, s *Store) ([]string, error) { return s.walkClasses(ctx) }
