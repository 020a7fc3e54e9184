package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/redisstore"
)

var ctx = context.Background()

// newStore returns a store in a fresh namespace of the test's Redis, and
// deletes its tokens when the test ends.
func newStore(t *testing.T, rdb redis.UniversalClient, opts ...redisstore.Option) *redisstore.Store {
	t.Helper()
	ns := redistest.Namespace(t)
	redistest.DropNamespaceAtCleanup(t, rdb, ns)
	s := redisstore.New(rdb, append([]redisstore.Option{redisstore.WithNamespace(ns)}, opts...)...)
	t.Cleanup(func() { _ = s.DeleteTokens(context.Background()) })
	return s
}

func mustSave(t *testing.T, s tokencache.Store, tok tokencache.Token) tokencache.Token {
	t.Helper()
	if err := s.SaveToken(ctx, &tok); err != nil {
		t.Fatalf("SaveToken = %v", err)
	}
	return tok
}

// secretToken has values that must never show up in a key name.
func secretToken() tokencache.Token {
	return tokencache.Token{
		UserName:     "alice.private@example.com",
		ClientID:     "1000.CLIENTIDVALUE",
		ClientSecret: "CLIENTSECRETVALUE",
		RefreshToken: "1000.REFRESHTOKENVALUE.0123456789012345678901234567890123456789012345",
		AccessToken:  "1000.ACCESSTOKENVALUE.01234567890123456789012345678901234567890123456",
		GrantToken:   "1000.GRANTTOKENVALUE",
		Expiry:       time.Now().Add(time.Hour).Truncate(time.Millisecond),
		RedirectURL:  "https://app.example.com/cb",
		APIDomain:    "https://www.zohoapis.com",
	}
}

func TestKeyLayout(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	s := newStore(t, rdb)
	tok := mustSave(t, s, secretToken())

	keys := redistest.Keys(t, rdb, s.Namespace())
	kinds := map[string]int{}
	for _, k := range keys {
		if !strings.HasPrefix(k, s.Namespace()+":") {
			t.Errorf("key %q does not start with the namespace", k)
		}
		for _, v := range []string{"alice", "CLIENTSECRET", "REFRESHTOKEN", "ACCESSTOKEN", "GRANTTOKEN", "CLIENTIDVALUE"} {
			if strings.Contains(k, v) {
				t.Errorf("key %q contains %q", k, v)
			}
		}
		kinds[strings.SplitN(strings.TrimPrefix(k, s.Namespace()+":"), ":", 2)[0]]++
	}
	want := map[string]int{"t": 1, "ids": 1, "u": 1, "g": 1, "r": 1, "a": 1, "layout": 1}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("keys by kind = %v, want %v (keys %q)", kinds, want, keys)
	}
	hashKey := s.Namespace() + ":t:{" + tok.ID + "}"
	if got := s.HashKey(tok.ID); got != hashKey {
		t.Errorf("HashKey = %q, want %q", got, hashKey)
	}
	n, err := rdb.Exists(ctx, hashKey).Result()
	if err != nil || n != 1 {
		t.Errorf("hash %s: exists=%d err=%v", hashKey, n, err)
	}
	if tg.Kind != redistest.Mini { // miniredis has no OBJECT ENCODING
		enc, err := rdb.ObjectEncoding(ctx, hashKey).Result()
		if err != nil || enc != "listpack" {
			t.Errorf("OBJECT ENCODING of a token with 70-character tokens = %q, %v; want listpack", enc, err)
		}
	}
	if tg.Kind == redistest.Cluster {
		hashSlot, _ := rdb.ClusterKeySlot(ctx, hashKey).Result()
		lockSlot, _ := rdb.ClusterKeySlot(ctx, s.Namespace()+":lock:{"+tok.ID+"}").Result()
		if hashSlot != lockSlot {
			t.Errorf("hash slot %d, lock slot %d: want equal", hashSlot, lockSlot)
		}
	}
}

// within fails t unless got is within tolerance of want.
func within(t *testing.T, what string, got, want time.Duration) {
	t.Helper()
	const tolerance = 10 * time.Second
	if d := got - want; d < -tolerance || d > tolerance {
		t.Errorf("%s: TTL %v, want about %v", what, got, want)
	}
}

