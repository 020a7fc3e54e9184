package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/redisstore"
)

var indexRules = []tokencache.Rule{tokencache.RuleUserName, tokencache.RuleGrantToken, tokencache.RuleRefreshToken, tokencache.RuleAccessToken}

// queriesOf returns a query for each rule tok has a value for.
func queriesOf(tok tokencache.Token) map[tokencache.Rule]tokencache.Token {
	q := map[tokencache.Rule]tokencache.Token{}
	if tok.UserName != "" {
		q[tokencache.RuleUserName] = tokencache.Token{UserName: tok.UserName, ClientID: tok.ClientID}
	}
	if tok.GrantToken != "" {
		q[tokencache.RuleGrantToken] = tokencache.Token{GrantToken: tok.GrantToken, ClientID: tok.ClientID}
	}
	if tok.RefreshToken != "" {
		q[tokencache.RuleRefreshToken] = tokencache.Token{RefreshToken: tok.RefreshToken, ClientID: tok.ClientID}
	}
	if tok.AccessToken != "" {
		q[tokencache.RuleAccessToken] = tokencache.Token{AccessToken: tok.AccessToken}
	}
	return q
}

// checkLayout fails t unless every value of tok has its entry in a bucket
// (bucket) or not, and its legacy key exists (legacy) or not.
func checkLayout(t *testing.T, rdb redis.UniversalClient, s *redisstore.Store, tok tokencache.Token, bucket, legacy bool) {
	t.Helper()
	for rule := range queriesOf(tok) {
		members, err := redisstore.IndexMembers(ctx, s, rule, tok)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(members) > 0; got != bucket {
			t.Errorf("%s: bucket entry present = %v, want %v", rule, got, bucket)
		}
		n, err := rdb.Exists(ctx, redisstore.LegacyIndexKey(s, rule, tok)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := n > 0; got != legacy {
			t.Errorf("%s: legacy key present = %v, want %v", rule, got, legacy)
		}
	}
}

func findAll(t *testing.T, s *redisstore.Store, tok tokencache.Token) {
	t.Helper()
	for rule, q := range queriesOf(tok) {
		if got, err := s.FindToken(ctx, q); err != nil || got.ID != tok.ID {
			t.Errorf("FindToken by %s = %q, %v; want %q", rule, got.ID, err, tok.ID)
		}
	}
}

// TestLegacySortedSetEntries: a store upgraded in place holds its index in
// the sorted sets of the previous layout. Every token is still found by
// every rule, a lookup moves the token's entries into the buckets, a
// rule-based save updates the token instead of making a second one, and
// Reindex moves everything and writes the layout marker.
func TestLegacySortedSetEntries(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	s := newStore(t, rdb, redisstore.WithHintCacheSize(0))
	fresh := func() *redisstore.Store {
		return redisstore.New(rdb, redisstore.WithNamespace(s.Namespace()), redisstore.WithHintCacheSize(0))
	}
	var toks []tokencache.Token
	for i := range 3 {
		tok := mustSave(t, s, tokencache.Token{UserName: fmt.Sprint("legacy-", i), ClientID: "c",
			AccessToken: fmt.Sprint("la-", i), RefreshToken: fmt.Sprint("lr-", i), GrantToken: fmt.Sprint("lg-", i)})
		if err := redisstore.ToLegacyLayout(ctx, s, tok); err != nil {
			t.Fatal(err)
		}
		checkLayout(t, rdb, s, tok, false, true)
		toks = append(toks, tok)
	}

	// Found by every rule; the first lookup moves the entries.
	findAll(t, fresh(), toks[0])
	checkLayout(t, rdb, s, toks[0], true, false)
	findAll(t, fresh(), toks[0])

	// An upsert by user name finds the legacy token and updates it.
	up := tokencache.Token{UserName: toks[1].UserName, ClientID: "c", AccessToken: "la-1-new", RefreshToken: toks[1].RefreshToken}
	if err := fresh().SaveToken(ctx, &up); err != nil {
		t.Fatal(err)
	}
	if up.ID != toks[1].ID {
		t.Fatalf("upsert of a legacy-indexed user made token %s, want %s", up.ID, toks[1].ID)
	}
	all, err := s.GetTokens(ctx)
	if err != nil || len(all) != 3 {
		t.Fatalf("GetTokens = %d tokens, %v; want 3", len(all), err)
	}
	up.GrantToken = ""
	findAll(t, fresh(), up)

	// No marker yet: the namespace holds tokens of the old layout.
	if n, _ := rdb.Exists(ctx, redisstore.LayoutKey(s)).Result(); n != 0 {
		t.Fatalf("layout marker written while legacy entries exist")
	}
	moved, err := fresh().Reindex(ctx)
	if err != nil || moved != 3 {
		t.Fatalf("Reindex = %d, %v; want 3", moved, err)
	}
	checkLayout(t, rdb, s, toks[2], true, false)
	if n, _ := rdb.Exists(ctx, redisstore.LayoutKey(s)).Result(); n != 1 {
		t.Fatalf("Reindex wrote no layout marker")
	}
	findAll(t, fresh(), toks[2])
}

// TestLegacyStringEntries: the layout before sorted sets, a string
// "ID:revision" per value, hashes without an incarnation and bare IDs in
// the set, is still found and migrated.
func TestLegacyStringEntries(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	s := newStore(t, rdb, redisstore.WithHintCacheSize(0))
	tok := mustSave(t, s, tokencache.Token{UserName: "old", ClientID: "c", AccessToken: "old-a", RefreshToken: "old-r"})
	member, err := redisstore.IndexMember(ctx, s, tok.ID, tok.Version)
	if err != nil {
		t.Fatal(err)
	}
	if err := redisstore.ToLegacyLayout(ctx, s, tok); err != nil {
		t.Fatal(err)
	}
	for rule := range queriesOf(tok) {
		key := redisstore.LegacyIndexKey(s, rule, tok)
		if err := rdb.Del(ctx, key).Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.Set(ctx, key, fmt.Sprint(tok.ID, ":", tok.Version), 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.HDel(ctx, s.HashKey(tok.ID), "n").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.SRem(ctx, redisstore.IDsKey(s), member[:len(member)-len(fmt.Sprint(":", tok.Version))]).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.SAdd(ctx, redisstore.IDsKey(s), tok.ID).Err(); err != nil {
		t.Fatal(err)
	}
	fresh := redisstore.New(rdb, redisstore.WithNamespace(s.Namespace()), redisstore.WithHintCacheSize(0))
	findAll(t, fresh, tok)
	checkLayout(t, rdb, s, tok, true, false)
	findAll(t, redisstore.New(rdb, redisstore.WithNamespace(s.Namespace()), redisstore.WithHintCacheSize(0)), tok)
}

// TestLayoutMarkerOnEmptyNamespace: a namespace first used by this version
// gets the layout marker, and lookups then never read legacy keys.
func TestLayoutMarkerOnEmptyNamespace(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	s := newStore(t, rdb, redisstore.WithHintCacheSize(0))
	if _, err := s.FindToken(ctx, tokencache.Token{UserName: "nobody", ClientID: "c"}); !errors.Is(err, tokencache.ErrNotFound) {
		t.Fatalf("FindToken = %v, want ErrNotFound", err)
	}
	if n, _ := rdb.Exists(ctx, redisstore.LayoutKey(s)).Result(); n != 1 {
		t.Fatalf("no layout marker in a namespace that started empty")
	}
	// A legacy entry planted now is never read: nothing of that layout can
	// exist in this namespace.
	tok := mustSave(t, s, tokencache.Token{UserName: "u", ClientID: "c", AccessToken: "a"})
	q := tokencache.Token{UserName: "v", ClientID: "c"}
	planted := tokencache.Token{UserName: "v", ClientID: "c"}
	// Read, it would be dropped: it names a token that does not hold "v".
	stale, err := redisstore.IndexMember(ctx, s, tok.ID, tok.Version)
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.ZAdd(ctx, redisstore.LegacyIndexKey(s, tokencache.RuleUserName, planted), redis.Z{Score: 1, Member: stale}).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindToken(ctx, q); !errors.Is(err, tokencache.ErrNotFound) {
		t.Fatalf("FindToken = %v, want ErrNotFound", err)
	}
	if n, _ := rdb.Exists(ctx, redisstore.LegacyIndexKey(s, tokencache.RuleUserName, planted)).Result(); n != 1 {
		t.Errorf("a lookup read the legacy key after the marker")
	}
	rdb.Del(ctx, redisstore.LegacyIndexKey(s, tokencache.RuleUserName, planted))
}

// TestIndexMembersExpire: a bucket has no TTL of its own; each member
// carries its expiry, and the next write to the bucket removes the members
// that have expired, so entries of tokens whose hash expired by TTL do not
// accumulate.
func TestIndexMembersExpire(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	s := newStore(t, rdb, redisstore.WithBucketBits(0), redisstore.WithExpirySlack(0))
	gone := mustSave(t, s, tokencache.Token{UserName: "brief", ClientID: "c", AccessToken: "brief-a", Expiry: time.Now().Add(time.Second)})
	for rule := range queriesOf(gone) {
		if d := indexTTL(t, s, rule, gone); d < 0 || d > 3*time.Second {
			t.Fatalf("%s member TTL %v, want about 1 s", rule, d)
		}
	}
	time.Sleep(2100 * time.Millisecond)
	// The members are still there until a write to their bucket.
	if d := indexTTL(t, s, tokencache.RuleUserName, gone); d == -2 {
		t.Fatalf("member removed without a write to its bucket")
	}
	stay := mustSave(t, s, tokencache.Token{UserName: "stays", ClientID: "c", AccessToken: "stays-a", Expiry: time.Now().Add(time.Hour)})
	for rule := range queriesOf(gone) {
		if d := indexTTL(t, s, rule, gone); d != -2 {
			t.Errorf("%s member of the expired token still there (TTL %v) after a write to its bucket", rule, d)
		}
	}
	findAll(t, s, stay)
}

// TestBucketEncoding: the bucket hashes and the token hash stay in Redis's
// compact listpack encoding (every field and value at most 64 bytes, at
// most 128 fields) for typical tokens.
func TestBucketEncoding(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	s := newStore(t, rdb, redisstore.WithBucketBits(0))
	var toks []tokencache.Token
	for i := range 100 {
		toks = append(toks, mustSave(t, s, tokencache.Token{UserName: fmt.Sprint("user-", i, "@example.com"), ClientID: "1000.CLIENTIDVALUE",
			AccessToken: fmt.Sprint("1000.access.", i), RefreshToken: fmt.Sprint("1000.refresh.", i), Expiry: time.Now().Add(time.Hour)}))
	}
	for _, rule := range indexRules[2:] {
		key, _ := redisstore.IndexEntry(s, rule, toks[0])
		m, err := rdb.HGetAll(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(m) != len(toks) {
			t.Errorf("%s: bucket has %d fields, want %d", key, len(m), len(toks))
		}
		for f, v := range m {
			if len(f) > 64 || len(v) > 64 {
				t.Errorf("%s: field %q = %q: over 64 bytes, the bucket leaves listpack", key, f, v)
			}
		}
		if tg.Kind == redistest.Mini {
			continue // miniredis has no OBJECT ENCODING
		}
		for _, k := range []string{key, s.HashKey(toks[0].ID)} {
			if enc, err := rdb.ObjectEncoding(ctx, k).Result(); err != nil || enc != "listpack" {
				t.Errorf("OBJECT ENCODING %s = %q, %v; want listpack", k, enc, err)
			}
		}
	}
}

// TestBucketManyFields puts the entries of many tokens into one bucket per
// kind (more fields than listpack allows), with concurrent writers, and
// checks lookups, deletes and moves.
func TestBucketManyFields(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	s := newStore(t, rdb, redisstore.WithBucketBits(0))
	const n = 200
	toks := make([]tokencache.Token, n)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			p := redisstore.New(rdb, redisstore.WithNamespace(s.Namespace()), redisstore.WithBucketBits(0))
			for i := w; i < n; i += 4 {
				tok := tokencache.Token{UserName: fmt.Sprint("many-", i), ClientID: "c", AccessToken: fmt.Sprint("ma-", i), RefreshToken: fmt.Sprint("mr-", i)}
				if err := p.SaveToken(ctx, &tok); err != nil {
					t.Error(err)
					return
				}
				toks[i] = tok
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	key, _ := redisstore.IndexEntry(s, tokencache.RuleUserName, toks[0])
	if fields, err := rdb.HLen(ctx, key).Result(); err != nil || fields != n {
		t.Fatalf("user bucket has %d fields, %v; want %d", fields, err, n)
	}
	for i, tok := range toks {
		switch i % 3 {
		case 0:
			if err := s.DeleteToken(ctx, tok.ID); err != nil {
				t.Fatal(err)
			}
		case 1: // rotate the refresh token by user
			tok.RefreshToken += "-next"
			tok.AccessToken += "-next"
			if err := s.SaveToken(ctx, &tok); err != nil || tok.ID != toks[i].ID {
				t.Fatalf("refresh by user: %v, %s", err, tok.ID)
			}
			toks[i] = tok
		}
	}
	fresh := redisstore.New(rdb, redisstore.WithNamespace(s.Namespace()), redisstore.WithBucketBits(0), redisstore.WithHintCacheSize(0))
	for i, tok := range toks {
		if i%3 == 0 {
			for rule, q := range queriesOf(tok) {
				if _, err := fresh.FindToken(ctx, q); !errors.Is(err, tokencache.ErrNotFound) {
					t.Errorf("deleted token found by %s: %v", rule, err)
				}
			}
			continue
		}
		findAll(t, fresh, tok)
		if i%3 == 1 {
			old := tokencache.Token{RefreshToken: fmt.Sprint("mr-", i), ClientID: "c"}
			if _, err := fresh.FindToken(ctx, old); !errors.Is(err, tokencache.ErrNotFound) {
				t.Errorf("rotated-away refresh token still found: %v", err)
			}
		}
	}
	if fields, err := rdb.HLen(ctx, key).Result(); err != nil || fields != n-(n+2)/3 {
		t.Errorf("user bucket has %d fields after deletes, %v; want %d", fields, err, n-(n+2)/3)
	}
	if err := s.DeleteTokens(ctx); err != nil {
		t.Fatal(err)
	}
	if left := redistest.Keys(t, rdb, s.Namespace()+":"); len(left) != 1 || left[0] != redisstore.LayoutKey(s) {
		t.Errorf("DeleteTokens left %q, want only the layout marker", left)
	}
}

// failCommits fails every script sent for a token hash: saves claim their
// entries and then never commit.
type failCommits struct{ ns string }

func (h failCommits) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h failCommits) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		name := strings.ToLower(fmt.Sprint(args[0]))
		if (name == "evalsha" || name == "eval") && len(args) > 3 && strings.HasPrefix(fmt.Sprint(args[3]), h.ns+":t:{") {
			err := errors.New("injected: commit refused")
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}
func (h failCommits) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestFailedClaimKeepsExpiry: a save whose claim replaces the committed
// revision's member but which never commits must not shorten that member's
// life; the committed hash would otherwise outlive its entry.
func TestFailedClaimKeepsExpiry(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	f := newFixture(t, tg, rdb)
	tok := mustSave(t, f.store(), tokencache.Token{UserName: "u", ClientID: "c", AccessToken: "a1", RefreshToken: "r1", Expiry: time.Now().Add(time.Hour)})
	if d := indexTTL(t, f.store(), tokencache.RuleUserName, tok); d < 80*24*time.Hour {
		t.Fatalf("user member TTL %v, want about 90 days", d)
	}
	short := tokencache.Token{ID: tok.ID, UserName: "u", ClientID: "c", AccessToken: "a2", Expiry: time.Now().Add(time.Second)}
	if err := f.hooked(failCommits{ns: f.ns}).SaveToken(ctx, &short); err == nil {
		t.Fatalf("save with refused commits succeeded")
	}
	if d := indexTTL(t, f.store(), tokencache.RuleUserName, tok); d < 80*24*time.Hour {
		t.Errorf("after a claim that never committed the user member TTL is %v, want about 90 days", d)
	}
	if got, ok := f.find(tokencache.Token{UserName: "u", ClientID: "c"}); !ok || got.ID != tok.ID || got.Version != tok.Version {
		t.Errorf("FindToken by user = %q v%d, %v", got.ID, got.Version, ok)
	}
}
