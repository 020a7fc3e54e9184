package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
)

// maxSaveAttempts bounds how often a save starts over after losing a race
// or meeting a transient Cluster error.
const maxSaveAttempts = 60

// abortTTL is how long a fenced claim stays recorded in its token's abort
// set. A writer stalled between its claim and its commit for longer than
// this could still commit a fenced revision; see doc.go.
const abortTTL = 24 * time.Hour

// defaultExpirySlack is how many seconds an index member outlives the TTL
// it was claimed with. The hash's TTL starts at the commit, a little after
// the claim; the margin keeps the member at least as long as the hash for
// any save that commits within it.
const defaultExpirySlack = 5

// maxTTL caps every TTL the store sets, so that an Expiry centuries ahead
// cannot overflow the arithmetic.
const maxTTL = 100 * 365 * 24 * time.Hour

// errLockLost is how a fenced save reports that the lock did not hold.
var errLockLost = fmt.Errorf("%w: the lock guarding the save is no longer held", tokencache.ErrConflict)

// errContended is returned when a save lost every one of its attempts.
var errContended = errors.New("redisstore: the token is being changed by others; gave up")

// newIncarnation returns a random incarnation: 48 bits, 8 characters.
func newIncarnation() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// saveReq is one save: what to store and how to find what it replaces.
type saveReq struct {
	token *tokencache.Token
	rule  tokencache.Rule
	lock  *fence // SaveTokenIfLocked
	exact bool   // put: install token.Version as given
	// fresh, when set, is told whether a put installed its copy where
	// Redis had none (no hash of that ID at all).
	fresh *bool
}

// fence names a lock that must still hold a value for a write to happen.
type fence struct {
	key, token string
}

func (s *Store) saveToken(ctx context.Context, token *tokencache.Token) error {
	if err := tokencache.ValidateSave(token, s.now()); err != nil {
		return err
	}
	return s.save(ctx, saveReq{token: token, rule: tokencache.RuleOf(*token)})
}

func (s *Store) saveTokenIfLocked(ctx context.Context, token *tokencache.Token, lockKey, lockToken string) error {
	if err := tokencache.ValidateSave(token, s.now()); err != nil {
		return err
	}
	if token.ID == "" {
		return fmt.Errorf("%w: SaveTokenIfLocked needs the token's ID", tokencache.ErrInvalidToken)
	}
	if !strings.HasSuffix(lockKey, "{"+token.ID+"}") || lockToken == "" {
		return fmt.Errorf("%w: lock key must end with {%s} and the lock token must be set", tokencache.ErrInvalidToken, token.ID)
	}
	return s.save(ctx, saveReq{token: token, rule: tokencache.RuleID, lock: &fence{key: lockKey, token: lockToken}})
}

// put installs exactly t, with its ID and Version, replacing what Redis
// holds for that ID unless Redis already holds it at a Version >= t.Version
// (then it does nothing). A token that is no longer live is not cached. Its index entries are claimed as by a save; it
// does not look for another token of the same identity: the caller (the
// durable record) is the authority on that.
func (s *Store) put(ctx context.Context, t tokencache.Token) error {
	_, err := s.putFresh(ctx, t)
	return err
}

// putFresh is put, and also reports whether the copy was installed where
// Redis held no copy of that ID: then Redis knew nothing of later
// revisions, and the caller may have to look at the record again.
func (s *Store) putFresh(ctx context.Context, t tokencache.Token) (fresh bool, err error) {
	if s.err != nil {
		return false, s.err
	}
	if t.ID == "" || t.Version < 1 {
		return false, fmt.Errorf("%w: put needs an ID and a Version", tokencache.ErrInvalidToken)
	}
	if !t.Live(s.now()) {
		return false, nil // nothing to cache
	}
	if err := tokencache.ValidateSave(&t, s.now()); err != nil {
		return false, err
	}
	err = s.save(ctx, saveReq{token: &t, rule: tokencache.RuleID, exact: true, fresh: &fresh})
	return fresh, err
}