func TestTTLs(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	const day = 24 * time.Hour
	ttl := func(key string) time.Duration {
		t.Helper()
		d, err := rdb.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatalf("PTTL %s: %v", key, err)
		}
		return d
	}
	now := time.Now()
	tests := []struct {
		name                 string
		opts                 []redisstore.Option
		tok                  tokencache.Token
		hash, access, others time.Duration // -1: no TTL; -2: no key
	}{
		{"no refresh token", nil,
			tokencache.Token{UserName: "u", AccessToken: "a", Expiry: now.Add(time.Hour)},
			time.Hour, time.Hour, time.Hour},
		{"refresh token, default retention", nil,
			tokencache.Token{UserName: "u", AccessToken: "a", RefreshToken: "r", Expiry: now.Add(time.Hour)},
			time.Hour + 90*day, time.Hour, time.Hour + 90*day},
		{"refresh token, 2h retention", []redisstore.Option{redisstore.WithRefreshRetention(2 * time.Hour)},
			tokencache.Token{UserName: "u", AccessToken: "a", RefreshToken: "r", Expiry: now.Add(time.Hour)},
			3 * time.Hour, time.Hour, 3 * time.Hour},
		{"refresh token, retention 0 keeps it", []redisstore.Option{redisstore.WithRefreshRetention(0)},
			tokencache.Token{UserName: "u", AccessToken: "a", RefreshToken: "r", Expiry: now.Add(time.Hour)},
			-1, time.Hour, -1},
		{"expired access token with refresh token", nil,
			tokencache.Token{UserName: "u", AccessToken: "a", RefreshToken: "r", Expiry: now.Add(-time.Hour)},
			90 * day, -2, 90 * day},
		{"no expiry", nil,
			tokencache.Token{UserName: "u", AccessToken: "a"},
			-1, -1, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, rdb, tc.opts...)
			tok := mustSave(t, s, tc.tok)
			check := func(what string, got, want time.Duration) {
				switch want {
				case -1, -2:
					if got != want {
						t.Errorf("%s: PTTL %v, want %v", what, got, want)
					}
				default:
					within(t, what, got, want)
				}
			}
			check("hash", ttl(s.HashKey(tok.ID)), tc.hash)
			check("access index", indexTTL(t, s, tokencache.RuleAccessToken, tok), tc.access)
			check("user index", indexTTL(t, s, tokencache.RuleUserName, tok), tc.others)
			if tok.RefreshToken != "" {
				check("refresh index", indexTTL(t, s, tokencache.RuleRefreshToken, tok), tc.others)
			}
		})
	}
}

// indexTTL is the TTL of the longest-lived member of an index entry (-2:
// none, -1: forever).
func indexTTL(t *testing.T, s *redisstore.Store, rule tokencache.Rule, tok tokencache.Token) time.Duration {
	t.Helper()
	d, err := redisstore.IndexTTL(ctx, s, rule, tok)
	if err != nil {
		t.Fatalf("index TTL: %v", err)
	}
	return d
}

// TestExpiryInRedis moves miniredis's clock: the hashes themselves expire,
// and so do index members, which the next write to their bucket removes
// (all entries of a kind share one bucket here).
func TestExpiryInRedis(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	s := redisstore.New(rdb, redisstore.WithRefreshRetention(24*time.Hour), redisstore.WithBucketBits(0))
	start := time.Now()
	short := mustSave(t, s, tokencache.Token{UserName: "short", AccessToken: "a1", Expiry: start.Add(time.Hour)})
	long := mustSave(t, s, tokencache.Token{UserName: "long", AccessToken: "a2", RefreshToken: "r2", Expiry: start.Add(time.Hour)})

	later := time.Hour + time.Minute
	mr.FastForward(later)
	mr.SetTime(start.Add(later))
	if mr.Exists(s.HashKey(short.ID)) {
		t.Errorf("hash outlived the access token")
	}
	// A write to the user and access buckets prunes what expired there.
	mustSave(t, s, tokencache.Token{UserName: "other", AccessToken: "a3", Expiry: start.Add(2 * time.Hour)})
	for _, c := range []struct {
		what string
		rule tokencache.Rule
		tok  tokencache.Token
		kept bool
	}{
		{"user entry of the access-only token", tokencache.RuleUserName, short, false},
		{"access entry of the access-only token", tokencache.RuleAccessToken, short, false},
		{"access entry of the token with a refresh token", tokencache.RuleAccessToken, long, false},
		{"user entry of the token with a refresh token", tokencache.RuleUserName, long, true},
		{"refresh entry", tokencache.RuleRefreshToken, long, true},
	} {
		if got := indexTTL(t, s, c.rule, c.tok) != -2; got != c.kept {
			t.Errorf("%s: present = %v, want %v", c.what, got, c.kept)
		}
	}
	if !mr.Exists(s.HashKey(long.ID)) {
		t.Errorf("hash of a token with a refresh token expired with its access token")
	}
	mr.FastForward(24 * time.Hour)
	if mr.Exists(s.HashKey(long.ID)) {
		t.Errorf("hash outlived expiry plus retention")
	}
}

