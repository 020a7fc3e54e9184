package tokencache_test

import (
	"fmt"
	"time"

	"github.com/tokencache/tokencache"
)

// A Token prints with its secrets redacted, so it can go into logs and error
// messages. A secret that is set shows as [redacted]; one that is empty shows
// as "", so the reader can still tell which are present.
func ExampleToken_String() {
	tok := tokencache.Token{
		ID:           "t1",
		UserName:     "alice@example.com",
		ClientID:     "1000.ABC",
		ClientSecret: "client-secret",
		RefreshToken: "1000.refresh",
		AccessToken:  "1000.access",
		Expiry:       time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC),
		APIDomain:    "https://www.zohoapis.com",
		Version:      2,
	}
	fmt.Println(tok)
	fmt.Printf("%#v\n", tok)
	// Output:
	// Token{ID:t1, UserName:alice@example.com, ClientID:1000.ABC, ClientSecret:[redacted], RefreshToken:[redacted], AccessToken:[redacted], GrantToken:"", Expiry:2026-03-01T13:00:00Z, RedirectURL:"", APIDomain:https://www.zohoapis.com, Version:2}
	// tokencache.Token{ID:"t1", UserName:"alice@example.com", ClientID:"1000.ABC", ClientSecret:[redacted], RefreshToken:[redacted], AccessToken:[redacted], GrantToken:"", Expiry:"2026-03-01T13:00:00Z", RedirectURL:"", APIDomain:"https://www.zohoapis.com", Version:2}
}

// The first of ID, UserName, GrantToken, RefreshToken and AccessToken that a
// query sets decides which stored token it means. ClientID only narrows the
// user-name, grant-token and refresh-token rules.
func ExampleRuleOf() {
	queries := []tokencache.Token{
		{ID: "t1", UserName: "alice@example.com"},
		{UserName: "alice@example.com", ClientID: "1000.ABC", AccessToken: "1000.access"},
		{GrantToken: "1000.grant", ClientID: "1000.ABC"},
		{RefreshToken: "1000.refresh", AccessToken: "1000.access"},
		{AccessToken: "1000.access"},
		{ClientID: "1000.ABC"},
	}
	for _, q := range queries {
		fmt.Println(tokencache.RuleOf(q))
	}
	// Output:
	// id
	// user_name
	// grant_token
	// refresh_token
	// access_token
	// none
}

// ValidAt counts an access token as expired ExpiryMargin before its Expiry.
// A token whose access token has expired is still live, and so still kept
// by a store, while it has a refresh token.
func ExampleToken_ValidAt() {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tok := tokencache.Token{
		AccessToken:  "1000.access",
		RefreshToken: "1000.refresh",
		Expiry:       now.Add(time.Minute),
	}
	for _, d := range []time.Duration{0, 45 * time.Second, 55 * time.Second, 2 * time.Minute} {
		at := now.Add(d)
		fmt.Printf("after %v: valid %v, live %v\n", d, tok.ValidAt(at), tok.Live(at))
	}
	// Output:
	// after 0s: valid true, live true
	// after 45s: valid true, live true
	// after 55s: valid false, live true
	// after 2m0s: valid false, live true
}
