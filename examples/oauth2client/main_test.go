package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/lock"
	"github.com/tokencache/tokencache/oauthtest"
	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/refresher"
)

func runExample(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, args, &out); err != nil {
		t.Fatalf("run(%q): %v\n%s", args, err, out.String())
	}
	t.Logf("output:\n%s", out.String())
	return out.String()
}

// TestLocal runs the example as it runs by default, on its own Redis and
// OAuth server, for long enough that the token is renewed once.
func TestLocal(t *testing.T) {
	t.Setenv("OAUTH_CLIENT_SECRET", "")
	t.Setenv("OAUTH_GRANT_CODE", "")
	out := runExample(t, "--calls", "5", "--interval", "300ms", "--lifetime", "1s")
	if got := strings.Count(out, ": 200 "); got != 5 {
		t.Errorf("%d calls answered 200, want 5", got)
	}
	var ex, ref, rej, ok, unauth int
	i := strings.Index(out, "token server:")
	if i < 0 {
		t.Fatal("no token server line")
	}
	if _, err := fmt.Sscanf(out[i:], "token server: exchanges=%d refreshes=%d rejected=%d; API calls: ok=%d unauthorized=%d",
		&ex, &ref, &rej, &ok, &unauth); err != nil {
		t.Fatalf("token server line: %v", err)
	}
	if ex != 1 || ref < 1 || rej != 0 || ok != 5 || unauth != 0 {
		t.Errorf("exchanges=%d refreshes=%d rejected=%d ok=%d unauthorized=%d, want 1, ≥1, 0, 5, 0", ex, ref, rej, ok, unauth)
	}
}

// TestExternal points the example at a server it did not start, as a user
// points it at their provider.
func TestExternal(t *testing.T) {
	srv := oauthtest.Start(t, oauthtest.WithDefaultClient())
	mr := miniredis.RunT(t)
	t.Setenv("OAUTH_CLIENT_SECRET", oauthtest.DefaultClientSecret)
	t.Setenv("OAUTH_GRANT_CODE", srv.IssueGrant(oauthtest.DefaultClientID, "bob@example.com"))
	out := runExample(t,
		"--redis", "redis://"+mr.Addr(),
		"--token-url", srv.TokenURL(),
		"--api-url", srv.URL()+oauthtest.WhoAmIPath,
		"--user", "bob@example.com",
		"--calls", "2", "--interval", "10ms")
	if !strings.Contains(out, `"user":"bob@example.com"`) {
		t.Errorf("the API did not see bob:\n%s", out)
	}
	if st := srv.Stats(); st.Exchanges != 1 || st.APICalls != 2 {
		t.Errorf("server saw %d exchanges and %d API calls, want 1 and 2", st.Exchanges, st.APICalls)
	}
}

func TestExternalNeedsCredentials(t *testing.T) {
	t.Setenv("OAUTH_CLIENT_SECRET", "")
	var out bytes.Buffer
	err := run(context.Background(), []string{"--token-url", "http://127.0.0.1:1/token"}, &out)
	if err == nil || !strings.Contains(err.Error(), "OAUTH_CLIENT_SECRET") {
		t.Errorf("run() = %v, want an error naming what to pass", err)
	}
}

// TestErrorsReachTheCaller checks what the README says: a refresher error
// comes out of the *http.Client's call, and errors.Is still finds it.
func TestErrorsReachTheCaller(t *testing.T) {
	ctx := context.Background()
	srv := oauthtest.Start(t, oauthtest.WithDefaultClient(), oauthtest.WithAccessTokenLifetime(time.Second))
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rdb.Close() })
	locker := lock.New(rdb)
	t.Cleanup(func() { locker.Close() })
	r := refresher.New(redisstore.New(rdb), locker, refresher.NewHTTPEndpoint(srv.TokenURL()))
	t.Cleanup(func() { r.Close() })

	tok, err := r.Token(ctx, tokencache.Token{
		UserName: "carol@example.com", ClientID: oauthtest.DefaultClientID,
		ClientSecret: oauthtest.DefaultClientSecret, RedirectURL: oauthtest.DefaultRedirectURL,
		GrantToken: srv.IssueGrant(oauthtest.DefaultClientID, "carol@example.com"),
	})
	if err != nil {
		t.Fatal(err)
	}
	client := oauth2.NewClient(ctx, r.TokenSource(ctx, tokencache.Token{ID: tok.ID}))
	srv.Revoke("carol@example.com")                          // the refresh token dies…
	time.Sleep(time.Until(tok.Expiry) + 10*time.Millisecond) // …and so does the access token

	_, err = client.Get(srv.URL() + oauthtest.WhoAmIPath)
	if !errors.Is(err, refresher.ErrInvalidGrant) {
		t.Errorf("client.Get error = %v, want one wrapping refresher.ErrInvalidGrant", err)
	}
}