func TestIndexKeyHMAC(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	ns := redistest.Namespace(t)
	redistest.DropNamespaceAtCleanup(t, rdb, ns)
	plain := redisstore.New(rdb, redisstore.WithNamespace(ns))
	keyed := redisstore.New(rdb, redisstore.WithNamespace(ns), redisstore.WithIndexKey([]byte("k1-0123456789abcdef0123456789abcd")))
	keyed2 := redisstore.New(rdb, redisstore.WithNamespace(ns), redisstore.WithIndexKey([]byte("k1-0123456789abcdef0123456789abcd")))
	other := redisstore.New(rdb, redisstore.WithNamespace(ns), redisstore.WithIndexKey([]byte("k2-0123456789abcdef0123456789abcd")))
	t.Cleanup(func() { _ = plain.DeleteTokens(ctx) })

	tok := mustSave(t, keyed, secretToken())
	q := tokencache.Token{UserName: tok.UserName, ClientID: tok.ClientID}
	if got, err := keyed2.FindToken(ctx, q); err != nil || got.ID != tok.ID {
		t.Errorf("same index key: FindToken = %v, %v", got.ID, err)
	}
	for name, s := range map[string]*redisstore.Store{"no key": plain, "other key": other} {
		if _, err := s.FindToken(ctx, q); !errors.Is(err, tokencache.ErrNotFound) {
			t.Errorf("%s: FindToken by user = %v, want ErrNotFound", name, err)
		}
		if got, err := s.FindTokenByID(ctx, tok.ID); err != nil || got.ID != tok.ID {
			t.Errorf("%s: FindTokenByID = %v, %v", name, got.ID, err)
		}
	}
	pk, pf := redisstore.IndexEntry(plain, tokencache.RuleUserName, tok)
	kk, kf := redisstore.IndexEntry(keyed, tokencache.RuleUserName, tok)
	if pk+pf == kk+kf {
		t.Errorf("HMAC index key equals the plain SHA-256 one")
	}
}

func TestDeleteTokensKeepsOtherNamespaces(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	a := newStore(t, rdb)
	b := newStore(t, rdb)
	// A namespace that a's extends, and keys of nobody's.
	c := redisstore.New(rdb, redisstore.WithNamespace(a.Namespace()+"x"))
	t.Cleanup(func() { _ = c.DeleteTokens(ctx) })
	unrelated := []string{a.Namespace(), "unrelated:" + a.Namespace(), a.Namespace() + "-other:key"}
	for _, k := range unrelated {
		if err := rdb.Set(ctx, k, "keep", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rdb.Del(context.Background(), k) })
	}
	var bTokens, cTokens []tokencache.Token
	for i := range 20 {
		tok := secretToken()
		tok.UserName = fmt.Sprint("user-", i)
		mustSave(t, a, tok)
		bTokens = append(bTokens, mustSave(t, b, tok))
		cTokens = append(cTokens, mustSave(t, c, tok))
	}
	if err := a.DeleteTokens(ctx); err != nil {
		t.Fatal(err)
	}
	// Only the layout marker stays, which says what the namespace's index
	// entries look like.
	if left := slices.DeleteFunc(redistest.Keys(t, rdb, a.Namespace()+":"), func(k string) bool { return k == redisstore.LayoutKey(a) }); len(left) != 0 {
		t.Errorf("DeleteTokens left keys %q", left)
	}
	for _, s := range []struct {
		store *redisstore.Store
		toks  []tokencache.Token
	}{{b, bTokens}, {c, cTokens}} {
		got, err := s.store.GetTokens(ctx)
		if err != nil || len(got) != len(s.toks) {
			t.Errorf("namespace %s after another's DeleteTokens: %d tokens, %v", s.store.Namespace(), len(got), err)
		}
		for _, tok := range s.toks {
			if _, err := s.store.FindToken(ctx, tokencache.Token{AccessToken: tok.AccessToken}); err != nil {
				t.Errorf("namespace %s lost token %s: %v", s.store.Namespace(), tok.ID, err)
			}
		}
	}
	for _, k := range unrelated {
		if v, err := rdb.Get(ctx, k).Result(); v != "keep" {
			t.Errorf("unrelated key %s = %q, %v", k, v, err)
		}
	}
}

