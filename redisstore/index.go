package redisstore

import (
	"context"
	"math"

	"github.com/redis/go-redis/v9"
)

// reindex walks every token and moves its index entries to the bucket
// hashes of the current index key, from previous index keys and from the
// legacy layout. Once every live token is done it writes the layout
// marker: lookups then stop reading legacy keys.
func (s *Store) reindex(ctx context.Context) (int, error) {
	moved := 0
	err := s.eachBatch(ctx, func(batch []string, hashes []map[string]string) error {
		for i, m := range batch {
			id, inc, _ := parseSetMember(m)
			d, found, err := decodeHash(id, hashes[i])
			if err != nil {
				return err
			}
			if !found || d.inc != inc || !d.token.Live(s.now()) {
				continue
			}
			if err := s.reindexToken(ctx, d); err != nil {
				return err
			}
			moved++
		}
		return nil
	})
	if err != nil {
		return moved, wrap("reindex", err)
	}
	if err := s.rdb.Set(ctx, s.keys.layout(), layoutBuckets, 0).Err(); err != nil {
		return moved, wrap("reindex", err)
	}
	s.migrated.Store(true)
	return moved, nil
}

// reindexToken writes the index entries of the token d (as read from its
// hash) under the current index key, with the scores its claims had, so
// that the order among holders of a value stays, and then removes its
// entries under the previous keys. The entries name the revision d is at,
// which holds the values already: no commit is needed.
func (s *Store) reindexToken(ctx context.Context, d decoded) error {
	now := s.now()
	t := d.token
	mem := member{id: t.ID, inc: d.inc, rev: t.Version}
	var (
		claims [len(indexKinds)]*redis.Cmd
		kinds  [len(indexKinds)]int
	)
	err := s.pipelined(ctx, func(p redis.Pipeliner) {
		for i, rule := range indexKinds {
			ref := s.keys.index(rule, t)
			ttl := s.indexTTL(rule, t, now)
			if ref.key == "" || ttl < 0 {
				continue
			}
			score, flags := d.score[i], "e"
			if score == 0 {
				score, flags = now.UnixMilli(), ""
			}
			kinds[i] = i
			claims[i] = claimScript.EvalSha(ctx, p, []string{ref.key}, ref.field, mem.String(), memberPrefix(t.ID, d.inc), score, flags, ttl.Milliseconds(), s.expirySlack)
		}
	})
	if err != nil {
		return err
	}
	var overtaken []settleArgs
	for i, c := range claims {
		if c == nil {
			continue
		}
		_, score, others, _, err := claimResult(c)
		if err != nil {
			return err
		}
		for _, o := range others {
			overtaken = append(overtaken, settleArgs{m: o, kind: kinds[i], score: score})
		}
	}
	if err := s.settle(ctx, overtaken); err != nil {
		return err
	}
	legacy, err := s.legacyMayExist(ctx)
	if err != nil {
		legacy = true // clean up legacy keys too, in case
	}
	prefix := memberPrefix(t.ID, d.inc)
	return s.pipelined(ctx, func(p redis.Pipeliner) {
		for _, rule := range indexKinds {
			if legacy {
				if old := s.keys.legacy(rule, t); old.key != "" {
					dropScript.EvalSha(ctx, p, []string{old.key}, prefix, math.MaxInt64)
				}
			}
			for _, prev := range s.prev {
				if old := prev.index(rule, t); old.key != "" && old != s.keys.index(rule, t) {
					bucketDropScript.EvalSha(ctx, p, []string{old.key}, old.field, prefix, math.MaxInt64, "")
				}
				if old := prev.legacy(rule, t); legacy && old.key != "" && old != s.keys.legacy(rule, t) {
					dropScript.EvalSha(ctx, p, []string{old.key}, prefix, math.MaxInt64)
				}
			}
		}
	})
}
