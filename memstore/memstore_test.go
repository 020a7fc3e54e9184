package memstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/memstore"
	"github.com/tokencache/tokencache/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) tokencache.Store { return memstore.New() })
}

// Walk visits every live token once, in ID order, and fn may use the store.
func TestWalk(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	want := map[string]bool{}
	for i := range 600 {
		tok := tokencache.Token{UserName: fmt.Sprint("u", i), ClientID: "c", RefreshToken: fmt.Sprint("r", i)}
		if err := s.SaveToken(ctx, &tok); err != nil {
			t.Fatal(err)
		}
		want[tok.ID] = true
	}
	var ids []string
	err := s.Walk(ctx, func(tok tokencache.Token) error {
		ids = append(ids, tok.ID)
		nt := tokencache.Token{UserName: "new-" + tok.ID, ClientID: "c", RefreshToken: "x" + tok.ID}
		return s.SaveToken(ctx, &nt) // no deadlock; not visited
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != len(want) || !slices.IsSorted(ids) {
		t.Fatalf("Walk visited %d tokens (sorted: %v), want %d", len(ids), slices.IsSorted(ids), len(want))
	}
	for _, id := range ids {
		if !want[id] {
			t.Fatalf("Walk visited %s, saved during the walk", id)
		}
	}
}