func TestGetTokensDropsIDsOfExpiredHashes(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	s := newStore(t, rdb)
	var toks []tokencache.Token
	for i := range 3 {
		tok := secretToken()
		tok.UserName = fmt.Sprint("u", i)
		toks = append(toks, mustSave(t, s, tok))
	}
	// What Redis does when a hash's TTL runs out.
	if err := rdb.Del(ctx, s.HashKey(toks[1].ID)).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetTokens(ctx)
	if err != nil || len(got) != 2 {
		t.Fatalf("GetTokens = %d tokens, %v; want 2", len(got), err)
	}
	if in, err := redisstore.InIDSet(ctx, s, toks[1].ID); err != nil || in {
		t.Errorf("ID of the expired hash still in the set: %v, %v", in, err)
	}
	if in, _ := redisstore.InIDSet(ctx, s, toks[0].ID); !in {
		t.Errorf("ID of a live token dropped from the set")
	}
}

func TestStaleIndexIsIgnoredAndCleaned(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	s := newStore(t, rdb, redisstore.WithHintCacheSize(0))
	alice := mustSave(t, s, tokencache.Token{UserName: "alice", ClientID: "c", AccessToken: "alice-access", RefreshToken: "alice-refresh"})
	aliceMember, err := redisstore.IndexMember(ctx, s, alice.ID, alice.Version)
	if err != nil {
		t.Fatal(err)
	}
	old := float64(time.Now().Add(-time.Minute).UnixMilli())

	tests := []struct {
		name   string
		query  tokencache.Token
		member string // what the planted entry holds
	}{
		{"entry names a token that does not hold the value", tokencache.Token{UserName: "mallory", ClientID: "c"}, aliceMember},
		{"entry names a missing token", tokencache.Token{UserName: "bob", ClientID: "c"}, "nosuchtoken:abc:2"},
		{"entry names an insert that never committed", tokencache.Token{UserName: "carol", ClientID: "c"}, "nosuchtoken:abc:1"},
		{"malformed entry", tokencache.Token{AccessToken: "bob-access"}, "garbage"},
		{"entry of another client's user", tokencache.Token{UserName: "alice", ClientID: "other"}, aliceMember},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rule := tokencache.RuleOf(tc.query)
			if err := redisstore.PlantIndexMember(ctx, s, rule, tc.query, tc.member, old); err != nil {
				t.Fatal(err)
			}
			if got, err := s.FindToken(ctx, tc.query); !errors.Is(err, tokencache.ErrNotFound) {
				t.Fatalf("FindToken through a stale entry = %s, %v; want ErrNotFound", got.ID, err)
			}
			if members, _ := redisstore.IndexMembers(ctx, s, rule, tc.query); slices.ContainsFunc(members, func(z redis.Z) bool { return z.Member == tc.member }) {
				t.Errorf("stale entry %s was not cleaned", tc.member)
			}
			// Saving the identity makes a new token and leaves alice alone.
			saved := tc.query
			saved.AccessToken = "new-" + tc.name
			saved = mustSave(t, s, saved)
			if saved.ID == alice.ID {
				t.Fatalf("save through a stale entry overwrote alice")
			}
			if got, err := s.FindTokenByID(ctx, alice.ID); err != nil || got.AccessToken != "alice-access" || got.Version != 1 {
				t.Errorf("alice after the save = %v, %v", got, err)
			}
		})
	}

	// An entry of a later revision of alice's incarnation whose value she
	// still holds is valid: entries are checked by value, the revision only
	// says whether a claim may still commit.
	later, _ := redisstore.IndexMember(ctx, s, alice.ID, 9)
	if err := redisstore.PlantIndexMember(ctx, s, tokencache.RuleUserName, alice, later, float64(time.Now().UnixMilli()+1000)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FindToken(ctx, tokencache.Token{UserName: "alice", ClientID: "c"}); err != nil || got.ID != alice.ID {
		t.Errorf("entry with a newer revision that still holds: %v, %v", got.ID, err)
	}
}

