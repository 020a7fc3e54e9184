package redisstore

import (
	"context"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
)

var _ tokencache.Walker = (*Store)(nil)

// Why Walk needs passes to visit each token once. SSCAN returns every
// member present for the whole scan at least once, but it may return a
// member again when Redis shrinks the set's hash table during the scan (a
// mass delete). Its cursor walks buckets in reverse-binary order; after a
// shrink from 2^m to 2^n buckets, the next call scans a small bucket that
// holds 2^(m-n) large ones, and those visited before the shrink come back.
// How many members that repeats depends on table sizes the client cannot
// see: from a few up to nearly everything returned so far when the set
// shrinks to a handful, so no window of recent pages is enough to drop the
// repeats exactly, and an exact set of every ID seen is O(tokens) (one
// pass remembering all of a million members: 244 MiB of RSS for an
// export, against 52 MiB in passes of 100,000; BENCHMARKS.md part 4).
//
// Walk therefore splits the IDs into classes by their first character and
// makes one SSCAN pass per class (SSCAN ... MATCH "[chars]*"), remembering
// only the members of the class it is in: the repeats SSCAN makes are
// dropped exactly, and the memory is that of one class. The classes are
// balanced from a sample of the set (SRANDMEMBER) so that each holds about
// walkClassSize members; a store of walkClassSize members or fewer is one
// pass without MATCH. Each pass reads the whole set, so the Redis work is
// the number of passes times the set's size: fine at millions of tokens,
// and each SSCAN call stays bounded (walkScanCount buckets). A class whose
// first character is shared by many IDs (imported Zoho IDs are counters,
// 1 to 9) holds more than its share; IDs that SaveToken makes are random
// and spread evenly.
const (
	// walkClassSize is the number of members one pass aims to remember.
	walkClassSize = 100_000
	// walkScanCount is the COUNT of each SSCAN call of a pass with MATCH:
	// Redis visits about that many buckets and returns the matching
	// members, a fraction of them. It is the COUNT of an unfiltered pass:
	// 4000 and 1000 made many more calls over 2 ms than the unfiltered 500
	// on a loaded machine (BENCHMARKS.md part 4).
	walkScanCount = batchSize
	// walkSample is how many members SRANDMEMBER reads to plan the classes
	// (2000 took up to 18 ms on a loaded machine).
	walkSample = 400
)

// Walk calls fn once for each live token, holding one page (batchSize
// tokens) and the IDs of one class of them in memory at a time; see
// tokencache.Walker. A token present for the whole walk is visited exactly
// once, also when SSCAN returns its ID twice (see above); one saved or
// deleted during the walk may or may not be. The order is Redis's. Each
// page's hashes are read in one pipeline, so no single command blocks Redis
// for long whatever the store's size. An error of fn is returned as it is;
// a Redis error is wrapped.
func (s *Store) Walk(ctx context.Context, fn func(tokencache.Token) error) error {
	if s.dur != nil {
		return s.dur.walk(ctx, fn)
	}
	if s.err != nil {
		return s.err
	}
	classes, err := s.walkClasses(ctx)
	if err != nil {
		return wrap("walk", err)
	}
	for _, class := range classes {
		if err := s.walkClass(ctx, class, fn); err != nil {
			return err
		}
	}
	return nil
}

// walkClass makes one SSCAN pass over the members matching pattern ("" for
// all) and calls fn for each live token among them, once each.
func (s *Store) walkClass(ctx context.Context, pattern string, fn func(tokencache.Token) error) error {
	var (
		cursor uint64
		seen   = make(map[string]struct{})
		page   = make([]string, 0, batchSize)
		cmds   = make([]*redis.MapStringStringCmd, 0, batchSize)
		count  = int64(batchSize)
	)
	if pattern != "" {
		count = walkScanCount
	}
	flush := func() error {
		if len(page) == 0 {
			return nil
		}
		defer func() { page, cmds = page[:0], cmds[:0] }()
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, m := range page {
				id, _, _ := parseSetMember(m)
				cmds = append(cmds, p.HGetAll(ctx, s.keys.hash(id)))
			}
			return nil
		})
		if err != nil {
			return wrap("walk", err)
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
		return nil
	}
	for {
		ids, next, err := s.rdb.SScan(ctx, s.keys.ids(), cursor, pattern, count).Result()
		if err != nil {
			return wrap("walk", err)
		}
		for _, m := range ids {
			if _, dup := seen[m]; dup {
				continue // SSCAN's repeat after a shrink of the set
			}
			if _, _, ok := parseSetMember(m); ok {
				seen[m] = struct{}{}
				page = append(page, m)
				if len(page) == batchSize {
					if err := flush(); err != nil {
						return err
					}
				}
			}
		}
		if next == 0 {
			return flush()
		}
		cursor = next
	}
}

// idFirstChars are the characters an ID may start with (ValidateID).
const idFirstChars = "-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"

// walkClasses returns the SSCAN patterns of Walk's passes: {""} (one pass,
// no MATCH) for a set of walkClassSize members or fewer, else patterns
// "[chars]*" whose character sets partition idFirstChars, balanced by a
// sample of the set. Every valid member matches exactly one pattern.
func (s *Store) walkClasses(ctx context.Context) ([]string, error) {
	n, err := s.rdb.SCard(ctx, s.keys.ids()).Result()
	if err != nil {
		return nil, err
	}
	return planClasses(n, s.walkClassN, func() ([]string, error) {
		return s.rdb.SRandMemberN(ctx, s.keys.ids(), walkSample).Result()
	})
}

// planClasses splits idFirstChars into classes of about classSize for a
// set of n members, reading a sample of members from sample when more than one class is
// needed.
func planClasses(n, classSize int64, sample func() ([]string, error)) ([]string, error) {
	want := int((n + classSize - 1) / classSize)
	if want <= 1 {
		return []string{""}, nil
	}
	members, err := sample()
	if err != nil {
		return nil, err
	}
	weight := make(map[byte]int, len(idFirstChars))
	for _, m := range members {
		if m != "" && strings.IndexByte(idFirstChars, m[0]) >= 0 {
			weight[m[0]]++
		}
	}
	want = min(want, max(len(weight), 1))
	// Heaviest first into the lightest class (greedy bin packing); the
	// characters the sample did not show go round the classes, so that
	// every member still matches one pattern.
	chars := []byte(idFirstChars)
	slices.SortStableFunc(chars, func(a, b byte) int { return weight[b] - weight[a] })
	sets := make([][]byte, want)
	load := make([]int, want)
	for i, c := range chars {
		k := i % want
		if weight[c] > 0 {
			k = slices.Index(load, slices.Min(load))
		}
		sets[k] = append(sets[k], c)
		load[k] += weight[c]
	}
	patterns := make([]string, 0, want)
	for _, set := range sets {
		var b strings.Builder
		b.WriteByte('[')
		for _, c := range set {
			if c == '-' {
				b.WriteByte('\\') // a literal '-', not a range
			}
			b.WriteByte(c)
		}
		b.WriteString("]*")
		patterns = append(patterns, b.String())
	}
	return patterns, nil
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
