package redisstore_test

// Regression tests for the nine integrity defects of issue 7. Each forces
// its interleaving or interruption at every command in turn (a go-redis
// hook), so that it does not depend on which commands a version of the
// store sends, and checks the answer memstore would give.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/redisstore"
)

// beforeCommand runs fn once, just before the client sends its command
// number n (from 0, counting each command of a pipeline; a pipeline is
// sent whole, after fn), as if another process acted at that moment.
type beforeCommand struct {
	n    int64
	fn   func()
	sent atomic.Int64
	ran  atomic.Bool
}

func (b *beforeCommand) tick(k int64) {
	before := b.sent.Add(k) - k
	if before <= b.n && b.n < before+k && b.ran.CompareAndSwap(false, true) {
		b.fn()
	}
}

func (b *beforeCommand) DialHook(next redis.DialHook) redis.DialHook { return next }
func (b *beforeCommand) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		b.tick(1)
		return next(ctx, cmd)
	}
}
func (b *beforeCommand) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		b.tick(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// fixture is one namespace seen by a healthy store and by fresh stores
// acting as other processes.
type fixture struct {
	t   *testing.T
	tg  *redistest.Target
	rdb redis.UniversalClient
	ns  string
}

func newFixture(t *testing.T, tg *redistest.Target, rdb redis.UniversalClient) *fixture {
	ns := redistest.Namespace(t)
	redistest.DropNamespaceAtCleanup(t, rdb, ns)
	return &fixture{t: t, tg: tg, rdb: rdb, ns: ns}
}

// store returns a store on the fixture's namespace, with its own hints.
func (f *fixture) store(opts ...redisstore.Option) *redisstore.Store {
	return redisstore.New(f.rdb, append([]redisstore.Option{redisstore.WithNamespace(f.ns)}, opts...)...)
}

// hooked returns a store whose client carries hook.
func (f *fixture) hooked(hook redis.Hook, opts ...redisstore.Option) *redisstore.Store {
	c := f.tg.Client(f.t)
	c.AddHook(hook)
	return redisstore.New(c, append([]redisstore.Option{redisstore.WithNamespace(f.ns)}, opts...)...)
}

// find asks a fresh process (no hints) and fails the test on an error
// other than not found.
func (f *fixture) find(q tokencache.Token) (tokencache.Token, bool) {
	f.t.Helper()
	got, err := f.store(redisstore.WithHintCacheSize(0)).FindToken(ctx, q)
	if errors.Is(err, tokencache.ErrNotFound) {
		return tokencache.Token{}, false
	}
	if err != nil {
		f.t.Fatalf("FindToken = %v", err)
	}
	return got, true
}

func (f *fixture) all() []tokencache.Token {
	f.t.Helper()
	toks, err := f.store().GetTokens(ctx)
	if err != nil {
		f.t.Fatalf("GetTokens = %v", err)
	}
	return toks
}

// eachPoint runs body with n = 0, 1, 2, … until body reports that the
// operation under test completed before reaching command n.
func eachPoint(t *testing.T, body func(t *testing.T, n int64) (finished bool)) {
	for n := int64(0); n < 80; n++ {
		if body(t, n) {
			return
		}
	}
	t.Fatalf("the operation did not finish within 80 commands")
}

// Defect 1: a save interrupted after the hash committed and before the
// index writes left the token unreachable by its new values, and the next
// save by the new refresh token made a second token.
func TestIntegrityInterruptedSaveStaysReachable(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	for _, move := range []struct {
		name   string
		update tokencache.Token // saved by ID
		probe  tokencache.Token // must find the token once it holds the update
		again  tokencache.Token // a later save of the new identity
	}{
		{"refresh", tokencache.Token{ClientID: "c", RefreshToken: "r2", AccessToken: "a2"},
			tokencache.Token{ClientID: "c", RefreshToken: "r2"}, tokencache.Token{ClientID: "c", RefreshToken: "r2", AccessToken: "a3"}},
		{"user name", tokencache.Token{UserName: "new-name", ClientID: "c", AccessToken: "a2"},
			tokencache.Token{UserName: "new-name", ClientID: "c"}, tokencache.Token{UserName: "new-name", ClientID: "c", AccessToken: "a3"}},
	} {
		t.Run(move.name, func(t *testing.T) {
			eachPoint(t, func(t *testing.T, n int64) bool {
				f := newFixture(t, tg, rdb)
				orig := mustSave(t, f.store(), tokencache.Token{UserName: "old-name", ClientID: "c", RefreshToken: "r1", AccessToken: "a1"})
				up := move.update
				up.ID = orig.ID
				err := f.hooked(&faultAfter{limit: n}).SaveToken(ctx, &up)
				if err != nil && errors.Is(err, tokencache.ErrNotFound) {
					t.Fatalf("point %d: an interrupted save reported ErrNotFound", n)
				}
				cur, err2 := f.store().FindTokenByID(ctx, orig.ID)
				if err2 != nil {
					t.Fatalf("point %d: FindTokenByID = %v", n, err2)
				}
				if cur.AccessToken == "a2" {
					for _, q := range []tokencache.Token{move.probe, {AccessToken: "a2"}} {
						if got, ok := f.find(q); !ok || got.ID != orig.ID {
							t.Fatalf("point %d: the token holds the update but FindToken(%v) = %v, %v", n, q, got.ID, ok)
						}
					}
					again := move.again
					mustSave(t, f.store(), again)
					if toks := f.all(); len(toks) != 1 {
						t.Fatalf("point %d: %d tokens after saving the new identity again, want 1", n, len(toks))
					}
				}
				return err == nil
			})
		})
	}
}

// Defect 2: moving a token onto another's value and off again dropped the
// other token's entry; so did deleting one of two holders of a refresh
// token.
func TestIntegrityMoveOffSharedValueKeepsOtherHolder(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	f := newFixture(t, tg, rdb)
	s := f.store()
	a := mustSave(t, s, tokencache.Token{UserName: "ua", ClientID: "c", AccessToken: "a1"})
	b := mustSave(t, s, tokencache.Token{UserName: "ub", ClientID: "c", AccessToken: "b1"})
	mustSave(t, s, tokencache.Token{ID: a.ID, UserName: "ub", ClientID: "c", AccessToken: "a2"})
	mustSave(t, s, tokencache.Token{ID: a.ID, UserName: "ua", ClientID: "c", AccessToken: "a3"})
	if got, ok := f.find(tokencache.Token{UserName: "ub", ClientID: "c"}); !ok || got.ID != b.ID {
		t.Fatalf("after A moved onto B's user and back, FindToken(ub) = %q, %v; want B %s", got.ID, ok, b.ID)
	}
	saved := mustSave(t, f.store(), tokencache.Token{UserName: "ub", ClientID: "c", AccessToken: "b2"})
	if saved.ID != b.ID || len(f.all()) != 2 {
		t.Fatalf("saving ub again made token %s (B is %s) and %d tokens in all", saved.ID, b.ID, len(f.all()))
	}

	x := mustSave(t, s, tokencache.Token{UserName: "ux", ClientID: "c", RefreshToken: "shared"})
	y := mustSave(t, s, tokencache.Token{UserName: "uy", ClientID: "c", RefreshToken: "shared"})
	if err := s.DeleteToken(ctx, y.ID); err != nil {
		t.Fatal(err)
	}
	if got, ok := f.find(tokencache.Token{RefreshToken: "shared", ClientID: "c"}); !ok || got.ID != x.ID {
		t.Fatalf("after deleting one holder of a refresh token, FindToken = %q, %v; want the other, %s", got.ID, ok, x.ID)
	}
}

// Defect 3: a delete landing inside a save made it fail with redis.Nil.
func TestIntegritySaveRacingDelete(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	eachPoint(t, func(t *testing.T, n int64) bool {
		f := newFixture(t, tg, rdb)
		orig := mustSave(t, f.store(), tokencache.Token{UserName: "u", ClientID: "c", AccessToken: "a1"})
		hook := &beforeCommand{n: n, fn: func() {
			if err := f.store().DeleteToken(ctx, orig.ID); err != nil {
				t.Errorf("DeleteToken = %v", err)
			}
		}}
		tok := tokencache.Token{UserName: "u", ClientID: "c", AccessToken: "a2"}
		if err := f.hooked(hook).SaveToken(ctx, &tok); err != nil {
			t.Fatalf("point %d: SaveToken racing a delete = %v", n, err)
		}
		// A delete that landed after the save's commit removed the saved
		// token; one that landed before made the save insert a new one.
		got, ok := f.find(tokencache.Token{UserName: "u", ClientID: "c"})
		switch {
		case !ok && tok.ID == orig.ID:
			if toks := f.all(); len(toks) != 0 {
				t.Fatalf("point %d: %d tokens after the update was deleted, want 0", n, len(toks))
			}
		case !ok || got.AccessToken != "a2" || got.ID != tok.ID:
			t.Fatalf("point %d: after the save FindToken = %v, %v; want the saved %s", n, got, ok, tok.ID)
		default:
			if toks := f.all(); len(toks) != 1 {
				t.Fatalf("point %d: %d tokens, want 1", n, len(toks))
			}
		}
		return !hook.ran.Load()
	})
}

// Defect 4: a reader cleaning the stale entry of a deleted ID removed the
// entry of the ID re-created meanwhile (revisions restart at 1).
func TestIntegrityRecreatedIDKeepsItsEntries(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	eachPoint(t, func(t *testing.T, n int64) bool {
		f := newFixture(t, tg, rdb)
		s := f.store()
		for i := 1; i <= 3; i++ {
			mustSave(t, s, tokencache.Token{ID: "re", UserName: "u", ClientID: "c", AccessToken: fmt.Sprint("a", i)})
		}
		// A delete that stops after removing the hash leaves its entries.
		if err := rdb.Del(ctx, s.HashKey("re")).Err(); err != nil {
			t.Fatal(err)
		}
		hook := &beforeCommand{n: n, fn: func() {
			mustSave(t, f.store(), tokencache.Token{ID: "re", UserName: "u", ClientID: "c", AccessToken: "a3"})
		}}
		_, err := f.hooked(hook, redisstore.WithHintCacheSize(0)).FindToken(ctx, tokencache.Token{UserName: "u", ClientID: "c"})
		if err != nil && !errors.Is(err, tokencache.ErrNotFound) {
			t.Fatalf("point %d: FindToken = %v", n, err)
		}
		if !hook.ran.Load() {
			return true
		}
		for _, q := range []tokencache.Token{{UserName: "u", ClientID: "c"}, {AccessToken: "a3"}} {
			if got, ok := f.find(q); !ok || got.ID != "re" {
				t.Fatalf("point %d: the re-created ID is not found by %v: %q, %v", n, q, got.ID, ok)
			}
		}
		return false
	})
}

// Defect 5: GetTokens' clean-up of a vanished hash removed the ID that was
// re-created meanwhile, so DeleteTokens left it behind.
func TestIntegrityGetTokensKeepsRecreatedID(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	eachPoint(t, func(t *testing.T, n int64) bool {
		f := newFixture(t, tg, rdb)
		s := f.store()
		mustSave(t, s, tokencache.Token{ID: "re", UserName: "u", ClientID: "c", AccessToken: "a1"})
		// What Redis does when the hash's TTL runs out.
		if err := rdb.Del(ctx, s.HashKey("re")).Err(); err != nil {
			t.Fatal(err)
		}
		hook := &beforeCommand{n: n, fn: func() {
			mustSave(t, f.store(), tokencache.Token{ID: "re", UserName: "u", ClientID: "c", AccessToken: "a2"})
		}}
		if _, err := f.hooked(hook).GetTokens(ctx); err != nil {
			t.Fatalf("point %d: GetTokens = %v", n, err)
		}
		if !hook.ran.Load() {
			return true
		}
		if toks := f.all(); len(toks) != 1 || toks[0].ID != "re" {
			t.Fatalf("point %d: GetTokens after the re-creation = %v, want the token re", n, toks)
		}
		if err := f.store().DeleteTokens(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := f.store().FindTokenByID(ctx, "re"); !errors.Is(err, tokencache.ErrNotFound) {
			t.Fatalf("point %d: DeleteTokens left the re-created token: %v", n, err)
		}
		return false
	})
}

// Defect 6: once two tokens held one identity, a process with a hint
// answered with the older holder, a fresh one with the newer, and the
// first process's upserts went to the older.
func TestIntegrityHintsAgreeWithTheIndex(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	f := newFixture(t, tg, rdb)
	p1 := f.store()
	q := tokencache.Token{UserName: "u", ClientID: "c"}
	a := mustSave(t, p1, tokencache.Token{UserName: "u", ClientID: "c", AccessToken: "a1"})
	if got, err := p1.FindToken(ctx, q); err != nil || got.ID != a.ID {
		t.Fatalf("FindToken = %v, %v", got.ID, err)
	}
	// Another process moves token x onto the same identity, by ID: the
	// most recently saved holder, x, is the answer (memstore's rule).
	x := mustSave(t, f.store(), tokencache.Token{ID: "x", UserName: "u", ClientID: "c", AccessToken: "x1"})
	for name, s := range map[string]*redisstore.Store{"hinted process": p1, "fresh process": f.store()} {
		if got, err := s.FindToken(ctx, q); err != nil || got.ID != x.ID {
			t.Errorf("%s: FindToken = %q, %v; want the latest holder %s", name, got.ID, err, x.ID)
		}
	}
	up := tokencache.Token{UserName: "u", ClientID: "c", AccessToken: "x2"}
	if err := p1.SaveToken(ctx, &up); err != nil || up.ID != x.ID {
		t.Errorf("upsert through the hinted process went to %q (%v); want %s", up.ID, err, x.ID)
	}
	// When x moves off the identity, a is found again.
	mustSave(t, f.store(), tokencache.Token{ID: "x", UserName: "other", ClientID: "c", AccessToken: "x3"})
	for name, s := range map[string]*redisstore.Store{"hinted process": p1, "fresh process": f.store()} {
		if got, err := s.FindToken(ctx, q); err != nil || got.ID != a.ID {
			t.Errorf("%s after x moved off: FindToken = %q, %v; want %s", name, got.ID, err, a.ID)
		}
	}
}

// Defect 7: an Expiry centuries ahead overflowed the TTL arithmetic.
func TestIntegrityFarFutureExpiry(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	f := newFixture(t, tg, rdb)
	far := time.Now().AddDate(300, 0, 0)
	tok := mustSave(t, f.store(), tokencache.Token{UserName: "u", ClientID: "c", RefreshToken: "r", AccessToken: "a", GrantToken: "g", Expiry: far})
	for _, q := range []tokencache.Token{{UserName: "u", ClientID: "c"}, {RefreshToken: "r", ClientID: "c"}, {GrantToken: "g", ClientID: "c"}, {AccessToken: "a"}} {
		if got, ok := f.find(q); !ok || got.ID != tok.ID {
			t.Errorf("FindToken(%v) with an Expiry 300 years ahead = %q, %v", q, got.ID, ok)
		}
	}
	if ttl, err := rdb.PTTL(ctx, f.store().HashKey(tok.ID)).Result(); err != nil || (ttl < 50*365*24*time.Hour && ttl != -1) {
		t.Errorf("hash TTL = %v, %v; want none or decades", ttl, err)
	}
}

// clusterError is what a Cluster node answers while a slot migrates.
type clusterError string

func (e clusterError) Error() string { return string(e) }
func (clusterError) RedisError()     {}

// failScriptOnHash fails the first script sent for a token hash with a
// migration error, as a Cluster node does while the slot moves.
type failScriptOnHash struct {
	ns     string
	failed atomic.Bool
}

func (h *failScriptOnHash) hit(cmd redis.Cmder) bool {
	args := cmd.Args()
	name := strings.ToLower(fmt.Sprint(args[0]))
	if (name == "evalsha" || name == "eval") && len(args) > 3 && strings.HasPrefix(fmt.Sprint(args[3]), h.ns+":t:{") {
		return h.failed.CompareAndSwap(false, true)
	}
	return false
}

func (h *failScriptOnHash) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *failScriptOnHash) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.hit(cmd) {
			err := clusterError("ERR Error running script (call to f_x): @user_script:1: Script attempted to access a non local key in a cluster node")
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}
func (h *failScriptOnHash) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// Defect 8: a save during a slot migration failed with "non local key" and
// nothing retried it.
func TestIntegritySlotMigrationIsRetried(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	f := newFixture(t, tg, rdb)
	orig := mustSave(t, f.store(), tokencache.Token{UserName: "u", ClientID: "c", AccessToken: "a1"})
	hook := &failScriptOnHash{ns: f.ns}
	tok := tokencache.Token{ID: orig.ID, UserName: "u", ClientID: "c", AccessToken: "a2"}
	if err := f.hooked(hook).SaveToken(ctx, &tok); err != nil {
		t.Fatalf("SaveToken during a slot migration = %v", err)
	}
	if !hook.failed.Load() {
		t.Fatalf("the migration error was never injected")
	}
	if got, ok := f.find(tokencache.Token{AccessToken: "a2"}); !ok || got.ID != orig.ID {
		t.Fatalf("after the retried save FindToken = %q, %v", got.ID, ok)
	}
}

// Defect 9: an upsert of a user racing another process's delete of the
// user's token and a new login left two tokens for the user.
func TestIntegrityUpsertRacingDeleteAndLogin(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	eachPoint(t, func(t *testing.T, n int64) bool {
		f := newFixture(t, tg, rdb)
		orig := mustSave(t, f.store(), tokencache.Token{UserName: "u", ClientID: "c", AccessToken: "a1"})
		hook := &beforeCommand{n: n, fn: func() {
			other := f.store()
			if err := other.DeleteToken(ctx, orig.ID); err != nil {
				t.Errorf("DeleteToken = %v", err)
			}
			mustSave(t, other, tokencache.Token{UserName: "u", ClientID: "c", AccessToken: "login"})
		}}
		up := tokencache.Token{UserName: "u", ClientID: "c", AccessToken: "upsert"}
		if err := f.hooked(hook).SaveToken(ctx, &up); err != nil {
			t.Fatalf("point %d: upsert = %v", n, err)
		}
		if toks := f.all(); len(toks) != 1 {
			t.Fatalf("point %d: %d tokens for one user after an upsert raced a delete and a login, want 1", n, len(toks))
		}
		return !hook.ran.Load()
	})
}

// An interrupted save of one of two holders of a value changes the answer
// only if it committed: the most recently saved holder wins, as in memstore.
func TestIntegrityInterruptedSaveKeepsTieBreak(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	eachPoint(t, func(t *testing.T, n int64) bool {
		f := newFixture(t, tg, rdb)
		s := f.store()
		a := mustSave(t, s, tokencache.Token{ID: "a", UserName: "u", ClientID: "c", AccessToken: "a1"})
		b := mustSave(t, s, tokencache.Token{ID: "b", UserName: "u", ClientID: "c", AccessToken: "b1"})
		up := tokencache.Token{ID: a.ID, UserName: "u", ClientID: "c", AccessToken: "a2"}
		err := f.hooked(&faultAfter{limit: n}).SaveToken(ctx, &up)
		cur, ferr := s.FindTokenByID(ctx, a.ID)
		if ferr != nil {
			t.Fatal(ferr)
		}
		want := b.ID
		if cur.AccessToken == "a2" {
			want = a.ID // the save committed: a is the latest
		}
		for name, st := range map[string]*redisstore.Store{"hinted": s, "fresh": f.store(redisstore.WithHintCacheSize(0))} {
			if got, err := st.FindToken(ctx, tokencache.Token{UserName: "u", ClientID: "c"}); err != nil || got.ID != want {
				t.Fatalf("point %d, %s process: FindToken = %q, %v; want %s (a holds %s)", n, name, got.ID, err, want, cur.AccessToken)
			}
		}
		return err == nil
	})
}