func TestCorruptHashIsAnErrorNotNotFound(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	s := newStore(t, rdb)
	tok := mustSave(t, s, secretToken())
	if err := rdb.HSet(ctx, s.HashKey(tok.ID), "v", "not-a-number").Err(); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"FindTokenByID": second(s.FindTokenByID(ctx, tok.ID)),
		"FindToken":     second(s.FindToken(ctx, tokencache.Token{AccessToken: tok.AccessToken})),
		"GetTokens":     second(s.GetTokens(ctx)),
	} {
		if err == nil || errors.Is(err, tokencache.ErrNotFound) {
			t.Errorf("%s of a corrupt hash = %v, want an error that is not ErrNotFound", name, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func TestBadOptions(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { _ = rdb.Close() })
	tests := map[string]*redisstore.Store{
		"empty namespace":    redisstore.New(rdb, redisstore.WithNamespace("")),
		"brace in namespace": redisstore.New(rdb, redisstore.WithNamespace("a{b}")),
		"space in namespace": redisstore.New(rdb, redisstore.WithNamespace("a b")),
		"negative retention": redisstore.New(rdb, redisstore.WithRefreshRetention(-time.Second)),
		"empty index key":    redisstore.New(rdb, redisstore.WithIndexKey(nil)),
		"negative hints":     redisstore.New(rdb, redisstore.WithHintCacheSize(-1)),
		"nil client":         redisstore.New(nil),
	}
	for name, s := range tests {
		tok := secretToken()
		for op, err := range map[string]error{
			"FindToken":     second(s.FindToken(ctx, tokencache.Token{AccessToken: "a"})),
			"FindTokenByID": second(s.FindTokenByID(ctx, "abc")),
			"SaveToken":     s.SaveToken(ctx, &tok),
			"DeleteToken":   s.DeleteToken(ctx, "abc"),
			"GetTokens":     second(s.GetTokens(ctx)),
			"DeleteTokens":  s.DeleteTokens(ctx),
		} {
			if !errors.Is(err, redisstore.ErrBadOption) {
				t.Errorf("%s: %s = %v, want ErrBadOption", name, op, err)
			}
		}
	}
}

// commandCounter is a go-redis hook that counts commands sent.
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}
func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

func TestHintsMakeLookupsOneRoundTrip(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	if err := rdb.Ping(ctx).Err(); err != nil { // dial now: a new connection sends handshake commands
		t.Fatal(err)
	}
	counter := &commandCounter{}
	rdb.AddHook(counter)
	s := newStore(t, rdb)
	writer := redisstore.New(tg.Client(t), redisstore.WithNamespace(s.Namespace())) // another process
	tok := mustSave(t, writer, secretToken())
	q := tokencache.Token{UserName: tok.UserName, ClientID: tok.ClientID}

	count := func() int64 {
		t.Helper()
		before := counter.n.Load()
		got, err := s.FindToken(ctx, q)
		if err != nil {
			t.Fatalf("FindToken = %v", err)
		}
		if got.UserName != tok.UserName {
			t.Fatalf("FindToken found user %q", got.UserName)
		}
		return counter.n.Load() - before
	}
	if n := count(); n != 2 {
		t.Errorf("first lookup sent %d commands, want 2 (index, hash)", n)
	}
	if n := count(); n != 1 {
		t.Errorf("hinted lookup sent %d commands, want 1 (hash)", n)
	}
	// Another process replaces the user's token: the hint is stale, and the
	// lookup must still find the new one.
	if err := writer.DeleteToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	replacement := mustSave(t, writer, secretToken())
	got, err := s.FindToken(ctx, q)
	if err != nil || got.ID != replacement.ID {
		t.Errorf("lookup after the token was replaced = %v, %v; want %s", got.ID, err, replacement.ID)
	}
}

// errInjected is the failure faultAfter injects.
var errInjected = errors.New("injected failure")

// faultAfter lets the first limit commands through and fails every later
// one, as if the process died or lost Redis at that point. A pipeline that
// crosses the limit sends only its first commands.
type faultAfter struct {
	limit int64
	sent  atomic.Int64
}

func (f *faultAfter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (f *faultAfter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if f.sent.Add(1) > f.limit {
			cmd.SetErr(errInjected)
			return errInjected
		}
		return next(ctx, cmd)
	}
}
func (f *faultAfter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		allowed := max(0, min(int64(len(cmds)), f.limit-f.sent.Load()))
		f.sent.Add(int64(len(cmds)))
		for _, cmd := range cmds[allowed:] {
			cmd.SetErr(errInjected)
		}
		if allowed > 0 {
			if err := next(ctx, cmds[:allowed]); err != nil {
				return err
			}
		}
		if allowed < int64(len(cmds)) {
			return errInjected
		}
		return nil
	}
}