// save runs attempts of one save until one commits, fails for good, or the
// attempts run out. Every attempt starts from a fresh read, so an attempt
// cut short anywhere leaves nothing that the next one, or a reader, does
// not handle.
func (s *Store) save(ctx context.Context, req saveReq) error {
	var last error
	for attempt := 0; attempt < maxSaveAttempts; attempt++ {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return wrap("save token", err)
			}
		}
		done, err := s.saveOnce(ctx, req)
		switch {
		case err == nil && done:
			return nil
		case err == nil:
			last = nil
			continue
		case errors.Is(err, tokencache.ErrConflict):
			if errors.Is(err, errLockLost) {
				return fmt.Errorf("redisstore: save token %s: %w", req.token.ID, err)
			}
			return fmt.Errorf("redisstore: save token version %d: %w", req.token.Version, err)
		case errors.Is(err, ErrReplicaAcks):
			return wrap("save token", err)
		case transient(err) && ctx.Err() == nil:
			last = err
			continue
		default:
			return wrap("save token", err)
		}
	}
	if last != nil {
		return wrap("save token", last)
	}
	return errContended
}

// backoff waits a little before attempt, more as attempts add up.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(min(attempt*attempt, 100)) * time.Millisecond / 2
	if attempt < 3 {
		d = time.Duration(attempt) * time.Millisecond
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// target is the state a save found and replaces.
type target struct {
	id     string
	cur    decoded // what the hash held
	exists bool    // the hash held a revision of incarnation cur.inc
	live   bool    // ... and that token is live
}

// saveOnce is one attempt of a save: read what it replaces, claim every
// index entry of the new token (write-ahead), tell overtaken holders, commit
// the hash with a compare-and-set, then drop the entries of values the
// token no longer holds. It returns false when it lost a race and the save
// should start over.
func (s *Store) saveOnce(ctx context.Context, req saveReq) (bool, error) {
	now := s.now()
	token := req.token
	var tg target
	insertRule := tokencache.RuleNone // the identity an insert claims exclusively
	if req.rule == tokencache.RuleID {
		d, found, err := s.readHash(ctx, token.ID)
		if err != nil {
			return false, err
		}
		tg = target{id: token.ID, cur: d, exists: found, live: found && d.token.Live(now)}
		switch {
		case req.exact:
			if found && d.token.Version >= token.Version {
				return true, nil // Redis already has this revision or a later one
			}
		case token.Version != 0 && (!tg.live || d.token.Version != token.Version):
			return false, tokencache.ErrConflict
		}
	} else {
		r, err := s.lookup(ctx, *token, req.rule)
		if err != nil {
			return false, err
		}
		switch {
		case r.found:
			if token.Version != 0 && token.Version != r.d.token.Version {
				return false, tokencache.ErrConflict
			}
			tg = target{id: r.d.token.ID, cur: r.d, exists: true, live: true}
		case token.Version != 0:
			return false, tokencache.ErrConflict
		case r.busy:
			return false, nil // another save of this identity is in flight
		default:
			tg = target{id: tokencache.NewID()}
			insertRule = req.rule
		}
	}

	saved := *token
	saved.ID = tg.id
	inc, rev := tg.cur.inc, tg.cur.Version()+1
	if !tg.live {
		inc, rev = newIncarnation(), 1 // a new token, or one in place of a dead one
	}
	if req.exact {
		rev = token.Version
		if !tg.exists {
			inc = newIncarnation()
		} else {
			inc = tg.cur.inc
		}
	}
	mem := member{id: tg.id, inc: inc, rev: rev}

	// Claims, ahead of the commit: the ID joins the set of IDs and every
	// value of the new token gets its index entry. If this attempt ends
	// without committing, this process remembers its claim so that its
	// own next lookup fences it at once (see leftClaims).
	committed := false
	defer func() {
		if !committed {
			s.left.add(mem.String())
		}
	}()
	var (
		claimKeys [len(indexKinds)]ixRef
		claims    [len(indexKinds)]*redis.Cmd
	)
	nowMs := now.UnixMilli()
	err := s.pipelined(ctx, func(p redis.Pipeliner) {
		if !tg.exists || tg.cur.inc != inc {
			p.SAdd(ctx, s.keys.ids(), setMember(tg.id, inc))
		}
		for i, rule := range indexKinds {
			ref := s.keys.index(rule, saved)
			ttl := s.indexTTL(rule, saved, now)
			if ref.key == "" || ttl < 0 {
				continue
			}
			flags := ""
			if rule == insertRule {
				flags = "x"
			}
			claimKeys[i] = ref
			claims[i] = claimScript.EvalSha(ctx, p, []string{ref.key}, ref.field, mem.String(), memberPrefix(tg.id, inc), nowMs, flags, ttl.Milliseconds(), s.expirySlack)
		}
	})
	if err != nil {
		return false, err
	}
	var (
		scores    [len(indexKinds)]int64
		selfMark  [len(indexKinds)]bool
		overtaken []settleArgs
	)
	for i, c := range claims {
		if c == nil {
			continue
		}
		code, score, others, below, err := claimResult(c)
		if err != nil {
			return false, err
		}
		if below > len(others) {
			// More holders than one claim tells: this token's hints on the
			// value never hold (a lookup reads the index instead).
			selfMark[i] = true
		}
		if code == claimBusy {
			// Another token holds, or is claiming, this identity. This
			// incarnation never commits: take back its other claims.
			s.abandon(ctx, mem, claimKeys[:])
			return false, nil
		}
		scores[i] = score
		for _, o := range others {
			overtaken = append(overtaken, settleArgs{m: o, kind: i, score: score})
		}
	}
	// Holders the claims overtook learn it before the commit, so that
	// their hints stop holding; a claim of theirs still in flight is
	// fenced, so that it commits, if at all, after re-claiming above ours.
	if err := s.settle(ctx, overtaken); err != nil {
		return false, err
	}

	// The commit point.
	fields := encodeFields(saved)
	for i, sc := range scores {
		if sc > 0 {
			fields = append(fields, scoreField(i), formatScore(sc))
		}
		if selfMark[i] {
			fields = append(fields, overField(i), formatScore(sc))
		}
	}
	var expectRev int64
	if tg.exists {
		expectRev = tg.cur.Version()
	}
	hkeys := []string{s.keys.hash(tg.id), s.keys.abort(tg.id)}
	lockToken := ""
	if req.lock != nil {
		hkeys = append(hkeys, req.lock.key)
		lockToken = req.lock.token
	}
	args := append([]any{tg.cur.inc, expectRev, inc, rev, s.hashTTL(saved, now).Milliseconds(), lockToken, newIncarnation()}, fields...)
	res, ackErr, err := s.runAcked(ctx, commitScript, hkeys, args)
	if err != nil {
		return false, err
	}
	code, err := resultCode(res)
	if err != nil {
		return false, fmt.Errorf("commit script: %w", err)
	}
	switch code {
	case commitOK:
	case commitLockLost:
		return false, errLockLost
	case commitConflict, commitAborted:
		// Lost the compare-and-set, or a reader fenced this revision: the
		// next attempt reads again (and a Version that moved on is then a
		// conflict). The claims stay behind as entries that readers
		// recognise as dead.
		return false, nil
	default:
		return false, fmt.Errorf("commit script replied %d", code)
	}

	committed = true
	if req.fresh != nil {
		*req.fresh = !tg.exists
	}
	// Committed. Drop the entries of values the token no longer holds, and
	// of the incarnation it replaced; a failure leaves dead entries that
	// readers skip and remove.
	s.afterCommit(ctx, tg, saved, inc, rev, now)
	token.ID, token.Version = tg.id, rev
	return true, ackErr
}

// Version returns the revision of a decoded hash (0 for none).
func (d decoded) Version() int64 { return d.token.Version }

// afterCommit removes the index entries the commit made obsolete and
// updates the hints.
func (s *Store) afterCommit(ctx context.Context, tg target, saved tokencache.Token, inc string, rev int64, now time.Time) {
	newKeys := map[ixRef]bool{}
	for _, rule := range indexKinds {
		if ref := s.keys.index(rule, saved); ref.key != "" && s.indexTTL(rule, saved, now) >= 0 {
			newKeys[ref] = true
			s.hints.put(ref.hintKey(), saved.ID)
		}
	}
	if !tg.exists {
		return
	}
	sameInc := tg.cur.inc == inc
	maxRev := rev
	if !sameInc {
		maxRev = math.MaxInt64
	}
	_ = s.pipelined(ctx, func(p redis.Pipeliner) {
		for _, rule := range indexKinds {
			old := s.keys.index(rule, tg.cur.token)
			if old.key == "" || (sameInc && newKeys[old]) {
				continue
			}
			if !newKeys[old] {
				s.hints.drop(old.hintKey())
			}
			bucketDropScript.EvalSha(ctx, p, []string{old.key}, old.field, memberPrefix(saved.ID, tg.cur.inc), maxRev, "")
		}
		if !sameInc {
			p.SRem(ctx, s.keys.ids(), setMember(saved.ID, tg.cur.inc))
		}
	})
}

// abandon removes, best effort, the claims of an incarnation that will never
// commit: its entries in keys and its member of the set of IDs. Readers
// would otherwise wait for it for the pending bound, then fence and drop it.
func (s *Store) abandon(ctx context.Context, mem member, refs []ixRef) {
	_ = s.pipelined(ctx, func(p redis.Pipeliner) {
		for _, ref := range refs {
			if ref.key != "" {
				bucketDropScript.EvalSha(ctx, p, []string{ref.key}, ref.field, "", 0, mem.String())
			}
		}
		p.SRem(ctx, s.keys.ids(), setMember(mem.id, mem.inc))
	})
}

// settleArgs is one overtaken claim to settle.
type settleArgs struct {
	m     member
	kind  int
	score int64
}

// settle tells each overtaken holder, in its own slot, the score that
// overtook it, fencing its claim if it has not committed yet.
func (s *Store) settle(ctx context.Context, list []settleArgs) error {
	if len(list) == 0 {
		return nil
	}
	cmds := make([]*redis.Cmd, len(list))
	err := s.pipelined(ctx, func(p redis.Pipeliner) {
		for i, a := range list {
			cmds[i] = settleScript.EvalSha(ctx, p, []string{s.keys.hash(a.m.id), s.keys.abort(a.m.id)},
				a.m.inc, a.m.rev, overField(a.kind), a.score, abortTTL.Milliseconds())
		}
	})
	if err != nil {
		return err
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			return err
		}
	}
	return nil
}

