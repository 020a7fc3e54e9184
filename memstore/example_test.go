package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/memstore"
)

// Save a token, find it by user name and client ID, and refresh it with a
// compare-and-set save. Afterwards the old access token finds nothing.
func Example() {
	ctx := context.Background()
	store := memstore.New()

	tok := tokencache.Token{
		UserName:     "alice@example.com",
		ClientID:     "1000.ABC",
		ClientSecret: "client-secret",
		RefreshToken: "1000.refresh",
		AccessToken:  "1000.access-1",
		Expiry:       time.Now().Add(time.Hour),
	}
	if err := store.SaveToken(ctx, &tok); err != nil {
		fmt.Println("save:", err)
		return
	}
	fmt.Println("saved version", tok.Version)

	found, err := store.FindToken(ctx, tokencache.Token{UserName: "alice@example.com", ClientID: "1000.ABC"})
	if err != nil {
		fmt.Println("find:", err)
		return
	}
	fmt.Println("found version", found.Version, "same ID:", found.ID == tok.ID)

	// Refresh: a new access token, saved only if nobody saved since we read
	// found (its Version); a stale Version would give ErrConflict.
	old := found.AccessToken
	found.AccessToken = "1000.access-2"
	found.Expiry = time.Now().Add(time.Hour)
	if err := store.SaveToken(ctx, &found); err != nil {
		fmt.Println("refresh:", err)
		return
	}
	fmt.Println("refreshed to version", found.Version)

	_, err = store.FindToken(ctx, tokencache.Token{AccessToken: old})
	fmt.Println("old access token not found:", errors.Is(err, tokencache.ErrNotFound))

	current, err := store.FindToken(ctx, tokencache.Token{AccessToken: "1000.access-2"})
	fmt.Println("new access token finds version", current.Version, err)

	stale := tok // still holds Version 1
	stale.AccessToken = "1000.access-3"
	err = store.SaveToken(ctx, &stale)
	fmt.Println("stale save conflicts:", errors.Is(err, tokencache.ErrConflict))
	// Output:
	// saved version 1
	// found version 1 same ID: true
	// refreshed to version 2
	// old access token not found: true
	// new access token finds version 2 <nil>
	// stale save conflicts: true
}
