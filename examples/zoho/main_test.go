package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/tokencache/tokencache/oauthtest"
	"github.com/tokencache/tokencache/refresher"
)

const (
	testClientID = "1000.TEST"
	testSecret   = "test-client-secret"
	testUser     = "smoke@example.com"
)

// fakeZoho is an oauthtest server that behaves like Zoho Accounts, plus a
// stand-in for the CRM Users API that accepts only the Zoho-oauthtoken
// scheme and checks the token with the server's protected resource.
type fakeZoho struct {
	*oauthtest.Server
	url        string
	crmCalls   atomic.Int64
	wrongAuths atomic.Int64
}

func startFakeZoho(t *testing.T) *fakeZoho {
	t.Helper()
	f := &fakeZoho{}
	mux := http.NewServeMux()
	mux.HandleFunc("/crm/v8/users", func(w http.ResponseWriter, r *http.Request) {
		f.crmCalls.Add(1)
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Zoho-oauthtoken ") || r.URL.Query().Get("type") != "CurrentUser" {
			f.wrongAuths.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"code":"INVALID_TOKEN","message":"invalid oauth token"}`)
			return
		}
		check := httptest.NewRecorder()
		probe := r.Clone(r.Context())
		probe.URL.Path, probe.URL.RawQuery = oauthtest.WhoAmIPath, ""
		f.ServeHTTP(check, probe)
		if check.Code != http.StatusOK {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"code":"INVALID_TOKEN","message":"invalid oauth token"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"users":[{"full_name":"Smoke Tester","email":"smoke@example.com","status":"active",`+
			`"role":{"name":"CEO","id":"1"},"profile":{"name":"Administrator","id":"2"}}],"info":{"count":1}}`)
	})
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.ServeHTTP(w, r) }))
	ts := httptest.NewServer(mux)
	f.url = ts.URL
	f.Server = oauthtest.New(
		oauthtest.WithClient(testClientID, testSecret, ""),
		oauthtest.WithBaseURL(ts.URL),
		oauthtest.WithZohoQuirks(),
		oauthtest.WithRefreshMode(oauthtest.OmitRefreshToken),
	)
	t.Cleanup(func() {
		f.Close()
		ts.Close()
	})
	return f
}

// clearEnv keeps the developer's own Zoho settings out of the test.
func clearEnv(t *testing.T) {
	for _, name := range []string{"ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET", "ZOHO_GRANT_CODE", "ZOHO_REDIRECT_URL", "ZOHO_USER", "ZOHO_DC", "TOKENCACHE_REDIS_URL", "TOKENCACHE_NAMESPACE"} {
		t.Setenv(name, "")
	}
}

func runZoho(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, args, &out)
	return out.String(), err
}

func TestWithoutCredentialsExplains(t *testing.T) {
	clearEnv(t)
	_, err := runZoho(t)
	var ue usageError
	if !errors.As(err, &ue) {
		t.Fatalf("run() = %v, want a usageError (exit 2)", err)
	}
	for _, want := range []string{"--client-id", "--client-secret", "--user", "Self Client", "Generate Code", "ZohoCRM.users.READ", "--dc"} {
		if !strings.Contains(ue.msg, want) {
			t.Errorf("explanation lacks %q:\n%s", want, ue.msg)
		}
	}
}

func TestBadDataCentre(t *testing.T) {
	clearEnv(t)
	_, err := runZoho(t, "--client-id", "x", "--client-secret", "y", "--user", "z", "--dc", "mars")
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(ue.msg, "eu") {
		t.Fatalf("run() = %v, want a usageError listing the data centres", err)
	}
}

// TestFlow runs the example against the fake Zoho: the first run exchanges
// the grant code, a second process (run) reuses the stored token without a
// code, and a user nobody logged in for is told to bring one.
func TestFlow(t *testing.T) {
	clearEnv(t)
	zoho := startFakeZoho(t)
	mr := miniredis.RunT(t)
	t.Setenv("ZOHO_CLIENT_SECRET", testSecret)
	common := []string{
		"--client-id", testClientID,
		"--token-url", zoho.TokenURL(),
		"--redis", "redis://" + mr.Addr(),
	}

	code := zoho.IssueGrant(testClientID, testUser)
	out, err := runZoho(t, append(common, "--user", testUser, "--grant-code", code)...)
	if err != nil {
		t.Fatalf("first run: %v\n%s", err, out)
	}
	t.Logf("first run:\n%s", out)
	if want := "CRM user: Smoke Tester <smoke@example.com>, role CEO, profile Administrator, status active"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	if strings.Contains(out, code) || strings.Contains(out, testSecret) {
		t.Errorf("output shows a secret:\n%s", out)
	}

	// Same code again (it is single-use) and then none: the stored token is used.
	for _, extra := range [][]string{{"--grant-code", code}, nil} {
		out, err = runZoho(t, append(append(common, "--user", testUser), extra...)...)
		if err != nil {
			t.Fatalf("later run %v: %v\n%s", extra, err, out)
		}
	}
	if st := zoho.Stats(); st.Exchanges != 1 || st.InvalidGrants != 0 {
		t.Errorf("server saw %d exchanges and %d rejected grants, want 1 and 0", st.Exchanges, st.InvalidGrants)
	}
	if got := zoho.crmCalls.Load(); got != 3 {
		t.Errorf("CRM API called %d times, want 3", got)
	}
	if got := zoho.wrongAuths.Load(); got != 0 {
		t.Errorf("%d CRM calls without the Zoho-oauthtoken scheme", got)
	}

	// Nobody logged in as this user, and no code: exit 2 with an explanation.
	_, err = runZoho(t, append(common, "--user", "nobody@example.com")...)
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(ue.msg, "grant code") {
		t.Errorf("unknown user: run() = %v, want a usageError asking for a grant code", err)
	}

	// A code the server does not know is terminal.
	_, err = runZoho(t, append(common, "--user", "eve@example.com", "--grant-code", "1000.bogus")...)
	if !errors.Is(err, refresher.ErrInvalidGrant) {
		t.Errorf("bogus code: run() = %v, want ErrInvalidGrant", err)
	}
}