// TestInterruptedWrites fails a save after each number of commands in turn
// and checks that no lookup ever returns a token the query does not match,
// and that saving again repairs everything without duplicates.
func TestInterruptedWrites(t *testing.T) {
	tg := redistest.New(t)
	healthyClient := tg.Client(t)
	scenarios := []struct {
		name   string
		before []tokencache.Token // saved first, by a healthy store
		save   tokencache.Token   // saved by the failing store
		probes []tokencache.Token // lookups whose answers are checked
		added  int                // tokens the save adds
	}{
		{
			name:   "update that rotates every value",
			before: []tokencache.Token{{UserName: "u", ClientID: "c", GrantToken: "g0", RefreshToken: "r0", AccessToken: "a0"}},
			save:   tokencache.Token{UserName: "u", ClientID: "c", RefreshToken: "r1", AccessToken: "a1"},
			probes: []tokencache.Token{{UserName: "u", ClientID: "c"}, {GrantToken: "g0", ClientID: "c"}, {RefreshToken: "r0", ClientID: "c"}, {RefreshToken: "r1", ClientID: "c"}, {AccessToken: "a0"}, {AccessToken: "a1"}},
		},
		{
			name:   "insert",
			before: []tokencache.Token{{UserName: "other", ClientID: "c", AccessToken: "x"}},
			save:   tokencache.Token{UserName: "new", ClientID: "c", RefreshToken: "r", AccessToken: "a"},
			probes: []tokencache.Token{{UserName: "new", ClientID: "c"}, {RefreshToken: "r", ClientID: "c"}, {AccessToken: "a"}, {UserName: "other", ClientID: "c"}},
			added:  1,
		},
		{
			name:   "rename of the user",
			before: []tokencache.Token{{ID: "fixed-id", UserName: "old-name", ClientID: "c", AccessToken: "a"}},
			save:   tokencache.Token{ID: "fixed-id", UserName: "new-name", ClientID: "c", AccessToken: "a2"},
			probes: []tokencache.Token{{UserName: "old-name", ClientID: "c"}, {UserName: "new-name", ClientID: "c"}, {AccessToken: "a"}, {AccessToken: "a2"}},
		},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			for limit := int64(0); ; limit++ {
				ns := redistest.Namespace(t)
				redistest.DropNamespaceAtCleanup(t, healthyClient, ns)
				healthy := redisstore.New(healthyClient, redisstore.WithNamespace(ns), redisstore.WithHintCacheSize(0))
				for _, tok := range sc.before {
					mustSave(t, healthy, tok)
				}
				faulty := tg.Client(t)
				faulty.AddHook(&faultAfter{limit: limit})
				failing := redisstore.New(faulty, redisstore.WithNamespace(ns), redisstore.WithHintCacheSize(0))
				tok := sc.save
				err := failing.SaveToken(ctx, &tok)
				if err != nil && !errors.Is(err, errInjected) {
					t.Fatalf("limit %d: SaveToken = %v, want the injected failure", limit, err)
				}
				if err != nil && errors.Is(err, tokencache.ErrNotFound) {
					t.Fatalf("limit %d: a failure reported as ErrNotFound", limit)
				}
				checkAnswers := func(when string) {
					t.Helper()
					for _, q := range sc.probes {
						got, ferr := healthy.FindToken(ctx, q)
						if ferr != nil && !errors.Is(ferr, tokencache.ErrNotFound) {
							t.Fatalf("limit %d, %s: FindToken(%v) = %v", limit, when, q, ferr)
						}
						if ferr == nil && !tokencache.Matches(q, got, time.Now()) {
							t.Fatalf("limit %d, %s: FindToken(%v) returned a token it does not match: %v", limit, when, q, got)
						}
					}
				}
				checkAnswers("after the interrupted save")

				// Saving again with a healthy client completes the write.
				again := sc.save
				mustSave(t, healthy, again)
				checkAnswers("after saving again")
				for _, q := range []tokencache.Token{sc.save, {AccessToken: sc.save.AccessToken}} {
					got, ferr := healthy.FindToken(ctx, q)
					if ferr != nil || got.AccessToken != sc.save.AccessToken {
						t.Fatalf("limit %d: after saving again FindToken(%v) = %v, %v", limit, q, got, ferr)
					}
				}
				all, gerr := healthy.GetTokens(ctx)
				if gerr != nil || len(all) != len(sc.before)+sc.added {
					t.Fatalf("limit %d: GetTokens = %d tokens, %v; want %d", limit, len(all), gerr, len(sc.before)+sc.added)
				}
				_ = healthy.DeleteTokens(ctx)
				if err == nil {
					t.Logf("the save needs %d commands; every earlier interruption was checked", limit)
					return
				}
				if limit > 50 {
					t.Fatalf("the save still fails after %d commands", limit)
				}
			}
		})
	}
}

