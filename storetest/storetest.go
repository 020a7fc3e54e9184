// Package storetest is the conformance suite for tokencache.Store.
//
// Anyone who writes a Store, in this repository or outside it, runs it from
// a test:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) tokencache.Store {
//			return mystore.New(...) // empty, and isolated from other calls
//		})
//	}
//
// newStore must return an empty store that no other call to newStore shares
// (a fresh namespace, table or directory), and must release it with
// t.Cleanup. Run calls newStore from parallel subtests, so it must be safe
// for concurrent use. The suite takes a few seconds of wall time: its expiry
// checks wait for real access tokens to expire, since a store may rely on the
// clock of a server it cannot control.
//
// The suite checks the contract documented on tokencache.Store: every
// matching rule and its precedence, upserts without duplicates under
// concurrency, Version and ErrConflict, that replaced values stop matching,
// deletes, GetTokens and DeleteTokens, every bad input, expiry, and that user
// names are data (quotes, glob characters, braces, case, white space and
// Unicode composition never make two users one).
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokencache/tokencache"
)

// Run runs the conformance suite against the stores newStore makes. Each
// subtest calls newStore once and expects an empty store.
func Run(t *testing.T, newStore func(t *testing.T) tokencache.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s tokencache.Store)
	}{
		{"SaveAssignsIDAndVersion", testSaveAssignsIDAndVersion},
		{"IDsAreUnguessable", testIDsAreUnguessable},
		{"MatchingRules", testMatchingRules},
		{"SaveMatchesLikeFind", testSaveMatchesLikeFind},
		{"UpdateKeepsIDReplacesFields", testUpdateKeepsIDReplacesFields},
		{"ReplacedValuesStopMatching", testReplacedValuesStopMatching},
		{"UpsertWithoutDuplicates", testUpsertWithoutDuplicates},
		{"SharedValueGoesToTheLastWriter", testSharedValueGoesToTheLastWriter},
		{"ConcurrentSavesOfOneIdentity", testConcurrentSavesOfOneIdentity},
		{"ConcurrentSavesOfManyIdentities", testConcurrentSavesOfManyIdentities},
		{"Versions", testVersions},
		{"ConcurrentCompareAndSet", testConcurrentCompareAndSet},
		{"DeleteToken", testDeleteToken},
		{"GetTokensAndDeleteTokens", testGetTokensAndDeleteTokens},
		{"BadInput", testBadInput},
		{"NamesAreData", testNamesAreData},
		{"Expiry", testExpiry},
		{"FieldsRoundTrip", testFieldsRoundTrip},
		{"CanceledContext", testCanceledContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

// msTime returns now plus d, to the millisecond: stores keep Expiry to the
// millisecond, so values the suite compares are made exact.
func msTime(d time.Duration) time.Time {
	return time.Now().Add(d).Truncate(time.Millisecond)
}

// sample returns a complete token whose secrets all carry tag.
func sample(tag string) tokencache.Token {
	return tokencache.Token{
		UserName:     "user-" + tag + "@example.com",
		ClientID:     "client-" + tag,
		ClientSecret: "secret-" + tag,
		RefreshToken: "refresh-" + tag,
		AccessToken:  "access-" + tag,
		GrantToken:   "grant-" + tag,
		Expiry:       msTime(time.Hour),
		RedirectURL:  "https://app.example.com/callback/" + tag,
		APIDomain:    "https://api.example.com",
	}
}

func save(t *testing.T, s tokencache.Store, tok tokencache.Token) tokencache.Token {
	t.Helper()
	if err := s.SaveToken(context.Background(), &tok); err != nil {
		t.Fatalf("SaveToken(%v) = %v", tok, err)
	}
	return tok
}

// sameToken fails t unless got equals want in every field.
func sameToken(t *testing.T, what string, got, want tokencache.Token) {
	t.Helper()
	expiryOK := got.Expiry.Equal(want.Expiry)
	got.Expiry, want.Expiry = time.Time{}, time.Time{}
	if got != want || !expiryOK {
		t.Errorf("%s: got %#v\nwant %#v (expiry equal: %v)", what, got, want, expiryOK)
	}
}

func mustFind(t *testing.T, s tokencache.Store, q tokencache.Token) tokencache.Token {
	t.Helper()
	got, err := s.FindToken(context.Background(), q)
	if err != nil {
		t.Fatalf("FindToken(%v) = %v, want a token", q, err)
	}
	return got
}

func wantNotFound(t *testing.T, s tokencache.Store, q tokencache.Token) {
	t.Helper()
	got, err := s.FindToken(context.Background(), q)
	if !errors.Is(err, tokencache.ErrNotFound) {
		t.Errorf("FindToken(%v) = %v, %v; want ErrNotFound", q, got, err)
	}
}

func all(t *testing.T, s tokencache.Store) []tokencache.Token {
	t.Helper()
	got, err := s.GetTokens(context.Background())
	if err != nil {
		t.Fatalf("GetTokens = %v", err)
	}
	slices.SortFunc(got, func(a, b tokencache.Token) int { return strings.Compare(a.ID, b.ID) })
	return got
}

func testSaveAssignsIDAndVersion(t *testing.T, s tokencache.Store) {
	tok := sample("a")
	saved := save(t, s, tok)
	if err := tokencache.ValidateID(saved.ID); err != nil {
		t.Fatalf("SaveToken set ID %q: %v", saved.ID, err)
	}
	if saved.Version != 1 {
		t.Errorf("new token Version = %d, want 1", saved.Version)
	}
	got, err := s.FindTokenByID(context.Background(), saved.ID)
	if err != nil {
		t.Fatalf("FindTokenByID = %v", err)
	}
	sameToken(t, "FindTokenByID", got, saved)

	withID := sample("b")
	withID.ID = "caller-chosen.ID_1"
	saved = save(t, s, withID)
	if saved.ID != withID.ID || saved.Version != 1 {
		t.Errorf("save with a new caller-chosen ID: got ID %q version %d, want %q version 1", saved.ID, saved.Version, withID.ID)
	}
	sameToken(t, "find caller-chosen ID", mustFind(t, s, tokencache.Token{ID: withID.ID}), saved)
}

func testIDsAreUnguessable(t *testing.T, s tokencache.Store) {
	seen := map[string]bool{}
	for i := range 20 {
		saved := save(t, s, sample(fmt.Sprint(i)))
		if seen[saved.ID] {
			t.Fatalf("ID %q assigned twice", saved.ID)
		}
		seen[saved.ID] = true
		// 128 random bits need at least 22 characters in any encoding the
		// ID alphabet allows; a counter would be short and all digits.
		if len(saved.ID) < 22 || strings.Trim(saved.ID, "0123456789") == "" {
			t.Errorf("ID %q is too short or sequential to hold 128 random bits", saved.ID)
		}
	}
}

func testMatchingRules(t *testing.T, s tokencache.Store) {
	t1 := save(t, s, tokencache.Token{UserName: "u1", ClientID: "c1", GrantToken: "g1", RefreshToken: "r1", AccessToken: "a1", Expiry: msTime(time.Hour)})
	t2 := save(t, s, tokencache.Token{UserName: "u2", ClientID: "c2", RefreshToken: "r2", AccessToken: "a2", Expiry: msTime(time.Hour)})
	t3 := save(t, s, tokencache.Token{ClientID: "c1", GrantToken: "g3"})
	t4 := save(t, s, tokencache.Token{AccessToken: "a4", Expiry: msTime(time.Hour)})

	tests := []struct {
		name  string
		query tokencache.Token
		want  string // ID, or "" for ErrNotFound
	}{
		{"id", tokencache.Token{ID: t1.ID}, t1.ID},
		{"id decides over user", tokencache.Token{ID: t1.ID, UserName: "u2", ClientID: "c2"}, t1.ID},
		{"unknown id does not fall through", tokencache.Token{ID: "nosuchid", UserName: "u1", ClientID: "c1"}, ""},
		{"user and client", tokencache.Token{UserName: "u1", ClientID: "c1"}, t1.ID},
		{"user with another client", tokencache.Token{UserName: "u1", ClientID: "c2"}, ""},
		{"user without client", tokencache.Token{UserName: "u1"}, ""},
		{"user decides over access", tokencache.Token{UserName: "u1", ClientID: "c1", AccessToken: "a2"}, t1.ID},
		{"unknown user does not fall through", tokencache.Token{UserName: "nobody", ClientID: "c1", AccessToken: "a1"}, ""},
		{"grant and client", tokencache.Token{GrantToken: "g1", ClientID: "c1"}, t1.ID},
		{"grant of a token without user", tokencache.Token{GrantToken: "g3", ClientID: "c1"}, t3.ID},
		{"grant with another client", tokencache.Token{GrantToken: "g1", ClientID: "c2"}, ""},
		{"grant decides over refresh", tokencache.Token{GrantToken: "g1", ClientID: "c1", RefreshToken: "r2"}, t1.ID},
		{"unknown grant does not fall through", tokencache.Token{GrantToken: "nope", ClientID: "c1", RefreshToken: "r1"}, ""},
		{"refresh and client", tokencache.Token{RefreshToken: "r1", ClientID: "c1"}, t1.ID},
		{"refresh of another user", tokencache.Token{RefreshToken: "r2", ClientID: "c2"}, t2.ID},
		{"refresh without client", tokencache.Token{RefreshToken: "r1"}, ""},
		{"refresh decides over access", tokencache.Token{RefreshToken: "r1", ClientID: "c1", AccessToken: "a2"}, t1.ID},
		{"unknown refresh does not fall through", tokencache.Token{RefreshToken: "nope", ClientID: "c1", AccessToken: "a1"}, ""},
		{"access", tokencache.Token{AccessToken: "a1"}, t1.ID},
		{"access ignores client", tokencache.Token{AccessToken: "a1", ClientID: "c2"}, t1.ID},
		{"access-only token", tokencache.Token{AccessToken: "a4"}, t4.ID},
		{"unknown access", tokencache.Token{AccessToken: "a9"}, ""},
		{"values are not prefixes", tokencache.Token{AccessToken: "a"}, ""},
	}
	for _, tc := range tests {
		got, err := s.FindToken(context.Background(), tc.query)
		switch {
		case tc.want == "" && !errors.Is(err, tokencache.ErrNotFound):
			t.Errorf("%s: FindToken(%v) = %v, %v; want ErrNotFound", tc.name, tc.query, got.ID, err)
		case tc.want != "" && err != nil:
			t.Errorf("%s: FindToken(%v) = %v; want token %s", tc.name, tc.query, err, tc.want)
		case tc.want != "" && got.ID != tc.want:
			t.Errorf("%s: FindToken(%v) found %s, want %s", tc.name, tc.query, got.ID, tc.want)
		}
	}
	for _, q := range []tokencache.Token{{}, {ClientID: "c1"}, {ClientSecret: "s", RedirectURL: "https://x", APIDomain: "d"}} {
		if _, err := s.FindToken(context.Background(), q); !errors.Is(err, tokencache.ErrInvalidToken) {
			t.Errorf("FindToken(%v) = %v, want ErrInvalidToken", q, err)
		}
	}
}

func testSaveMatchesLikeFind(t *testing.T, s tokencache.Store) {
	orig := save(t, s, tokencache.Token{UserName: "u", ClientID: "c", GrantToken: "g", RefreshToken: "r", AccessToken: "a", Expiry: msTime(time.Hour)})

	// Same user and client: updates in place.
	upd := save(t, s, tokencache.Token{UserName: "u", ClientID: "c", RefreshToken: "r2", AccessToken: "a2", Expiry: msTime(time.Hour)})
	if upd.ID != orig.ID || upd.Version != 2 {
		t.Errorf("save by user: got ID %s version %d, want ID %s version 2", upd.ID, upd.Version, orig.ID)
	}
	// Same user, another client: a different identity.
	other := save(t, s, tokencache.Token{UserName: "u", ClientID: "c-other", AccessToken: "a3", Expiry: msTime(time.Hour)})
	if other.ID == orig.ID || other.Version != 1 {
		t.Errorf("save by user with another client updated %s (version %d), want a new token", other.ID, other.Version)
	}
	// By refresh token and client (no user): updates the same token, whose
	// user name the update then clears, since a save replaces every field.
	byRefresh := save(t, s, tokencache.Token{ClientID: "c", RefreshToken: "r2", AccessToken: "a4", Expiry: msTime(time.Hour)})
	if byRefresh.ID != orig.ID || byRefresh.Version != 3 {
		t.Errorf("save by refresh token: got ID %s version %d, want ID %s version 3", byRefresh.ID, byRefresh.Version, orig.ID)
	}
	wantNotFound(t, s, tokencache.Token{UserName: "u", ClientID: "c"})
	// By access token alone.
	byAccess := save(t, s, tokencache.Token{AccessToken: "a4", Expiry: msTime(2 * time.Hour)})
	if byAccess.ID != orig.ID || byAccess.Version != 4 {
		t.Errorf("save by access token: got ID %s version %d, want ID %s version 4", byAccess.ID, byAccess.Version, orig.ID)
	}
	// By grant token: a grant nobody holds is a new token.
	byGrant := save(t, s, tokencache.Token{ClientID: "c", GrantToken: "g-new"})
	if byGrant.ID == orig.ID {
		t.Errorf("save by an unknown grant token updated %s, want a new token", orig.ID)
	}
	if n := len(all(t, s)); n != 3 {
		t.Errorf("GetTokens has %d tokens, want 3", n)
	}
}

func testUpdateKeepsIDReplacesFields(t *testing.T, s tokencache.Store) {
	orig := save(t, s, sample("x"))
	repl := tokencache.Token{UserName: orig.UserName, ClientID: orig.ClientID, AccessToken: "access-new", Expiry: msTime(2 * time.Hour)}
	got := save(t, s, repl)
	want := repl
	want.ID, want.Version = orig.ID, 2
	sameToken(t, "SaveToken result", got, want)
	sameToken(t, "stored after update", mustFind(t, s, tokencache.Token{ID: orig.ID}), want)
	wantNotFound(t, s, tokencache.Token{GrantToken: orig.GrantToken, ClientID: orig.ClientID})
	wantNotFound(t, s, tokencache.Token{RefreshToken: orig.RefreshToken, ClientID: orig.ClientID})
}

func testReplacedValuesStopMatching(t *testing.T, s tokencache.Store) {
	orig := save(t, s, sample("old"))
	// A refresh: read, renew, save with the version read.
	tok := mustFind(t, s, tokencache.Token{UserName: orig.UserName, ClientID: orig.ClientID})
	tok.AccessToken, tok.RefreshToken, tok.GrantToken = "access-new", "refresh-new", ""
	tok.Expiry = msTime(2 * time.Hour)
	tok = save(t, s, tok)

	wantNotFound(t, s, tokencache.Token{AccessToken: orig.AccessToken})
	wantNotFound(t, s, tokencache.Token{RefreshToken: orig.RefreshToken, ClientID: orig.ClientID})
	wantNotFound(t, s, tokencache.Token{GrantToken: orig.GrantToken, ClientID: orig.ClientID})
	for _, q := range []tokencache.Token{
		{AccessToken: "access-new"},
		{RefreshToken: "refresh-new", ClientID: orig.ClientID},
		{UserName: orig.UserName, ClientID: orig.ClientID},
	} {
		sameToken(t, fmt.Sprintf("FindToken(%v)", q), mustFind(t, s, q), tok)
	}

	// A new user name: the old one stops matching too.
	tok.UserName = "renamed@example.com"
	tok = save(t, s, tok)
	wantNotFound(t, s, tokencache.Token{UserName: orig.UserName, ClientID: orig.ClientID})
	sameToken(t, "find renamed user", mustFind(t, s, tokencache.Token{UserName: "renamed@example.com", ClientID: orig.ClientID}), tok)
}

func testUpsertWithoutDuplicates(t *testing.T, s tokencache.Store) {
	var ids []string
	for i := range 3 {
		tok := sample("same")
		tok.AccessToken = fmt.Sprint("access-", i)
		ids = append(ids, save(t, s, tok).ID)
	}
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("three saves of one user made IDs %v, want one", ids)
	}
	got := all(t, s)
	if len(got) != 1 || got[0].AccessToken != "access-2" || got[0].Version != 3 {
		t.Errorf("GetTokens = %v, want one token with access-2 at version 3", got)
	}
}

// testSharedValueGoesToTheLastWriter saves two tokens that hold one value:
// the same refresh token under two user names, and a save by ID that takes
// another token's user name. Lookups by that value find the token saved
// last (redisstore's index points at its last writer; sqlstore's unique
// columns move the value to it); the other token keeps its fields and every
// other way to find it.
func testSharedValueGoesToTheLastWriter(t *testing.T, s tokencache.Store) {
	first := save(t, s, tokencache.Token{UserName: "first", ClientID: "c", RefreshToken: "shared-refresh", AccessToken: "first-access", Expiry: msTime(time.Hour)})
	second := save(t, s, tokencache.Token{UserName: "second", ClientID: "c", RefreshToken: "shared-refresh", AccessToken: "second-access", Expiry: msTime(time.Hour)})
	if first.ID == second.ID {
		t.Fatalf("two user names with one refresh token made one token %s", first.ID)
	}
	sameToken(t, "shared refresh token", mustFind(t, s, tokencache.Token{RefreshToken: "shared-refresh", ClientID: "c"}), second)
	sameToken(t, "first by user", mustFind(t, s, tokencache.Token{UserName: "first", ClientID: "c"}), first)
	sameToken(t, "first by access token", mustFind(t, s, tokencache.Token{AccessToken: "first-access"}), first)

	// A save by ID onto another token's user name and access token.
	byID := save(t, s, tokencache.Token{ID: "moved-onto", UserName: "first", ClientID: "c", AccessToken: "first-access", Expiry: msTime(time.Hour)})
	sameToken(t, "user after a save by ID", mustFind(t, s, tokencache.Token{UserName: "first", ClientID: "c"}), byID)
	sameToken(t, "access token after a save by ID", mustFind(t, s, tokencache.Token{AccessToken: "first-access"}), byID)
	sameToken(t, "first by ID", mustFind(t, s, tokencache.Token{ID: first.ID}), first)

	// A save by the shared user name updates the token that won it.
	upd := save(t, s, tokencache.Token{UserName: "first", ClientID: "c", AccessToken: "upd-access", Expiry: msTime(time.Hour)})
	if upd.ID != byID.ID || upd.Version != 2 {
		t.Errorf("save by the shared user name updated %s to version %d, want %s at version 2", upd.ID, upd.Version, byID.ID)
	}
	if got := all(t, s); len(got) != 3 {
		t.Errorf("GetTokens has %d tokens, want 3", len(got))
	}
}

// saveConcurrently saves each token from its own goroutine, all released at
// once, and returns the tokens as saved.
func saveConcurrently(t *testing.T, s tokencache.Store, toks []tokencache.Token) []tokencache.Token {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, len(toks))
	for i := range toks {
		wg.Go(func() {
			<-start
			errs[i] = s.SaveToken(context.Background(), &toks[i])
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent SaveToken #%d = %v", i, err)
		}
	}
	return toks
}

func testConcurrentSavesOfOneIdentity(t *testing.T, s tokencache.Store) {
	const n = 50
	identities := []struct {
		name string
		make func(i int) tokencache.Token
	}{
		{"user", func(i int) tokencache.Token {
			return tokencache.Token{UserName: "same-user", ClientID: "c", AccessToken: fmt.Sprint("ua", i), RefreshToken: fmt.Sprint("ur", i)}
		}},
		{"grant", func(i int) tokencache.Token {
			return tokencache.Token{ClientID: "c", GrantToken: "same-grant", AccessToken: fmt.Sprint("ga", i)}
		}},
		{"refresh", func(i int) tokencache.Token {
			return tokencache.Token{ClientID: "c", RefreshToken: "same-refresh", AccessToken: fmt.Sprint("ra", i)}
		}},
		{"access", func(int) tokencache.Token {
			return tokencache.Token{AccessToken: "same-access", Expiry: msTime(time.Hour)}
		}},
		{"id", func(i int) tokencache.Token {
			return tokencache.Token{ID: "same-id", AccessToken: fmt.Sprint("ia", i)}
		}},
	}
	for _, idt := range identities {
		toks := make([]tokencache.Token, n)
		for i := range toks {
			toks[i] = idt.make(i)
		}
		toks = saveConcurrently(t, s, toks)
		versions := map[int64]bool{}
		for _, tok := range toks {
			if tok.ID != toks[0].ID {
				t.Fatalf("%s: %d concurrent saves of one identity made IDs %s and %s", idt.name, n, toks[0].ID, tok.ID)
			}
			if versions[tok.Version] {
				t.Errorf("%s: version %d returned by two saves", idt.name, tok.Version)
			}
			versions[tok.Version] = true
		}
		got := mustFind(t, s, tokencache.Token{ID: toks[0].ID})
		if got.Version != n {
			t.Errorf("%s: after %d saves Version = %d, want %d", idt.name, n, got.Version, n)
		}
	}
	if got := all(t, s); len(got) != len(identities) {
		t.Errorf("GetTokens has %d tokens after concurrent saves of %d identities, want %d", len(got), len(identities), len(identities))
	}
}

func testConcurrentSavesOfManyIdentities(t *testing.T, s tokencache.Store) {
	const n = 50
	toks := make([]tokencache.Token, n)
	for i := range toks {
		toks[i] = sample(fmt.Sprint("many-", i))
	}
	toks = saveConcurrently(t, s, toks)
	got := all(t, s)
	if len(got) != n {
		t.Fatalf("GetTokens has %d tokens after saving %d identities, want %d", len(got), n, n)
	}
	for _, tok := range toks {
		sameToken(t, "find "+tok.UserName, mustFind(t, s, tokencache.Token{UserName: tok.UserName, ClientID: tok.ClientID}), tok)
	}
}

func testVersions(t *testing.T, s tokencache.Store) {
	ctx := context.Background()
	tok := save(t, s, sample("v"))
	if tok.Version != 1 {
		t.Fatalf("new token Version = %d, want 1", tok.Version)
	}
	tok.AccessToken = "access-v2"
	tok = save(t, s, tok) // Version 1 is current
	if tok.Version != 2 {
		t.Fatalf("Version after a compare-and-set save = %d, want 2", tok.Version)
	}

	stale := tok
	stale.Version = 1
	stale.AccessToken = "access-stale"
	if err := s.SaveToken(ctx, &stale); !errors.Is(err, tokencache.ErrConflict) {
		t.Errorf("save with stale Version 1 = %v, want ErrConflict", err)
	}
	if stale.Version != 1 {
		t.Errorf("a refused save changed token.Version to %d", stale.Version)
	}
	sameToken(t, "after a refused save", mustFind(t, s, tokencache.Token{ID: tok.ID}), tok)
	wantNotFound(t, s, tokencache.Token{AccessToken: "access-stale"})

	ahead := tok
	ahead.Version = 7
	if err := s.SaveToken(ctx, &ahead); !errors.Is(err, tokencache.ErrConflict) {
		t.Errorf("save with Version 7 of a token at 2 = %v, want ErrConflict", err)
	}

	// A Version for a token that does not exist: conflict, nothing inserted.
	ghost := sample("ghost")
	ghost.Version = 3
	if err := s.SaveToken(ctx, &ghost); !errors.Is(err, tokencache.ErrConflict) {
		t.Errorf("save of a missing token with Version 3 = %v, want ErrConflict", err)
	}
	ghostByID := sample("ghost-id")
	ghostByID.ID, ghostByID.Version = "ghost-id", 1
	if err := s.SaveToken(ctx, &ghostByID); !errors.Is(err, tokencache.ErrConflict) {
		t.Errorf("save of a missing ID with Version 1 = %v, want ErrConflict", err)
	}
	if got := all(t, s); len(got) != 1 {
		t.Errorf("GetTokens has %d tokens after refused saves, want 1", len(got))
	}

	// Version 0 saves over whatever is stored.
	blind := tok
	blind.Version = 0
	blind.AccessToken = "access-blind"
	if blind = save(t, s, blind); blind.Version != 3 {
		t.Errorf("unconditional save: Version = %d, want 3", blind.Version)
	}
}

func testConcurrentCompareAndSet(t *testing.T, s tokencache.Store) {
	const n = 20
	base := save(t, s, sample("cas"))
	toks := make([]tokencache.Token, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range toks {
		toks[i] = base
		toks[i].AccessToken = fmt.Sprint("access-cas-", i)
		wg.Go(func() {
			<-start
			errs[i] = s.SaveToken(context.Background(), &toks[i])
		})
	}
	close(start)
	wg.Wait()
	winners := 0
	var winner tokencache.Token
	for i, err := range errs {
		switch {
		case err == nil:
			winners++
			winner = toks[i]
		case !errors.Is(err, tokencache.ErrConflict):
			t.Errorf("save #%d = %v, want nil or ErrConflict", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d of %d saves with the same Version won, want exactly 1", winners, n)
	}
	sameToken(t, "stored after the race", mustFind(t, s, tokencache.Token{ID: base.ID}), winner)
}

func testDeleteToken(t *testing.T, s tokencache.Store) {
	ctx := context.Background()
	if err := s.DeleteToken(ctx, "no-such-id"); err != nil {
		t.Errorf("DeleteToken of a missing ID = %v, want nil", err)
	}
	keep := save(t, s, sample("keep"))
	gone := save(t, s, sample("gone"))
	if err := s.DeleteToken(ctx, gone.ID); err != nil {
		t.Fatalf("DeleteToken = %v", err)
	}
	if _, err := s.FindTokenByID(ctx, gone.ID); !errors.Is(err, tokencache.ErrNotFound) {
		t.Errorf("FindTokenByID after delete = %v, want ErrNotFound", err)
	}
	wantNotFound(t, s, tokencache.Token{UserName: gone.UserName, ClientID: gone.ClientID})
	wantNotFound(t, s, tokencache.Token{GrantToken: gone.GrantToken, ClientID: gone.ClientID})
	wantNotFound(t, s, tokencache.Token{RefreshToken: gone.RefreshToken, ClientID: gone.ClientID})
	wantNotFound(t, s, tokencache.Token{AccessToken: gone.AccessToken})
	if err := s.DeleteToken(ctx, gone.ID); err != nil {
		t.Errorf("second DeleteToken = %v, want nil", err)
	}
	got := all(t, s)
	if len(got) != 1 {
		t.Fatalf("GetTokens after delete = %v, want only %s", got, keep.ID)
	}
	sameToken(t, "survivor", got[0], keep)

	// The same identity saved again is a new token.
	again := sample("gone")
	if again = save(t, s, again); again.ID == gone.ID || again.Version != 1 {
		t.Errorf("re-saved deleted identity: ID %s version %d, want a new ID at version 1", again.ID, again.Version)
	}
}

func testGetTokensAndDeleteTokens(t *testing.T, s tokencache.Store) {
	ctx := context.Background()
	if got := all(t, s); len(got) != 0 {
		t.Fatalf("GetTokens on an empty store = %v", got)
	}
	var want []tokencache.Token
	for i := range 5 {
		want = append(want, save(t, s, sample(fmt.Sprint("all-", i))))
	}
	slices.SortFunc(want, func(a, b tokencache.Token) int { return strings.Compare(a.ID, b.ID) })
	got := all(t, s)
	if len(got) != len(want) {
		t.Fatalf("GetTokens has %d tokens, want %d", len(got), len(want))
	}
	for i := range want {
		sameToken(t, "GetTokens", got[i], want[i])
	}
	if err := s.DeleteTokens(ctx); err != nil {
		t.Fatalf("DeleteTokens = %v", err)
	}
	if got := all(t, s); len(got) != 0 {
		t.Errorf("GetTokens after DeleteTokens = %v", got)
	}
	for _, w := range want {
		wantNotFound(t, s, tokencache.Token{ID: w.ID})
		wantNotFound(t, s, tokencache.Token{UserName: w.UserName, ClientID: w.ClientID})
		wantNotFound(t, s, tokencache.Token{AccessToken: w.AccessToken})
	}
	if err := s.DeleteTokens(ctx); err != nil {
		t.Errorf("DeleteTokens on an empty store = %v", err)
	}
	// The store still works afterwards, and the old identity is new again.
	if again := save(t, s, sample("all-0")); again.Version != 1 {
		t.Errorf("save after DeleteTokens: Version %d, want 1", again.Version)
	}
}

func testBadInput(t *testing.T, s tokencache.Store) {
	ctx := context.Background()
	existing := save(t, s, sample("bad"))
	before := all(t, s)
	big := strings.Repeat("x", tokencache.MaxFieldSize+1)

	variant := func(set func(*tokencache.Token)) *tokencache.Token {
		tok := sample("bad") // the existing identity: a refused update must not touch it
		set(&tok)
		return &tok
	}
	saves := []struct {
		name string
		tok  *tokencache.Token
	}{
		{"nil token", nil},
		{"no secret", &tokencache.Token{UserName: "u", ClientID: "c", ClientSecret: "s"}},
		{"empty token", &tokencache.Token{}},
		{"oversized user_name", variant(func(t *tokencache.Token) { t.UserName = big })},
		{"oversized client_id", variant(func(t *tokencache.Token) { t.ClientID = big })},
		{"oversized client_secret", variant(func(t *tokencache.Token) { t.ClientSecret = big })},
		{"oversized refresh_token", variant(func(t *tokencache.Token) { t.RefreshToken = big })},
		{"oversized access_token", variant(func(t *tokencache.Token) { t.AccessToken = big })},
		{"oversized grant_token", variant(func(t *tokencache.Token) { t.GrantToken = big })},
		{"oversized redirect_url", variant(func(t *tokencache.Token) { t.RedirectURL = big })},
		{"oversized api_domain", variant(func(t *tokencache.Token) { t.APIDomain = big })},
		{"negative version", variant(func(t *tokencache.Token) { t.Version = -1 })},
		{"expired without refresh token", &tokencache.Token{UserName: "late", AccessToken: "a", Expiry: msTime(-time.Minute)}},
	}
	for _, badID := range []string{"a b", "a:b", "a{b}", "a*", "a?", "a[1]", "ü", "a\nb", "a/b", "'a'", strings.Repeat("a", tokencache.MaxIDLength+1)} {
		tok := sample("bad")
		tok.ID = badID
		saves = append(saves, struct {
			name string
			tok  *tokencache.Token
		}{fmt.Sprintf("id %q", badID), &tok})

		if _, err := s.FindTokenByID(ctx, badID); !errors.Is(err, tokencache.ErrInvalidToken) {
			t.Errorf("FindTokenByID(%q) = %v, want ErrInvalidToken", badID, err)
		}
		if _, err := s.FindToken(ctx, tokencache.Token{ID: badID}); !errors.Is(err, tokencache.ErrInvalidToken) {
			t.Errorf("FindToken(ID %q) = %v, want ErrInvalidToken", badID, err)
		}
		if err := s.DeleteToken(ctx, badID); !errors.Is(err, tokencache.ErrInvalidToken) {
			t.Errorf("DeleteToken(%q) = %v, want ErrInvalidToken", badID, err)
		}
	}
	for _, tc := range saves {
		err := s.SaveToken(ctx, tc.tok)
		if !errors.Is(err, tokencache.ErrInvalidToken) {
			t.Errorf("SaveToken(%s) = %v, want ErrInvalidToken", tc.name, err)
		}
		if err != nil && strings.Contains(err.Error(), "xxxxxxxx") {
			t.Errorf("SaveToken(%s) error quotes the field's value", tc.name)
		}
	}
	for _, id := range []string{""} {
		if _, err := s.FindTokenByID(ctx, id); !errors.Is(err, tokencache.ErrInvalidToken) {
			t.Errorf("FindTokenByID(%q) = %v, want ErrInvalidToken", id, err)
		}
		if err := s.DeleteToken(ctx, id); !errors.Is(err, tokencache.ErrInvalidToken) {
			t.Errorf("DeleteToken(%q) = %v, want ErrInvalidToken", id, err)
		}
	}
	if _, err := s.FindToken(ctx, tokencache.Token{AccessToken: big}); !errors.Is(err, tokencache.ErrInvalidToken) {
		t.Errorf("FindToken with an oversized access token = %v, want ErrInvalidToken", err)
	}

	after := all(t, s)
	if len(after) != len(before) {
		t.Fatalf("bad input changed the store: %d tokens before, %d after", len(before), len(after))
	}
	sameToken(t, "existing token after bad input", after[0], existing)

	// The limit itself is fine.
	limit := sample("limit")
	limit.AccessToken = strings.Repeat("y", tokencache.MaxFieldSize)
	limit = save(t, s, limit)
	sameToken(t, "token with a field at the size limit", mustFind(t, s, tokencache.Token{AccessToken: limit.AccessToken}), limit)
}

func testNamesAreData(t *testing.T, s tokencache.Store) {
	names := []string{
		"user", "User", "USER", "user ", " user", "user\n", "user\r\n", "us\ner",
		`o'brien`, `o"brien`, "obrien", "o`brien",
		"user*", "*", "user?", "?", "user[1]", "[a-z]", "user]", "user\\",
		"{user}", "user{x}", "{", "}", "%s", "${HOME}",
		"caf\u00e9", "cafe\u0301", "ユーザー", "пользователь", "user\u200b", "user\x00x",
		"tokencache:u:x", "a:b", "user@example.com",
	}
	toks := make([]tokencache.Token, len(names))
	for i, name := range names {
		toks[i] = save(t, s, tokencache.Token{
			UserName: name, ClientID: "client " + name,
			GrantToken: "grant " + name, RefreshToken: "refresh " + name, AccessToken: "access " + name,
			Expiry: msTime(time.Hour),
		})
	}
	if got := all(t, s); len(got) != len(names) {
		t.Fatalf("%d distinct user names made %d tokens", len(names), len(got))
	}
	for i, name := range names {
		want := toks[i]
		for _, q := range []tokencache.Token{
			{UserName: name, ClientID: "client " + name},
			{GrantToken: "grant " + name, ClientID: "client " + name},
			{RefreshToken: "refresh " + name, ClientID: "client " + name},
			{AccessToken: "access " + name},
		} {
			got, err := s.FindToken(context.Background(), q)
			if err != nil || got.ID != want.ID {
				t.Errorf("FindToken(%s of user %q) = %s, %v; want %s", tokencache.RuleOf(q), name, got.ID, err, want.ID)
				continue
			}
			sameToken(t, fmt.Sprintf("user %q", name), got, want)
		}
	}
	// Same name, client differing only by case: two identities.
	a := save(t, s, tokencache.Token{UserName: "same", ClientID: "Client", AccessToken: "x1"})
	b := save(t, s, tokencache.Token{UserName: "same", ClientID: "client", AccessToken: "x2"})
	if a.ID == b.ID {
		t.Errorf("client IDs differing by case were merged into %s", a.ID)
	}
}

// testExpiry saves tokens that expire soon and checks what is found once
// they have. The checks made before the expiry need the saves and finds to
// finish within the tokens' life; on a machine too loaded for that the round
// is repeated with a longer life (and new identities) instead of failing.
func testExpiry(t *testing.T, s tokencache.Store) {
	life := 1200 * time.Millisecond
	for round := 1; ; round++ {
		if expiryRound(t, s, life, strconv.Itoa(round)) {
			return
		}
		if life >= 20*time.Second {
			t.Fatalf("saving three tokens and finding two took longer than %v", life)
		}
		t.Logf("round %d: the saves and finds outlasted the tokens' life of %v; again with a longer life", round, life)
		life *= 4
	}
}

// expiryRound is one round of testExpiry with identities ending in sfx. It
// returns false, having checked nothing after the expiry, when the finds
// before it could not finish within life.
func expiryRound(t *testing.T, s tokencache.Store, life time.Duration, sfx string) bool {
	t.Helper()
	ctx := context.Background()
	short := save(t, s, tokencache.Token{UserName: "short" + sfx, ClientID: "c", AccessToken: "short-access" + sfx, Expiry: msTime(life)})
	renewable := save(t, s, tokencache.Token{UserName: "renewable" + sfx, ClientID: "c", AccessToken: "renewable-access" + sfx, RefreshToken: "renewable-refresh" + sfx, Expiry: msTime(life)})
	forever := save(t, s, tokencache.Token{UserName: "forever" + sfx, ClientID: "c", AccessToken: "forever-access" + sfx})

	for _, q := range []tokencache.Token{{AccessToken: short.AccessToken}, {AccessToken: renewable.AccessToken}} {
		_, err := s.FindToken(ctx, q)
		if err != nil && !time.Now().Before(short.Expiry) {
			return false // too late to tell: the token may have expired meanwhile
		}
		if err != nil {
			t.Fatalf("FindToken(%v) before the expiry = %v, want a token", q, err)
		}
	}
	if !time.Now().Before(short.Expiry) {
		return false
	}

	// renewable was saved after short, so on a loaded machine it expires
	// noticeably later: wait for the later of the two.
	time.Sleep(time.Until(renewable.Expiry.Add(100 * time.Millisecond)))

	// Expired access tokens find nothing.
	wantNotFound(t, s, tokencache.Token{AccessToken: short.AccessToken})
	wantNotFound(t, s, tokencache.Token{AccessToken: renewable.AccessToken})
	// A token that cannot be renewed is gone altogether.
	wantNotFound(t, s, tokencache.Token{ID: short.ID})
	wantNotFound(t, s, tokencache.Token{UserName: short.UserName, ClientID: "c"})
	if _, err := s.FindTokenByID(ctx, short.ID); !errors.Is(err, tokencache.ErrNotFound) {
		t.Errorf("FindTokenByID of an expired token without refresh token = %v, want ErrNotFound", err)
	}
	// One with a refresh token stays, found by every other rule.
	sameToken(t, "renewable by user", mustFind(t, s, tokencache.Token{UserName: renewable.UserName, ClientID: "c"}), renewable)
	sameToken(t, "renewable by refresh", mustFind(t, s, tokencache.Token{RefreshToken: renewable.RefreshToken, ClientID: "c"}), renewable)
	sameToken(t, "renewable by id", mustFind(t, s, tokencache.Token{ID: renewable.ID}), renewable)
	sameToken(t, "no expiry", mustFind(t, s, tokencache.Token{AccessToken: forever.AccessToken}), forever)

	var listed []string
	for _, tok := range all(t, s) {
		if strings.HasSuffix(tok.UserName, sfx) && (strings.HasPrefix(tok.UserName, "short") ||
			strings.HasPrefix(tok.UserName, "renewable") || strings.HasPrefix(tok.UserName, "forever")) {
			listed = append(listed, tok.UserName)
		}
	}
	slices.Sort(listed)
	if want := []string{forever.UserName, renewable.UserName}; !slices.Equal(listed, want) {
		t.Fatalf("GetTokens after expiry lists %v of this round, want %v", listed, want)
	}

	// Saving the renewed token makes its new access token findable.
	renewable.AccessToken, renewable.Expiry = "renewed-access"+sfx, msTime(time.Hour)
	renewable = save(t, s, renewable)
	sameToken(t, "renewed", mustFind(t, s, tokencache.Token{AccessToken: renewable.AccessToken}), renewable)

	// The identity of the expired token is free again.
	again := save(t, s, tokencache.Token{UserName: short.UserName, ClientID: "c", AccessToken: "short-2" + sfx})
	if again.ID == short.ID || again.Version != 1 {
		t.Errorf("save after expiry: ID %s version %d, want a new token", again.ID, again.Version)
	}
	return true
}

func testFieldsRoundTrip(t *testing.T, s tokencache.Store) {
	long := strings.Repeat("0123456789abcdef", 40) // longer than any small-value encoding
	tests := []tokencache.Token{
		sample("full"),
		{AccessToken: "only-access"},
		{GrantToken: "only-grant", ClientID: "c"},
		{RefreshToken: "only-refresh", ClientID: "c", Expiry: msTime(-time.Hour)},
		{UserName: long, ClientID: long, ClientSecret: long, RefreshToken: long + "r", AccessToken: long + "a", GrantToken: long + "g", RedirectURL: long, APIDomain: long, Expiry: msTime(24 * time.Hour)},
		{UserName: "unicode ✓", ClientID: "\x00\xff binary", AccessToken: "a\x00b", RefreshToken: "line\nbreak", Expiry: time.UnixMilli(4102444800000)},
	}
	for i, tok := range tests {
		saved := save(t, s, tok)
		got, err := s.FindTokenByID(context.Background(), saved.ID)
		if err != nil {
			t.Fatalf("#%d: FindTokenByID = %v", i, err)
		}
		sameToken(t, fmt.Sprint("round trip #", i), got, saved)
		if got.Expiry.IsZero() != tok.Expiry.IsZero() {
			t.Errorf("#%d: zero Expiry became %v", i, got.Expiry)
		}
	}
}

func testCanceledContext(t *testing.T, s tokencache.Store) {
	existing := save(t, s, sample("ctx"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tok := sample("ctx-new")
	checks := map[string]error{
		"FindToken":     second(s.FindToken(ctx, tokencache.Token{UserName: existing.UserName, ClientID: existing.ClientID})),
		"FindTokenByID": second(s.FindTokenByID(ctx, existing.ID)),
		"SaveToken":     s.SaveToken(ctx, &tok),
		"GetTokens":     second(s.GetTokens(ctx)),
		"DeleteToken":   s.DeleteToken(ctx, existing.ID),
		"DeleteTokens":  s.DeleteTokens(ctx),
	}
	for name, err := range checks {
		if err == nil || errors.Is(err, tokencache.ErrNotFound) {
			t.Errorf("%s with a canceled context = %v, want an error that is not ErrNotFound", name, err)
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context = %v, want it to wrap context.Canceled", name, err)
		}
	}
	sameToken(t, "after canceled calls", mustFind(t, s, tokencache.Token{ID: existing.ID}), existing)
}

func second[T any](_ T, err error) error { return err }
