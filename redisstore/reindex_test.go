package redisstore_test

import (
	"errors"
	"testing"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/redisstore"
)

// TestIndexKeyRotation changes the index key: tokens are found through the
// previous key until Reindex has moved their entries, and a lookup that hits
// through the previous key moves that token's entries at once.
func TestIndexKeyRotation(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	f := newFixture(t, tg, rdb)
	oldKey, newKey := []byte("old-key-0123456789abcdef0123456789"), []byte("new-key-0123456789abcdef0123456789")
	before := f.store(redisstore.WithIndexKey(oldKey))
	a := mustSave(t, before, tokencache.Token{UserName: "a", ClientID: "c", RefreshToken: "ra", AccessToken: "aa"})
	b := mustSave(t, before, tokencache.Token{UserName: "b", ClientID: "c", RefreshToken: "rb", AccessToken: "ab"})
	plain := mustSave(t, f.store(), tokencache.Token{UserName: "p", ClientID: "c", AccessToken: "ap"})

	rotated := func() *redisstore.Store {
		return f.store(redisstore.WithIndexKey(newKey), redisstore.WithPreviousIndexKeys(oldKey, nil), redisstore.WithHintCacheSize(0))
	}
	alone := f.store(redisstore.WithIndexKey(newKey), redisstore.WithHintCacheSize(0))
	if _, err := alone.FindToken(ctx, tokencache.Token{UserName: "a", ClientID: "c"}); !errors.Is(err, tokencache.ErrNotFound) {
		t.Fatalf("new key alone before any move: %v, want ErrNotFound", err)
	}
	// A hit through the previous key moves the token.
	if got, err := rotated().FindToken(ctx, tokencache.Token{RefreshToken: "ra", ClientID: "c"}); err != nil || got.ID != a.ID {
		t.Fatalf("FindToken through the previous key = %q, %v", got.ID, err)
	}
	if got, err := alone.FindToken(ctx, tokencache.Token{UserName: "a", ClientID: "c"}); err != nil || got.ID != a.ID {
		t.Fatalf("after the hit, the new key alone finds a: %q, %v", got.ID, err)
	}
	// A save through the rotated store updates b instead of adding a token.
	up := tokencache.Token{UserName: "b", ClientID: "c", RefreshToken: "rb", AccessToken: "ab2"}
	if err := rotated().SaveToken(ctx, &up); err != nil || up.ID != b.ID {
		t.Fatalf("save of b through the rotated store = %q, %v; want %s", up.ID, err, b.ID)
	}
	moved, err := rotated().Reindex(ctx)
	if err != nil || moved != 3 {
		t.Fatalf("Reindex = %d, %v; want 3", moved, err)
	}
	for _, q := range []struct {
		q  tokencache.Token
		id string
	}{
		{tokencache.Token{UserName: "a", ClientID: "c"}, a.ID},
		{tokencache.Token{RefreshToken: "rb", ClientID: "c"}, b.ID},
		{tokencache.Token{AccessToken: "ab2"}, b.ID},
		{tokencache.Token{UserName: "p", ClientID: "c"}, plain.ID},
	} {
		if got, err := alone.FindToken(ctx, q.q); err != nil || got.ID != q.id {
			t.Errorf("after Reindex the new key alone finds %q, %v; want %s", got.ID, err, q.id)
		}
	}
	oldOnly := f.store(redisstore.WithIndexKey(oldKey), redisstore.WithHintCacheSize(0))
	if _, err := oldOnly.FindToken(ctx, tokencache.Token{UserName: "a", ClientID: "c"}); !errors.Is(err, tokencache.ErrNotFound) {
		t.Errorf("the old key's entries survived Reindex: %v", err)
	}
	if n := len(f.all()); n != 3 {
		t.Errorf("%d tokens after the rotation, want 3", n)
	}
}

// TestPut installs exact revisions, as the durable record hands them over.
func TestPut(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	f := newFixture(t, tg, rdb)
	s := f.store()
	tok := tokencache.Token{ID: "p1", UserName: "u", ClientID: "c", AccessToken: "a7", Version: 7}
	if err := redisstore.Put(ctx, s, tok); err != nil {
		t.Fatal(err)
	}
	if got, ok := f.find(tokencache.Token{UserName: "u", ClientID: "c"}); !ok || got.Version != 7 || got.AccessToken != "a7" {
		t.Fatalf("after put: %v, %v", got, ok)
	}
	older := tok
	older.Version, older.AccessToken = 5, "a5"
	if err := redisstore.Put(ctx, s, older); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.FindTokenByID(ctx, "p1"); got.Version != 7 || got.AccessToken != "a7" {
		t.Fatalf("an older put replaced the newer revision: %v", got)
	}
	newer := tok
	newer.Version, newer.AccessToken = 9, "a9"
	if err := redisstore.Put(ctx, s, newer); err != nil {
		t.Fatal(err)
	}
	if got, ok := f.find(tokencache.Token{AccessToken: "a9"}); !ok || got.Version != 9 {
		t.Fatalf("after a newer put: %v, %v", got, ok)
	}
	if _, ok := f.find(tokencache.Token{AccessToken: "a7"}); ok {
		t.Fatalf("the replaced access token still finds the token")
	}
	// A save continues from the installed revision.
	next := tokencache.Token{UserName: "u", ClientID: "c", AccessToken: "a10", Version: 9}
	if err := s.SaveToken(ctx, &next); err != nil || next.Version != 10 || next.ID != "p1" {
		t.Fatalf("save after put = %v, %v", next, err)
	}
}