// TestRedisDown checks that an unreachable or hung Redis is an error that
// wraps its cause, never ErrNotFound, and that every call returns by the
// caller's deadline.
func TestRedisDown(t *testing.T) {
	// A server that accepts connections and never answers.
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hung.Close() })
	go func() {
		for {
			conn, err := hung.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = conn.Close() })
		}
	}()
	// A server that was there and stopped.
	stopped := miniredis.RunT(t)
	stoppedAddr := stopped.Addr()
	stopped.Close()

	for _, tc := range []struct{ name, addr string }{{"stopped", stoppedAddr}, {"hung", hung.Addr().String()}} {
		t.Run(tc.name, func(t *testing.T) {
			rdb := redis.NewClient(&redis.Options{Addr: tc.addr, ContextTimeoutEnabled: true, MaxRetries: -1})
			t.Cleanup(func() { _ = rdb.Close() })
			s := redisstore.New(rdb)
			tok := secretToken()
			const deadline = 300 * time.Millisecond
			ops := map[string]func(context.Context) error{
				"FindToken":     func(ctx context.Context) error { return second(s.FindToken(ctx, tokencache.Token{AccessToken: "a"})) },
				"FindTokenByID": func(ctx context.Context) error { return second(s.FindTokenByID(ctx, "abc")) },
				"SaveToken":     func(ctx context.Context) error { return s.SaveToken(ctx, &tok) },
				"DeleteToken":   func(ctx context.Context) error { return s.DeleteToken(ctx, "abc") },
				"GetTokens":     func(ctx context.Context) error { return second(s.GetTokens(ctx)) },
				"DeleteTokens":  func(ctx context.Context) error { return s.DeleteTokens(ctx) },
			}
			for name, op := range ops {
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				start := time.Now()
				err := op(ctx)
				took := time.Since(start)
				cancel()
				if err == nil || errors.Is(err, tokencache.ErrNotFound) {
					t.Errorf("%s = %v, want an error that is not ErrNotFound", name, err)
				}
				var netErr net.Error
				if !errors.As(err, &netErr) && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("%s = %v, want it to wrap the network error or the deadline", name, err)
				}
				if took > deadline+500*time.Millisecond {
					t.Errorf("%s took %v with a %v deadline", name, took, deadline)
				}
				if strings.Contains(fmt.Sprint(err), tok.AccessToken) {
					t.Errorf("%s error quotes the access token", name)
				}
			}
		})
	}
}

func TestSaveTokenIfLocked(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	s := newStore(t, rdb)
	tok := mustSave(t, s, secretToken())
	lockKey := s.Namespace() + ":lock:{" + tok.ID + "}"
	if err := rdb.Set(ctx, lockKey, "holder-1", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Del(context.Background(), lockKey) })

	tok.AccessToken = "renewed-by-holder-1"
	if err := s.SaveTokenIfLocked(ctx, &tok, lockKey, "holder-1"); err != nil {
		t.Fatalf("save while holding the lock = %v", err)
	}
	if tok.Version != 2 {
		t.Errorf("Version after the fenced save = %d, want 2", tok.Version)
	}

	// The lock passes to holder 2: holder 1 can no longer commit.
	if err := rdb.Set(ctx, lockKey, "holder-2", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	late := tok
	late.AccessToken = "late-write-of-holder-1"
	if err := s.SaveTokenIfLocked(ctx, &late, lockKey, "holder-1"); !errors.Is(err, tokencache.ErrConflict) {
		t.Errorf("save after losing the lock = %v, want ErrConflict", err)
	}
	// And with the lock gone altogether.
	if err := rdb.Del(ctx, lockKey).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveTokenIfLocked(ctx, &late, lockKey, "holder-1"); !errors.Is(err, tokencache.ErrConflict) {
		t.Errorf("save after the lock expired = %v, want ErrConflict", err)
	}
	got, err := s.FindTokenByID(ctx, tok.ID)
	if err != nil || got.AccessToken != "renewed-by-holder-1" || got.Version != 2 {
		t.Errorf("stored after refused saves = %v, %v", got, err)
	}
	if _, err := s.FindToken(ctx, tokencache.Token{AccessToken: "late-write-of-holder-1"}); !errors.Is(err, tokencache.ErrNotFound) {
		t.Errorf("the refused value is findable: %v", err)
	}

	for name, tc := range map[string]struct {
		tok       tokencache.Token
		key, lock string
	}{
		"no ID":                  {tokencache.Token{AccessToken: "a"}, lockKey, "x"},
		"lock key of another ID": {tok, s.Namespace() + ":lock:{other}", "x"},
		"empty lock token":       {tok, lockKey, ""},
	} {
		if err := s.SaveTokenIfLocked(ctx, &tc.tok, tc.key, tc.lock); !errors.Is(err, tokencache.ErrInvalidToken) {
			t.Errorf("%s: SaveTokenIfLocked = %v, want ErrInvalidToken", name, err)
		}
	}
}

