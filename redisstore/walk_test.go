package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/redisstore"
)

// walkStore returns a store in a namespace of its own, dropped at cleanup.
func walkStore(t *testing.T, opts ...redisstore.Option) (*redistest.Target, *redisstore.Store) {
	t.Helper()
	tg := redistest.New(t)
	rdb := tg.Client(t)
	ns := redistest.Namespace(t)
	redistest.DropNamespaceAtCleanup(t, rdb, ns)
	return tg, redisstore.New(rdb, append([]redisstore.Option{redisstore.WithNamespace(ns)}, opts...)...)
}

func walkIDs(t *testing.T, s *redisstore.Store) []string {
	t.Helper()
	var ids []string
	if err := s.Walk(context.Background(), func(tok tokencache.Token) error {
		ids = append(ids, tok.ID)
		return nil
	}); err != nil {
		t.Fatalf("Walk: %v", err)
	}
	slices.Sort(ids)
	return ids
}

// Walk visits exactly the tokens GetTokens returns, over more than one page,
// and skips a token that is no longer live.
func TestWalkVisitsEveryLiveToken(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tg, s := walkStore(t, redisstore.WithClock(clock))
	ctx := context.Background()
	const n = 1234 // more than two pages of 500
	var want []string
	for i := range n {
		tok := tokencache.Token{UserName: fmt.Sprint("u", i), ClientID: "c", RefreshToken: fmt.Sprint("r", i),
			AccessToken: fmt.Sprint("a", i), Expiry: now.Add(time.Hour)}
		if i%100 == 7 {
			tok.RefreshToken = "" // access-only: gone once the access token expires
			tok.Expiry = now.Add(time.Minute)
		}
		if err := s.SaveToken(ctx, &tok); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(2 * time.Minute)
	if tg.Mini != nil {
		tg.Mini.FastForward(2 * time.Minute)
	}
	all, err := s.GetTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range all {
		want = append(want, tok.ID)
	}
	slices.Sort(want)
	if len(want) != n-13 {
		t.Fatalf("GetTokens returned %d tokens, want %d", len(want), n-13)
	}
	got := walkIDs(t, s)
	got = slices.Compact(got) // Walk may repeat an ID; the set must be the same
	if !slices.Equal(got, want) {
		t.Fatalf("Walk visited %d tokens, GetTokens returned %d; first difference %v", len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return a[i] + " vs " + b[i]
		}
	}
	return "in length"
}

func TestWalkStopsOnError(t *testing.T) {
	_, s := walkStore(t)
	ctx := context.Background()
	for i := range 10 {
		tok := tokencache.Token{UserName: fmt.Sprint("u", i), ClientID: "c", AccessToken: fmt.Sprint("a", i)}
		if err := s.SaveToken(ctx, &tok); err != nil {
			t.Fatal(err)
		}
	}
	stop := errors.New("stop here")
	calls := 0
	err := s.Walk(ctx, func(tokencache.Token) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Fatalf("Walk = %v after %d calls, want the callback's error after 3", err, calls)
	}
}

func TestWalkEmptyAndBadOption(t *testing.T) {
	_, s := walkStore(t)
	if ids := walkIDs(t, s); len(ids) != 0 {
		t.Fatalf("Walk of an empty store visited %v", ids)
	}
	tg := redistest.New(t)
	bad := redisstore.New(tg.Client(t), redisstore.WithNamespace("{bad}"))
	err := bad.Walk(context.Background(), func(tokencache.Token) error { return nil })
	if !errors.Is(err, redisstore.ErrBadOption) {
		t.Fatalf("Walk with a bad option = %v, want ErrBadOption", err)
	}
}

// A Redis failure is an error, never an empty walk.
func TestWalkRedisDown(t *testing.T) {
	tg := redistest.New(t)
	if tg.Mini == nil {
		t.Skip("stops the server: miniredis only")
	}
	s := redisstore.New(tg.Client(t))
	tg.Mini.Close()
	err := s.Walk(context.Background(), func(tokencache.Token) error { return nil })
	if err == nil || errors.Is(err, tokencache.ErrNotFound) {
		t.Fatalf("Walk with Redis down = %v, want a Redis error", err)
	}
}

// repeatScans makes every SSCAN reply repeat the members that earlier
// replies with the same MATCH returned, as Redis may after shrinking the
// set during a scan, at its worst.
type repeatScans struct {
	mu   sync.Mutex          // guards seen
	seen map[string][]string // by MATCH pattern
}

func (*repeatScans) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *repeatScans) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		sc, ok := cmd.(*redis.ScanCmd)
		if !ok || err != nil || cmd.Name() != "sscan" {
			return err
		}
		pattern := ""
		for i, a := range cmd.Args() {
			if s, _ := a.(string); strings.EqualFold(s, "match") && i+1 < len(cmd.Args()) {
				pattern, _ = cmd.Args()[i+1].(string)
			}
		}
		page, cursor := sc.Val()
		h.mu.Lock()
		defer h.mu.Unlock()
		repeated := append(slices.Clone(h.seen[pattern]), page...)
		h.seen[pattern] = append(h.seen[pattern], page...)
		sc.SetVal(repeated, cursor)
		return nil
	}
}
func (*repeatScans) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// walkOnce walks s and fails the test if a token is visited twice; it
// returns the IDs visited.
func walkOnce(t *testing.T, s *redisstore.Store) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	if err := s.Walk(context.Background(), func(tok tokencache.Token) error {
		if seen[tok.ID] {
			return fmt.Errorf("token %s visited twice", tok.ID)
		}
		seen[tok.ID] = true
		return nil
	}); err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return seen
}

