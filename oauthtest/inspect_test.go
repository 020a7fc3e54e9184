package oauthtest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"github.com/tokencache/tokencache/oauthtest"
)

func TestRefreshTokenState(t *testing.T) {
	s := oauthtest.Start(t, oauthtest.WithDefaultClient(), oauthtest.WithRevokeOnReuse(true))
	tok := s.IssueTokens(oauthtest.DefaultClientID, "alice")
	if user, st := s.RefreshTokenState(tok.RefreshToken); user != "alice" || st != oauthtest.RefreshActive {
		t.Fatalf("fresh token: %q %v, want alice active", user, st)
	}
	if _, st := s.RefreshTokenState("rt_never"); st != oauthtest.RefreshUnknown {
		t.Fatalf("unknown token: %v, want unknown", st)
	}
	refresh := func(rt string) (string, int) {
		t.Helper()
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
			"client_id": {oauthtest.DefaultClientID}, "client_secret": {oauthtest.DefaultClientSecret}}
		resp, err := http.PostForm(s.TokenURL(), form)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		var body struct {
			RefreshToken string `json:"refresh_token"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return body.RefreshToken, resp.StatusCode
	}
	next, code := refresh(tok.RefreshToken)
	if code != http.StatusOK {
		t.Fatalf("refresh: status %d", code)
	}
	if _, st := s.RefreshTokenState(tok.RefreshToken); st != oauthtest.RefreshRetired {
		t.Fatalf("rotated token: %v, want retired", st)
	}
	if _, st := s.RefreshTokenState(next); st != oauthtest.RefreshActive {
		t.Fatalf("successor: %v, want active", st)
	}
	if got := s.FamiliesRevoked("alice"); got != 0 {
		t.Fatalf("FamiliesRevoked before a reuse = %d, want 0", got)
	}
	if _, code := refresh(tok.RefreshToken); code != http.StatusBadRequest {
		t.Fatalf("reuse: status %d, want 400", code)
	}
	if _, st := s.RefreshTokenState(next); st != oauthtest.RefreshRevoked {
		t.Fatalf("successor after a reuse: %v, want revoked", st)
	}
	if got := s.FamiliesRevoked("alice"); got != 1 {
		t.Fatalf("FamiliesRevoked after a reuse = %d, want 1", got)
	}
	if got := s.Stats().Requests; got != 2 {
		t.Fatalf("Requests = %d, want 2 (RefreshTokenState counts none)", got)
	}
}