// TestManyTokens saves more tokens than one batch, so that GetTokens and
// DeleteTokens must walk several SSCAN pages, with expired tokens among them.
func TestManyTokens(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	s := newStore(t, rdb)
	const n = 1234
	toks := make([]tokencache.Token, n)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				tok := secretToken()
				tok.UserName = fmt.Sprint("many-", i)
				tok.AccessToken = fmt.Sprint("access-many-", i)
				// Distinct secrets, as real tokens have: a value shared by
				// all of them would make every index write O(tokens).
				tok.RefreshToken = fmt.Sprint("refresh-many-", i)
				tok.GrantToken = fmt.Sprint("grant-many-", i)
				if err := s.SaveToken(ctx, &tok); err != nil {
					t.Error(err)
					return
				}
				toks[i] = tok
			}
		})
	}
	wg.Wait()
	// Every tenth token's hash expires.
	for i := 0; i < n; i += 10 {
		if err := rdb.Del(ctx, s.HashKey(toks[i].ID)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.GetTokens(ctx)
	if want := n - (n+9)/10; err != nil || len(got) != want {
		t.Fatalf("GetTokens = %d tokens, %v; want %d", len(got), err, want)
	}
	if members, _ := rdb.SCard(ctx, redisstore.IDsKey(s)).Result(); members != int64(len(got)) {
		t.Errorf("set of IDs has %d members after clean-up, want %d", members, len(got))
	}
	if err := s.DeleteTokens(ctx); err != nil {
		t.Fatal(err)
	}
	if left := redistest.Keys(t, rdb, s.Namespace()+":"); len(left) > 0 {
		// Index entries of the tokens whose hash vanished under them are
		// unreachable (they expire with their TTL); nothing else may remain.
		for _, k := range left {
			if strings.Contains(k, ":t:") || strings.HasSuffix(k, ":ids") {
				t.Errorf("DeleteTokens left %s", k)
			}
		}
		// Per vanished token: its four index entries and its abort set,
		// which fences a member that looked like an insert in flight; and
		// the layout marker.
		if len(left) > 5*((n+9)/10)+1 {
			kinds := map[string]int{}
			for _, k := range left {
				kinds[strings.SplitN(strings.TrimPrefix(k, s.Namespace()+":"), ":", 2)[0]]++
			}
			t.Errorf("DeleteTokens left %d keys: %v", len(left), kinds)
		}
	}
}

// TestScriptsLostByRedis flushes Redis's script cache, as a restart or a
// failover does, between saves: pipelines reload the scripts and go on.
func TestScriptsLostByRedis(t *testing.T) {
	tg := redistest.New(t)
	if tg.Kind != redistest.Mini {
		t.Skip("flushing the script cache of a shared server would disturb other tests")
	}
	rdb := tg.Client(t)
	s := newStore(t, rdb)
	tok := mustSave(t, s, secretToken())
	for i := range 3 {
		if err := rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		tok.AccessToken = fmt.Sprint("after-flush-", i)
		tok = mustSave(t, s, tok)
		if got, err := s.FindToken(ctx, tokencache.Token{AccessToken: tok.AccessToken}); err != nil || got.ID != tok.ID {
			t.Fatalf("after a script flush: %v, %v", got.ID, err)
		}
		if err := rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteToken(ctx, tok.ID); err != nil {
			t.Fatalf("DeleteToken after a script flush: %v", err)
		}
		tok.Version = 0 // it is gone: insert it again under its ID
		tok = mustSave(t, s, tok)
	}
}
