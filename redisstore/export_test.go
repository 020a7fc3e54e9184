package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
)

// IndexEntry exposes the bucket hash and field of an index entry to the
// external tests.
func IndexEntry(s *Store, rule tokencache.Rule, t tokencache.Token) (key, field string) {
	ref := s.keys.index(rule, t)
	return ref.key, ref.field
}

// LegacyIndexKey is the key the legacy layout used for the entry.
func LegacyIndexKey(s *Store, rule tokencache.Rule, t tokencache.Token) string {
	return s.keys.legacy(rule, t).key
}

// LayoutKey is the key of the layout marker.
func LayoutKey(s *Store) string { return s.keys.layout() }

// IndexMembers returns the members of an index entry with their scores,
// highest first.
func IndexMembers(ctx context.Context, s *Store, rule tokencache.Rule, t tokencache.Token) ([]redis.Z, error) {
	return s.readIndex(ctx, s.keys.index(rule, t))
}

// IndexTTL is how long the longest-lived member of an index entry has
// left, by the test's clock: -2 when it has no member, -1 when one never
// expires.
func IndexTTL(ctx context.Context, s *Store, rule tokencache.Rule, t tokencache.Token) (time.Duration, error) {
	ref := s.keys.index(rule, t)
	v, err := s.rdb.HGet(ctx, ref.key, ref.field).Result()
	if errors.Is(err, redis.Nil) {
		return -2, nil
	}
	if err != nil {
		return 0, err
	}
	var last int64
	for e := range strings.SplitSeq(v, ",") {
		parts := strings.Split(e, ";")
		if len(parts) != 3 {
			return 0, fmt.Errorf("malformed entry %q", e)
		}
		exp, err := strconv.ParseInt(parts[2], 36, 64)
		if err != nil {
			return 0, err
		}
		if exp == 0 {
			return -1, nil
		}
		last = max(last, exp)
	}
	return time.Until(time.Unix(last, 0)), nil
}

// PlantIndexMember adds member, with this score and no expiry, to the
// index entry rule uses to find t, as a stale or foreign writer would.
func PlantIndexMember(ctx context.Context, s *Store, rule tokencache.Rule, t tokencache.Token, member string, score float64) error {
	ref := s.keys.index(rule, t)
	v, err := s.rdb.HGet(ctx, ref.key, ref.field).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	e := member + ";" + strconv.FormatInt(int64(score), 36) + ";0"
	if v != "" {
		e = v + "," + e
	}
	return s.rdb.HSet(ctx, ref.key, ref.field, e).Err()
}

// ToLegacyLayout moves the index entries of t from the bucket hashes to the
// sorted sets of the legacy layout (with the longest TTL of their members)
// and removes the layout marker: what an earlier version left behind.
func ToLegacyLayout(ctx context.Context, s *Store, t tokencache.Token) error {
	for _, rule := range indexKinds {
		ref, old := s.keys.index(rule, t), s.keys.legacy(rule, t)
		if ref.key == "" {
			continue
		}
		zs, err := s.readIndex(ctx, ref)
		if err != nil {
			return err
		}
		if len(zs) == 0 {
			continue
		}
		ttl, err := IndexTTL(ctx, s, rule, t)
		if err != nil {
			return err
		}
		if err := s.rdb.ZAdd(ctx, old.key, zs...).Err(); err != nil {
			return err
		}
		if ttl > 0 {
			if err := s.rdb.PExpire(ctx, old.key, ttl).Err(); err != nil {
				return err
			}
		}
		if err := s.rdb.HDel(ctx, ref.key, ref.field).Err(); err != nil {
			return err
		}
	}
	s.migrated.Store(false)
	s.layoutChecked.Store(0)
	return s.rdb.Del(ctx, s.keys.layout()).Err()
}

// WithBucketBits sets how many bits of a digest choose its bucket (default
// 16), so that tests can put many entries into one bucket.
func WithBucketBits(bits uint) Option {
	return func(c *config) { c.bucketBits = bits }
}

// WithExpirySlack sets how many seconds an index member outlives its TTL
// (default 5), so that tests of expiry need not wait.
func WithExpirySlack(seconds int64) Option {
	return func(c *config) { c.expirySlack = seconds }
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
