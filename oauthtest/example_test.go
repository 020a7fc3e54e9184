package oauthtest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/tokencache/tokencache/oauthtest"
)

// Example exchanges an authorization code for tokens, refreshes them, and
// calls the protected resource, over plain HTTP. In a test, Start replaces
// the httptest lines.
func Example() {
	srv := oauthtest.New(oauthtest.WithDefaultClient())
	hs := httptest.NewServer(srv)
	defer hs.Close()

	token := func(form url.Values) map[string]any {
		form.Set("client_id", oauthtest.DefaultClientID)
		form.Set("client_secret", oauthtest.DefaultClientSecret)
		resp, err := http.PostForm(hs.URL+oauthtest.TokenPath, form)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return body
	}

	code := srv.IssueGrant(oauthtest.DefaultClientID, "alice@example.com")
	first := token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {oauthtest.DefaultRedirectURL}})
	second := token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first["refresh_token"].(string)}})
	reused := token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first["refresh_token"].(string)}})
	fmt.Println("rotated:", second["refresh_token"] != first["refresh_token"])
	fmt.Println("reuse:", reused["error"])

	req, _ := http.NewRequest(http.MethodGet, hs.URL+oauthtest.WhoAmIPath, nil)
	req.Header.Set("Authorization", "Bearer "+second["access_token"].(string))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var me struct{ User string }
	_ = json.NewDecoder(resp.Body).Decode(&me)
	fmt.Println("user:", me.User)

	st := srv.Stats()
	fmt.Printf("exchanges=%d refreshes=%d reuses=%d\n", st.Exchanges, st.Refreshes, st.Reuses)
	// Output:
	// rotated: true
	// reuse: invalid_grant
	// user: alice@example.com
	// exchanges=1 refreshes=1 reuses=1
}
