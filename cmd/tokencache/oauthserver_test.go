package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/oauthserver"
	"github.com/tokencache/tokencache/oauthtest"
	"github.com/tokencache/tokencache/refresher"
)

// TestOAuthServer starts oauth-server on a free port, exchanges the seeded
// code and refreshes the token through refresher.NewHTTPEndpoint, gets a
// code from the authorization endpoint, and stops it.
func TestOAuthServer(t *testing.T) {
	t.Parallel()
	grantFile := filepath.Join(t.TempDir(), "grant")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr demoBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"oauth-server", "--addr", "127.0.0.1:0", "--token-lifetime", "2s",
			"--seed-user", "alice@example.com", "--grant-file", grantFile, "--log"}, strings.NewReader(""), &stdout, &stderr)
	}()
	tokenLine := regexp.MustCompile(`token URL: +(\S+)`)
	var tokenURL string
	for deadline := time.Now().Add(5 * time.Second); tokenURL == "" || !strings.Contains(stdout.String(), "written to"); {
		if time.Now().After(deadline) {
			t.Fatalf("oauth-server printed no token URL and grant file:\n%s\n%s", stdout.String(), stderr.String())
		}
		if m := tokenLine.FindStringSubmatch(stdout.String()); m != nil {
			tokenURL = m[1]
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, err := os.ReadFile(grantFile)
	if err != nil {
		t.Fatal(err)
	}
	code := strings.TrimSpace(string(b))
	if strings.Contains(stdout.String(), code) {
		t.Error("the grant code was printed although --grant-file was given")
	}

	ep := refresher.NewHTTPEndpoint(tokenURL)
	seed := tokencache.Token{ClientID: oauthtest.DefaultClientID, ClientSecret: oauthtest.DefaultClientSecret,
		RedirectURL: oauthtest.DefaultRedirectURL, GrantToken: code}
	tok, err := ep.Exchange(ctx, seed)
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(tok.Expiry); tok.AccessToken == "" || tok.RefreshToken == "" || left <= 0 || left > 3*time.Second {
		t.Fatalf("exchange gave a token expiring in %v, want about 2s", left)
	}
	if _, err := ep.Exchange(ctx, seed); !errors.Is(err, refresher.ErrInvalidGrant) {
		t.Errorf("second exchange of the code: %v, want ErrInvalidGrant", err)
	}
	renewed, err := ep.Refresh(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.RefreshToken == tok.RefreshToken {
		t.Error("the refresh token did not rotate")
	}
	if _, err := ep.Refresh(ctx, tok); !errors.Is(err, refresher.ErrInvalidGrant) {
		t.Errorf("reuse of a rotated refresh token: %v, want ErrInvalidGrant", err)
	}

	// The protected resource, and the authorization endpoint's redirect.
	base := strings.TrimSuffix(tokenURL, oauthtest.TokenPath)
	req, _ := http.NewRequest(http.MethodGet, base+oauthtest.WhoAmIPath, nil)
	req.Header.Set("Authorization", "Bearer "+renewed.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("whoami: %d, want 200", resp.StatusCode)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	q := url.Values{"response_type": {"code"}, "client_id": {oauthtest.DefaultClientID},
		"redirect_uri": {oauthtest.DefaultRedirectURL}, "login_hint": {"bob"}}
	resp, err = noRedirect.Get(base + oauthtest.AuthPath + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("code") == "" {
		t.Errorf("authorize: %d to %q, want a redirect with a code", resp.StatusCode, resp.Header.Get("Location"))
	}

	cancel()
	select {
	case c := <-done:
		if c != 0 {
			t.Errorf("oauth-server exited with %d: %s", c, stderr.String())
		}
	case <-time.After(oauthserver.ShutdownTimeout + time.Second):
		t.Fatal("oauth-server did not stop")
	}
	for _, secret := range []string{code, tok.AccessToken, tok.RefreshToken, oauthtest.DefaultClientSecret} {
		if strings.Contains(stdout.String()+stderr.String(), secret) {
			t.Error("a secret appears in the output")
		}
	}
	if !strings.Contains(stderr.String(), "token refreshed") {
		t.Errorf("--log logged no request:\n%s", stderr.String())
	}
}

func TestOAuthServerFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
		code int
	}{
		{"mode", []string{"--refresh-mode", "sometimes"}, "--refresh-mode", 2},
		{"lifetime", []string{"--token-lifetime", "0s"}, "--token-lifetime", 2},
		{"grant file alone", []string{"--grant-file", "x"}, "--seed-user", 2},
		{"base URL", []string{"--base-url", "oauth:8080"}, "--base-url", 2},
		{"address", []string{"--addr", "127.0.0.1:notaport"}, "notaport", 1},
		{"a store flag", []string{"--redis", "redis://127.0.0.1:6379"}, "unknown flag: --redis", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out demoBuffer
			code := run(context.Background(), append([]string{"oauth-server", "--addr", "127.0.0.1:0"}, tc.args...), strings.NewReader(""), &out, &out)
			if code != tc.code || !strings.Contains(out.String(), tc.want) {
				t.Errorf("exit %d, output %q; want %d and a message about %s", code, out.String(), tc.code, tc.want)
			}
		})
	}
}
