package main

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/oauthtest"
)

// TestTokenRefreshesOnceForManyCallers: scripts that ask for the same
// expired token at once get one refresh between them, through the fleet's
// lock, and all print the new access token.
func TestTokenRefreshesOnceForManyCallers(t *testing.T) {
	e := newAdminEnv(t)
	e.tg.ExpireOnWallClock()
	srv := oauthtest.Start(t, oauthtest.WithDefaultClient(), oauthtest.WithAccessTokenLifetime(time.Hour),
		oauthtest.WithRefreshMode(oauthtest.RotateRefreshToken), oauthtest.WithAPIDomain("https://api.example.com"))
	issued := srv.IssueTokens(oauthtest.DefaultClientID, "alice")
	tok := e.save(t, tokencache.Token{
		UserName: "alice", ClientID: oauthtest.DefaultClientID, ClientSecret: oauthtest.DefaultClientSecret,
		AccessToken: issued.AccessToken, RefreshToken: issued.RefreshToken, Expiry: time.Now().Add(-time.Minute),
	})
	args := []string{"token", "--user", "alice", "--client", oauthtest.DefaultClientID, "--token-url", srv.TokenURL()}

	const callers = 6
	var wg sync.WaitGroup
	results := make([]runResult, callers)
	for i := range callers {
		wg.Go(func() { results[i] = e.run(t, "", args...) })
	}
	wg.Wait()
	if st := srv.Stats(); st.Refreshes != 1 || st.Requests != 1 {
		t.Errorf("%d token commands made %d refreshes in %d requests, want 1", callers, st.Refreshes, st.Requests)
	}
	stored, err := e.store.FindTokenByID(context.Background(), tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.AccessToken == issued.AccessToken || stored.Version != tok.Version+1 {
		t.Fatalf("the stored token was not renewed: version %d", stored.Version)
	}
	for i, r := range results {
		wantCode(t, "token", r, 0)
		if r.stdout != stored.AccessToken+"\n" || r.stderr != "" {
			t.Errorf("caller %d printed %q (stderr %q), want the new access token and a newline", i, r.stdout, r.stderr)
		}
	}

	// --json: the token, its expiry and API domain; no refresh this time.
	r := e.run(t, "", append(args, "--json")...)
	wantCode(t, "token --json", r, 0)
	var out struct {
		AccessToken string     `json:"access_token"`
		TokenType   string     `json:"token_type"`
		Expiry      *time.Time `json:"expiry"`
		APIDomain   string     `json:"api_domain"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("token --json: %v\n%s", err, r.stdout)
	}
	if out.AccessToken != stored.AccessToken || out.TokenType != "Bearer" || out.Expiry == nil || !out.Expiry.Equal(stored.Expiry) ||
		out.APIDomain != "https://api.example.com" {
		t.Errorf("token --json = %+v, want the stored token %v", out, stored)
	}
	if st := srv.Stats(); st.Refreshes != 1 {
		t.Errorf("a fresh token was refreshed again: %d refreshes", st.Refreshes)
	}

	// By ID, and a token that never expires: expiry null.
	never := e.save(t, tokencache.Token{UserName: "svc", ClientID: "c", AccessToken: secretMark + "-never"})
	r = e.run(t, "", "token", "--id", never.ID, "--token-url", srv.TokenURL(), "--json")
	wantCode(t, "token --id --json", r, 0)
	if !strings.Contains(r.stdout, `"expiry": null`) {
		t.Errorf("a never-expiring token: %s", r.stdout)
	}
}

func TestTokenErrors(t *testing.T) {
	e := newAdminEnv(t)
	srv := oauthtest.Start(t, oauthtest.WithDefaultClient())
	base := []string{"--token-url", srv.TokenURL()}

	// No such token: exit 3, "log in first".
	line := oneLineError(t, "no token", e.run(t, "", append([]string{"token", "--user", "nobody", "--client", "c"}, base...)...), cli.ExitNotFound)
	if !strings.Contains(line, "must log in first") {
		t.Errorf("no token: %q", line)
	}
	// A refresh token the server does not know: exit 1, "authorize again", no secret.
	e.save(t, tokencache.Token{UserName: "dead", ClientID: oauthtest.DefaultClientID, ClientSecret: oauthtest.DefaultClientSecret,
		AccessToken: secretMark + "-a", RefreshToken: secretMark + "-unknown", Expiry: time.Now().Add(-time.Minute)})
	r := e.run(t, "", append([]string{"token", "--user", "dead", "--client", oauthtest.DefaultClientID}, base...)...)
	line = oneLineError(t, "dead refresh token", r, cli.ExitFailure)
	noSecrets(t, "dead refresh token", r)
	if !strings.Contains(line, "authorize again") {
		t.Errorf("dead refresh token: %q", line)
	}
	for name, args := range map[string][]string{
		"no selection":        {"token", "--token-url", "eu"},
		"user without client": {"token", "--user", "u", "--token-url", "eu"},
		"ID and user":         {"token", "--id", "x", "--user", "u", "--client", "c", "--token-url", "eu"},
		"no token URL":        {"token", "--user", "u", "--client", "c"},
		"bad data centre":     {"token", "--user", "u", "--client", "c", "--token-url", "mars"},
		"bad ID":              {"token", "--id", "a/b", "--token-url", "eu"},
	} {
		oneLineError(t, name, e.run(t, "", args...), cli.ExitUsage)
	}
}
