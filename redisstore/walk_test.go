package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

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
