package redisstore

import (
	"context"
	"math"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
)

// batchSize is how many tokens GetTokens and DeleteTokens handle per round
// trip.
const batchSize = 500

// maxDeletePasses bounds DeleteTokens' scans of the set of IDs.
const maxDeletePasses = 100

func (s *Store) deleteToken(ctx context.Context, id string) error {
	if err := tokencache.ValidateID(id); err != nil {
		return err
	}
	var last error
	for attempt := 0; attempt < maxSaveAttempts; attempt++ {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return wrap("delete token", err)
			}
		}
		res, ackErr, err := s.runAcked(ctx, deleteScript, []string{s.keys.hash(id), s.keys.abort(id)}, []any{"*", abortTTL.Milliseconds()})
		if err != nil {
			if transient(err) && ctx.Err() == nil {
				last = err
				continue
			}
			return wrap("delete token", err)
		}
		if code, err := resultCode(res); err != nil || code != deleteDone || len(res) < 2 {
			if ackErr != nil {
				return wrap("delete token", ackErr)
			}
			return nil // nothing was there
		}
		flat, _ := res[1].([]any)
		if d, found, err := decodeFlat(id, flat); err == nil && found {
			s.unindex(ctx, []decoded{d})
		}
		if ackErr != nil {
			return wrap("delete token", ackErr)
		}
		return nil
	}
	return wrap("delete token", last)
}

// unindex removes, best effort, the index entries and set members of
// tokens whose hashes are gone. An entry left behind is dead: readers skip
// and remove it.
func (s *Store) unindex(ctx context.Context, gone []decoded) {
	const perPipeline = 100 // tokens: up to 4 scripts each
	for len(gone) > perPipeline {
		s.unindex(ctx, gone[:perPipeline])
		gone = gone[perPipeline:]
	}
	if len(gone) == 0 {
		return
	}
	members := make([]any, 0, len(gone))
	legacy, err := s.legacyMayExist(ctx)
	if err != nil {
		legacy = true // clean up legacy keys too, in case
	}
	_ = s.pipelined(ctx, func(p redis.Pipeliner) {
		for _, d := range gone {
			members = append(members, setMember(d.token.ID, d.inc))
			prefix := memberPrefix(d.token.ID, d.inc)
			for _, rule := range indexKinds {
				if ref := s.keys.index(rule, d.token); ref.key != "" {
					bucketDropScript.EvalSha(ctx, p, []string{ref.key}, ref.field, prefix, math.MaxInt64, "")
					s.hints.drop(ref.hintKey())
				}
				if ref := s.keys.legacy(rule, d.token); legacy && ref.key != "" {
					dropScript.EvalSha(ctx, p, []string{ref.key}, prefix, math.MaxInt64)
				}
			}
		}
		p.SRem(ctx, s.keys.ids(), members...)
	})
}

// fenceMembers settles set members whose hash is not of their incarnation:
// each is fenced in its token's slot (so that an insert of it still in
// flight can never commit) and then removed from the set. A member whose
// insert committed meanwhile stays. Best effort: what stays is handled on
// the next scan.
func (s *Store) fenceMembers(ctx context.Context, stale []string) {
	for len(stale) > 0 {
		n := min(len(stale), batchSize)
		batch := stale[:n]
		stale = stale[n:]
		cmds := make([]*redis.Cmd, len(batch))
		if err := s.pipelined(ctx, func(p redis.Pipeliner) {
			for i, m := range batch {
				id, inc, _ := parseSetMember(m)
				cmds[i] = settleScript.EvalSha(ctx, p, []string{s.keys.hash(id), s.keys.abort(id)}, inc, 1, "", 0, abortTTL.Milliseconds())
			}
		}); err != nil {
			return
		}
		var drop []any
		for i, c := range cmds {
			if code, err := c.Int64(); err == nil && code != settleResolved {
				drop = append(drop, batch[i])
			}
		}
		if len(drop) > 0 {
			_ = s.rdb.SRem(ctx, s.keys.ids(), drop...).Err()
		}
	}
}

func (s *Store) getTokens(ctx context.Context) ([]tokencache.Token, error) {
	out := []tokencache.Token{}
	var stale []string
	err := s.eachBatch(ctx, func(batch []string, hashes []map[string]string) error {
		now := s.now()
		for i, m := range batch {
			id, inc, _ := parseSetMember(m)
			d, found, err := decodeHash(id, hashes[i])
			if err != nil {
				return err
			}
			if !found || d.inc != inc {
				stale = append(stale, m)
				continue
			}
			if d.token.Live(now) {
				out = append(out, d.token)
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrap("get tokens", err)
	}
	// Clean-up once the scan is over: removing members during an SSCAN may
	// make it skip others. Failing it loses nothing.
	s.fenceMembers(ctx, stale)
	return out, nil
}

func (s *Store) deleteTokens(ctx context.Context) error {
	// Removing members while scanning may make a scan skip some (miniredis
	// does; Redis does not for members present throughout), so scan again
	// until a pass finds nothing. Tokens saved meanwhile may survive.
	for pass := 0; pass < maxDeletePasses; pass++ {
		found := 0
		err := s.eachMemberPage(ctx, func(batch []string) error {
			found += len(batch)
			return s.deleteBatch(ctx, batch)
		})
		if err != nil {
			return wrap("delete tokens", err)
		}
		if found == 0 {
			return nil // the layout marker stays: it is still true
		}
	}
	return nil
}

// deleteBatch deletes the tokens of these set members: each hash of the
// member's incarnation goes (a pending insert of it is fenced instead),
// then the index entries and the members.
func (s *Store) deleteBatch(ctx context.Context, batch []string) error {
	cmds := make([]*redis.Cmd, len(batch))
	if err := s.pipelined(ctx, func(p redis.Pipeliner) {
		for i, m := range batch {
			id, inc, _ := parseSetMember(m)
			cmds[i] = deleteScript.EvalSha(ctx, p, []string{s.keys.hash(id), s.keys.abort(id)}, inc, abortTTL.Milliseconds())
		}
	}); err != nil {
		return err
	}
	var gone []decoded
	var absent []any
	for i, c := range cmds {
		res, err := c.Slice()
		if err != nil {
			return err
		}
		id, _, _ := parseSetMember(batch[i])
		if code, _ := resultCode(res); code == deleteDone && len(res) > 1 {
			flat, _ := res[1].([]any)
			if d, found, err := decodeFlat(id, flat); err == nil && found {
				gone = append(gone, d)
				continue
			}
		}
		absent = append(absent, batch[i])
	}
	s.unindex(ctx, gone)
	if len(absent) > 0 {
		if err := s.rdb.SRem(ctx, s.keys.ids(), absent...).Err(); err != nil {
			return err
		}
	}
	return nil
}

// eachBatch scans the set of IDs and calls fn with each batch of members
// and their hashes, read in one pipeline. Members are passed once even
// when SSCAN returns them twice.
func (s *Store) eachBatch(ctx context.Context, fn func(members []string, hashes []map[string]string) error) error {
	seen := make(map[string]struct{})
	var cursor uint64
	for {
		members, next, err := s.rdb.SScan(ctx, s.keys.ids(), cursor, "", batchSize).Result()
		if err != nil {
			return err
		}
		batch := members[:0]
		for _, m := range members {
			if _, dup := seen[m]; dup {
				continue
			}
			if _, _, ok := parseSetMember(m); ok {
				seen[m] = struct{}{}
				batch = append(batch, m)
			}
		}
		if len(batch) > 0 {
			cmds := make([]*redis.MapStringStringCmd, len(batch))
			_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i, m := range batch {
					id, _, _ := parseSetMember(m)
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
