package redisstore

import (
	"context"
	"math"

	"github.com/redis/go-redis/v9"
)

// reindex walks every token and moves its index entries to the current
// index key.
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
			key := s.keys.index(rule, t)
			ttl := s.indexTTL(rule, t, now)
			if key == "" || ttl < 0 {
				continue
			}
			score, flags := d.score[i], "e"
			if score == 0 {
				score, flags = now.UnixMilli(), ""
			}
			kinds[i] = i
			claims[i] = claimScript.EvalSha(ctx, p, []string{key}, mem.String(), memberPrefix(t.ID, d.inc), score, flags, ttl.Milliseconds())
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
	return s.pipelined(ctx, func(p redis.Pipeliner) {
		for _, prev := range s.prev {
			for _, rule := range indexKinds {
				old := prev.index(rule, t)
				if old != "" && old != s.keys.index(rule, t) {
					dropScript.EvalSha(ctx, p, []string{old}, memberPrefix(t.ID, d.inc), math.MaxInt64)
				}
			}
		}
	})
}