// claimResult decodes claimScript's reply.
func claimResult(c *redis.Cmd) (code, score int64, others []member, below int, err error) {
	res, err := c.Slice()
	if err != nil {
		return 0, 0, nil, 0, err
	}
	if len(res) < 3 {
		return 0, 0, nil, 0, fmt.Errorf("claim script replied %d values", len(res))
	}
	if len(res) > 3 {
		n, _ := res[3].(int64)
		below = int(n)
	}
	code, _ = res[0].(int64)
	score, _ = res[1].(int64)
	flat, _ := res[2].([]any)
	for i := 0; i+1 < len(flat); i += 2 {
		v, _ := flat[i].(string)
		if m, ok := parseMember(v); ok {
			others = append(others, m)
		}
	}
	return code, score, others, below, nil
}

// resultCode returns the first element of a script's array reply.
func resultCode(res []any) (int64, error) {
	if len(res) == 0 {
		return 0, errors.New("empty reply")
	}
	code, ok := res[0].(int64)
	if !ok {
		return 0, fmt.Errorf("reply %v is not a code", res[0])
	}
	return code, nil
}

// hashTTL is how long the token's hash lives from now; 0 means forever.
// It never exceeds maxTTL, however far ahead Expiry is.
func (s *Store) hashTTL(t tokencache.Token, now time.Time) time.Duration {
	if t.Expiry.IsZero() {
		return 0
	}
	left := t.Expiry.Sub(now) // saturates instead of overflowing
	if t.RefreshToken == "" {
		return min(max(left, time.Millisecond), maxTTL)
	}
	if s.retention == 0 {
		return 0
	}
	left = max(left, 0)
	if left >= maxTTL || s.retention >= maxTTL-left {
		return maxTTL
	}
	return left + s.retention
}

// indexTTL is how long the token's index member for rule lives: as long as
// the hash, except the access-token entry, which ends with the access token.
// It is negative when there must be no entry: the access token has expired.
func (s *Store) indexTTL(rule tokencache.Rule, t tokencache.Token, now time.Time) time.Duration {
	if rule == tokencache.RuleAccessToken && !t.Expiry.IsZero() {
		left := t.Expiry.Sub(now)
		if left <= 0 {
			return -1
		}
		return min(max(left, time.Millisecond), maxTTL)
	}
	return s.hashTTL(t, now)
}
