package oauthtest_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tokencache/tokencache/oauthtest"
)

func TestListenHasATokenURL(t *testing.T) {
	srv, stop, err := oauthtest.Listen("127.0.0.1:0", oauthtest.WithDefaultClient())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if !strings.HasPrefix(srv.TokenURL(), "http://127.0.0.1:") || !strings.HasSuffix(srv.TokenURL(), oauthtest.TokenPath) {
		t.Fatalf("TokenURL() = %q", srv.TokenURL())
	}
	code := srv.IssueGrant(oauthtest.DefaultClientID, "u")
	resp, err := http.PostForm(srv.TokenURL(), url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {oauthtest.DefaultRedirectURL},
		"client_id": {oauthtest.DefaultClientID}, "client_secret": {oauthtest.DefaultClientSecret},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("exchange at TokenURL(): %d", resp.StatusCode)
	}
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}
