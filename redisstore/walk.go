package redisstore

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
)

var _ tokencache.Walker = (*Store)(nil)

// Walk calls fn once for each live token, holding one page (batchSize
// tokens) in memory at a time; see tokencache.Walker. It reads the set of
// IDs with SSCAN, a page at a time, and each page's hashes in one pipeline,
// so no single command blocks Redis for long whatever the store's size.
// Unlike GetTokens it keeps no record of the IDs it has passed: SSCAN may
// return an ID twice (when Redis resizes the set during the walk), and so
// may Walk. An error of fn is returned as it is; a Redis error is wrapped.
func (s *Store) Walk(ctx context.Context, fn func(tokencache.Token) error) error {
	if s.dur != nil {
		return s.dur.walk(ctx, fn)
	}
	if s.err != nil {
		return s.err
	}
	var (
		cursor uint64
		page   = make([]string, 0, batchSize)
		cmds   = make([]*redis.MapStringStringCmd, 0, batchSize)
	)
	for {
		ids, next, err := s.rdb.SScan(ctx, s.keys.ids(), cursor, "", batchSize).Result()
		if err != nil {
			return wrap("walk", err)
		}
		page, cmds = page[:0], cmds[:0]
		for _, m := range ids {
			if _, _, ok := parseSetMember(m); ok {
				page = append(page, m)
			}
		}
		if len(page) > 0 {
			_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, m := range page {
					id, _, _ := parseSetMember(m)
					cmds = append(cmds, p.HGetAll(ctx, s.keys.hash(id)))
				}
				return nil
			})
			if err != nil {
				return wrap("walk", err)
			}
		}
		now := s.now()
		for i, c := range cmds {
			m := c.Val()
			if len(m) == 0 {
				continue // expired or deleted since the scan
			}
			id, inc, _ := parseSetMember(page[i])
			d, err := decodeFields(id, m)
			if err != nil {
				return wrap("walk", err)
			}
			if d.inc != inc || !d.token.Live(now) {
				continue // a member of an earlier incarnation, or an expired token
			}
			if err := fn(d.token); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// eachMemberPage scans the set of IDs and calls fn with each page of its
// members (at most about batchSize), holding one page at a time: SSCAN may
// pass a member twice, so fn must be idempotent, as a delete is.
func (s *Store) eachMemberPage(ctx context.Context, fn func(members []string) error) error {
	var cursor uint64
	page := make([]string, 0, batchSize)
	for {
		members, next, err := s.rdb.SScan(ctx, s.keys.ids(), cursor, "", batchSize).Result()
		if err != nil {
			return err
		}
		page = page[:0]
		for _, m := range members {
			if _, _, ok := parseSetMember(m); ok {
				page = append(page, m)
			}
		}
		if len(page) > 0 {
			if err := fn(page); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}