// Walk visits a token once even when SSCAN returns its ID again and again,
// in one pass and in several.
func TestWalkDropsRepeatedMembers(t *testing.T) {
	for _, classSize := range []int64{0, 100} {
		t.Run(fmt.Sprint("class size ", classSize), func(t *testing.T) {
			tg := redistest.New(t)
			rdb := tg.Client(t)
			ns := redistest.Namespace(t)
			redistest.DropNamespaceAtCleanup(t, rdb, ns)
			opts := []redisstore.Option{redisstore.WithNamespace(ns)}
			if classSize > 0 {
				opts = append(opts, redisstore.WithWalkClassSize(classSize))
			}
			s := redisstore.New(rdb, opts...)
			ctx := context.Background()
			want := map[string]bool{}
			for i := range 1200 {
				tok := tokencache.Token{UserName: fmt.Sprint("u", i), ClientID: "c", RefreshToken: fmt.Sprint("r", i)}
				if err := s.SaveToken(ctx, &tok); err != nil {
					t.Fatal(err)
				}
				want[tok.ID] = true
			}
			rdb.AddHook(&repeatScans{seen: map[string][]string{}})
			got := walkOnce(t, s)
			if len(got) != len(want) {
				t.Fatalf("Walk visited %d tokens, want %d", len(got), len(want))
			}
		})
	}
}

// With a set larger than a class, Walk makes several passes whose patterns
// split the IDs, whatever characters they start with: every token is
// visited exactly once.
func TestWalkPassesSplitTheIDs(t *testing.T) {
	_, s := walkStore(t, redisstore.WithWalkClassSize(60))
	ctx := context.Background()
	want := map[string]bool{}
	save := func(tok tokencache.Token) {
		t.Helper()
		if err := s.SaveToken(ctx, &tok); err != nil {
			t.Fatal(err)
		}
		want[tok.ID] = true
	}
	for i := range 300 { // random IDs, as SaveToken makes them
		save(tokencache.Token{UserName: fmt.Sprint("u", i), ClientID: "c", RefreshToken: fmt.Sprint("r", i)})
	}
	for i := 1; i <= 250; i++ { // Zoho counters: first characters 1 to 9
		save(tokencache.Token{ID: fmt.Sprint(i), UserName: fmt.Sprint("z", i), ClientID: "c", RefreshToken: fmt.Sprint("zr", i)})
	}
	for _, id := range []string{"-a", ".b", "_c", "Zed", "A", "x", "0", "]", "["} {
		if tokencache.ValidateID(id) != nil {
			continue
		}
		save(tokencache.Token{ID: id, UserName: "odd" + id, ClientID: "c", RefreshToken: "or" + id})
	}
	classes, err := redisstore.WalkClasses(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(classes) < 5 {
		t.Errorf("%d passes for %d tokens in classes of 60: %q", len(classes), len(want), classes)
	}
	got := walkOnce(t, s)
	for id := range want {
		if !got[id] {
			t.Errorf("token %s not visited", id)
		}
	}
	if len(got) != len(want) {
		t.Errorf("Walk visited %d tokens, want %d", len(got), len(want))
	}
}

// Tokens saved and deleted while Walk runs: those present throughout are
// visited exactly once, the deleted ones at most once, and never twice.
func TestWalkWhileTheSetChanges(t *testing.T) {
	_, s := walkStore(t, redisstore.WithWalkClassSize(200))
	ctx := context.Background()
	var keep, drop []string
	for i := range 1500 {
		tok := tokencache.Token{UserName: fmt.Sprint("u", i), ClientID: "c", RefreshToken: fmt.Sprint("r", i)}
		if err := s.SaveToken(ctx, &tok); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			keep = append(keep, tok.ID)
		} else {
			drop = append(drop, tok.ID)
		}
	}
	seen := map[string]bool{}
	changed := false
	err := s.Walk(ctx, func(tok tokencache.Token) error {
		if seen[tok.ID] {
			return fmt.Errorf("token %s visited twice", tok.ID)
		}
		seen[tok.ID] = true
		if !changed {
			// A mass delete (Redis shrinks the set) and new tokens.
			changed = true
			for _, id := range drop {
				if err := s.DeleteToken(ctx, id); err != nil {
					return err
				}
			}
			for i := range 300 {
				nt := tokencache.Token{UserName: fmt.Sprint("new", i), ClientID: "c", RefreshToken: fmt.Sprint("nr", i)}
				if err := s.SaveToken(ctx, &nt); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range keep {
		if !seen[id] {
			t.Errorf("token %s, present throughout, not visited", id)
		}
	}
}
