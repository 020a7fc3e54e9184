package oauthtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokencache/tokencache/oauthtest"
)

const (
	clientID     = "client-1"
	clientSecret = "secret-1"
	redirectURL  = "https://app.example/callback"
)

// answer is a decoded token endpoint answer.
type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (a answer) str(key string) string {
	s, _ := a.body[key].(string)
	return s
}

// auth says how a request authenticates its client.
type auth struct {
	id, secret string
	basic      bool
	raw        bool // Basic without form-encoding, as curl -u does
}

var bodyAuth = auth{id: clientID, secret: clientSecret}

func (a auth) apply(form url.Values, req *http.Request) {
	switch {
	case a.basic && a.raw:
		req.SetBasicAuth(a.id, a.secret)
	case a.basic:
		req.SetBasicAuth(url.QueryEscape(a.id), url.QueryEscape(a.secret))
	default:
		if a.id != "" {
			form.Set("client_id", a.id)
		}
		if a.secret != "" {
			form.Set("client_secret", a.secret)
		}
	}
}

func postCtx(ctx context.Context, t *testing.T, tokenURL string, a auth, form url.Values) (answer, error) {
	t.Helper()
	form = cloneValues(form)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.apply(form, req)
	req.Body = io.NopCloser(strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	ans := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &ans.body)
	return ans, nil
}

func post(t *testing.T, tokenURL string, a auth, form url.Values) answer {
	t.Helper()
	ans, err := postCtx(t.Context(), t, tokenURL, a, form)
	if err != nil {
		t.Fatal(err)
	}
	return ans
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vv := range v {
		out[k] = append([]string(nil), vv...)
	}
	return out
}

func exchangeForm(code string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURL}}
}

func refreshForm(rt string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
}

func start(t *testing.T, opts ...oauthtest.Option) *oauthtest.Server {
	t.Helper()
	return oauthtest.Start(t, append([]oauthtest.Option{oauthtest.WithClient(clientID, clientSecret, redirectURL)}, opts...)...)
}

func wantError(t *testing.T, a answer, status int, code string) {
	t.Helper()
	if a.status != status || a.str("error") != code {
		t.Fatalf("answer = %d %s, want %d with error %q", a.status, a.raw, status, code)
	}
}

func whoami(t *testing.T, srv *oauthtest.Server, scheme, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL()+oauthtest.WhoAmIPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if scheme != "" {
		req.Header.Set("Authorization", scheme+" "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		User string `json:"user"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.User
}

func TestExchange(t *testing.T) {
	for _, tc := range []struct {
		name      string
		auth      auth
		wantBasic int64
	}{
		{"body", bodyAuth, 0},
		{"basic", auth{id: clientID, secret: clientSecret, basic: true}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := start(t)
			code := srv.IssueGrant(clientID, "alice@example.com")
			a := post(t, srv.TokenURL(), tc.auth, exchangeForm(code))
			if a.status != http.StatusOK {
				t.Fatalf("status = %d, body %s", a.status, a.raw)
			}
			at, rt := a.str("access_token"), a.str("refresh_token")
			if len(at) < 22 || len(rt) < 22 || at == rt {
				t.Errorf("access_token %q, refresh_token %q: want two distinct random tokens", at, rt)
			}
			if got := a.body["expires_in"]; got != float64(3600) {
				t.Errorf("expires_in = %v, want 3600", got)
			}
			if got := a.str("token_type"); got != "Bearer" {
				t.Errorf("token_type = %q, want Bearer", got)
			}
			if got := a.str("api_domain"); got != srv.URL() {
				t.Errorf("api_domain = %q, want the server's URL %q", got, srv.URL())
			}
			if got := a.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			if status, user := whoami(t, srv, "Bearer", at); status != http.StatusOK || user != "alice@example.com" {
				t.Errorf("whoami = %d %q, want 200 alice@example.com", status, user)
			}

			// A code is single-use.
			wantError(t, post(t, srv.TokenURL(), tc.auth, exchangeForm(code)), http.StatusBadRequest, "invalid_grant")

			st := srv.Stats()
			want := oauthtest.Stats{Requests: 2, Exchanges: 1, InvalidGrants: 1, APICalls: 1,
				BasicAuth: 2 * tc.wantBasic, BodyAuth: 2 * (1 - tc.wantBasic)}
			if st != want {
				t.Errorf("Stats = %+v, want %+v", st, want)
			}
		})
	}
}

func TestShortTokenPath(t *testing.T) {
	srv := start(t)
	a := post(t, srv.URL()+oauthtest.ShortTokenPath, bodyAuth, exchangeForm(srv.IssueGrant(clientID, "u")))
	if a.status != http.StatusOK || a.str("access_token") == "" {
		t.Fatalf("answer = %d %s, want 200 with tokens", a.status, a.raw)
	}
}

func TestTokenEndpointRejects(t *testing.T) {
	now := time.Now()
	var clock atomic.Int64 // nanoseconds added to now
	srv := start(t,
		oauthtest.WithClient("client-2", "secret-2", ""),
		oauthtest.WithClock(func() time.Time { return now.Add(time.Duration(clock.Load())) }),
		oauthtest.WithGrantLifetime(time.Minute))

	expired := srv.IssueGrant(clientID, "u")
	clock.Store(int64(2 * time.Minute))
	t.Cleanup(func() { clock.Store(0) })

	for _, tc := range []struct {
		name       string
		auth       auth
		form       url.Values
		status     int
		code       string
		wwwAuth    bool
		statsField func(oauthtest.Stats) int64
	}{
		{"wrong secret in body", auth{id: clientID, secret: "nope"}, exchangeForm(srv.IssueGrant(clientID, "u")),
			401, "invalid_client", false, func(s oauthtest.Stats) int64 { return s.InvalidClients }},
		{"wrong secret in basic", auth{id: clientID, secret: "nope", basic: true}, exchangeForm(srv.IssueGrant(clientID, "u")),
			401, "invalid_client", true, func(s oauthtest.Stats) int64 { return s.InvalidClients }},
		{"unknown client", auth{id: "who", secret: "x"}, exchangeForm(srv.IssueGrant(clientID, "u")),
			401, "invalid_client", false, func(s oauthtest.Stats) int64 { return s.InvalidClients }},
		{"no client authentication", auth{}, exchangeForm(srv.IssueGrant(clientID, "u")),
			401, "invalid_client", false, func(s oauthtest.Stats) int64 { return s.InvalidClients }},
		{"unknown code", bodyAuth, exchangeForm("gc_nope"),
			400, "invalid_grant", false, func(s oauthtest.Stats) int64 { return s.InvalidGrants }},
		{"expired code", bodyAuth, exchangeForm(expired),
			400, "invalid_grant", false, func(s oauthtest.Stats) int64 { return s.InvalidGrants }},
		{"code of another client", auth{id: "client-2", secret: "secret-2"}, exchangeForm(srv.IssueGrant(clientID, "u")),
			400, "invalid_grant", false, func(s oauthtest.Stats) int64 { return s.InvalidGrants }},
		{"redirect mismatch", bodyAuth,
			url.Values{"grant_type": {"authorization_code"}, "code": {srv.IssueGrant(clientID, "u")}, "redirect_uri": {"https://evil.example/"}},
			400, "invalid_grant", false, func(s oauthtest.Stats) int64 { return s.InvalidGrants }},
		{"redirect missing", bodyAuth,
			url.Values{"grant_type": {"authorization_code"}, "code": {srv.IssueGrant(clientID, "u")}},
			400, "invalid_grant", false, func(s oauthtest.Stats) int64 { return s.InvalidGrants }},
		{"unknown refresh token", bodyAuth, refreshForm("rt_nope"),
			400, "invalid_grant", false, func(s oauthtest.Stats) int64 { return s.InvalidGrants }},
		{"missing code", bodyAuth, url.Values{"grant_type": {"authorization_code"}},
			400, "invalid_request", false, func(s oauthtest.Stats) int64 { return s.InvalidRequests }},
		{"missing refresh token", bodyAuth, url.Values{"grant_type": {"refresh_token"}},
			400, "invalid_request", false, func(s oauthtest.Stats) int64 { return s.InvalidRequests }},
		{"missing grant type", bodyAuth, url.Values{"code": {"x"}},
			400, "invalid_request", false, func(s oauthtest.Stats) int64 { return s.InvalidRequests }},
		{"unsupported grant type", bodyAuth, url.Values{"grant_type": {"password"}},
			400, "unsupported_grant_type", false, func(s oauthtest.Stats) int64 { return s.InvalidRequests }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.ResetStats()
			a := post(t, srv.TokenURL(), tc.auth, tc.form)
			wantError(t, a, tc.status, tc.code)
			if got := a.header.Get("WWW-Authenticate") != ""; got != tc.wwwAuth {
				t.Errorf("WWW-Authenticate present = %v, want %v", got, tc.wwwAuth)
			}
			st := srv.Stats()
			if got := tc.statsField(st); got != 1 {
				t.Errorf("Stats = %+v: the counter for %s is %d, want 1", st, tc.code, got)
			}
			if st.Exchanges+st.Refreshes != 0 {
				t.Errorf("Stats = %+v, want no success", st)
			}
		})
	}
}

func TestTokenEndpointMalformedRequests(t *testing.T) {
	srv := start(t)
	do := func(t *testing.T, req *http.Request) answer {
		t.Helper()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
		_ = json.Unmarshal(raw, &a.body)
		return a
	}
	form := exchangeForm(srv.IssueGrant(clientID, "u"))
	bodyAuth.apply(form, nil)

	t.Run("GET", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.TokenURL()+"?"+form.Encode(), nil)
		a := do(t, req)
		wantError(t, a, http.StatusMethodNotAllowed, "invalid_request")
		if got := a.header.Get("Allow"); got != "POST" {
			t.Errorf("Allow = %q, want POST", got)
		}
	})
	t.Run("JSON body", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.TokenURL(), strings.NewReader(`{"grant_type":"authorization_code"}`))
		req.Header.Set("Content-Type", "application/json")
		wantError(t, do(t, req), http.StatusBadRequest, "invalid_request")
	})
	t.Run("both auth styles", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.TokenURL(), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(clientID, clientSecret)
		wantError(t, do(t, req), http.StatusBadRequest, "invalid_request")
	})
	// The code survived all of the above.
	if a := post(t, srv.TokenURL(), bodyAuth, form); a.status != http.StatusOK {
		t.Fatalf("exchange after malformed requests = %d %s, want 200", a.status, a.raw)
	}
}

func TestBasicAuthEncoding(t *testing.T) {
	const id, secret = "id+odd/chars", "s3cr%t+with:colons spaces&="
	srv := oauthtest.Start(t, oauthtest.WithClient(id, secret, ""))
	for _, raw := range []bool{false, true} {
		a := post(t, srv.TokenURL(), auth{id: id, secret: secret, basic: true, raw: raw},
			url.Values{"grant_type": {"authorization_code"}, "code": {srv.IssueGrant(id, "u")}})
		if a.status != http.StatusOK {
			t.Errorf("raw=%v: status = %d %s, want 200", raw, a.status, a.raw)
		}
	}
	if got := srv.Stats().BasicAuth; got != 2 {
		t.Errorf("BasicAuth = %d, want 2", got)
	}
}

// exchangeTokens exchanges a new code and returns the access and refresh
// tokens.
func exchangeTokens(t *testing.T, srv *oauthtest.Server, user string) (string, string) {
	t.Helper()
	a := post(t, srv.TokenURL(), bodyAuth, exchangeForm(srv.IssueGrant(clientID, user)))
	if a.status != http.StatusOK {
		t.Fatalf("exchange = %d %s", a.status, a.raw)
	}
	return a.str("access_token"), a.str("refresh_token")
}

func TestRefreshRotation(t *testing.T) {
	srv := start(t)
	at0, rt0 := exchangeTokens(t, srv, "alice")

	a := post(t, srv.TokenURL(), bodyAuth, refreshForm(rt0))
	if a.status != http.StatusOK {
		t.Fatalf("refresh = %d %s", a.status, a.raw)
	}
	at1, rt1 := a.str("access_token"), a.str("refresh_token")
	if rt1 == "" || rt1 == rt0 || at1 == "" || at1 == at0 {
		t.Fatalf("refresh answer %s: want a new access token and a new refresh token", a.raw)
	}

	// The retired refresh token is a reuse.
	wantError(t, post(t, srv.TokenURL(), bodyAuth, refreshForm(rt0)), http.StatusBadRequest, "invalid_grant")
	// Without WithRevokeOnReuse the family survives.
	if a := post(t, srv.TokenURL(), bodyAuth, refreshForm(rt1)); a.status != http.StatusOK {
		t.Fatalf("refresh with the current token after a reuse = %d %s, want 200", a.status, a.raw)
	}
	// Old access tokens live until they expire.
	if status, _ := whoami(t, srv, "Bearer", at0); status != http.StatusOK {
		t.Errorf("whoami with the first access token = %d, want 200", status)
	}

	st := srv.Stats()
	if st.Refreshes != 2 || st.Reuses != 1 || st.InvalidGrants != 1 {
		t.Errorf("Stats = %+v, want 2 refreshes, 1 reuse, 1 invalid grant", st)
	}
}

func TestRevokeOnReuse(t *testing.T) {
	srv := start(t, oauthtest.WithRevokeOnReuse(true))
	_, rt0 := exchangeTokens(t, srv, "alice")
	a := post(t, srv.TokenURL(), bodyAuth, refreshForm(rt0))
	at1, rt1 := a.str("access_token"), a.str("refresh_token")

	wantError(t, post(t, srv.TokenURL(), bodyAuth, refreshForm(rt0)), http.StatusBadRequest, "invalid_grant")
	wantError(t, post(t, srv.TokenURL(), bodyAuth, refreshForm(rt1)), http.StatusBadRequest, "invalid_grant")
	if status, _ := whoami(t, srv, "Bearer", at1); status != http.StatusUnauthorized {
		t.Errorf("whoami with an access token of a revoked family = %d, want 401", status)
	}
	// Another authorization of the same user is not affected.
	at2, rt2 := exchangeTokens(t, srv, "alice")
	if a := post(t, srv.TokenURL(), bodyAuth, refreshForm(rt2)); a.status != http.StatusOK {
		t.Errorf("refresh in another family = %d %s, want 200", a.status, a.raw)
	}
	if status, _ := whoami(t, srv, "Bearer", at2); status != http.StatusOK {
		t.Errorf("whoami in another family = %d, want 200", status)
	}
}

func TestRefreshModes(t *testing.T) {
	for _, tc := range []struct {
		mode   oauthtest.RefreshMode
		wantRT bool
	}{
		{oauthtest.RepeatRefreshToken, true},
		{oauthtest.OmitRefreshToken, false},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			srv := start(t, oauthtest.WithRefreshMode(tc.mode))
			_, rt := exchangeTokens(t, srv, "alice")
			for i := range 3 {
				a := post(t, srv.TokenURL(), bodyAuth, refreshForm(rt))
				if a.status != http.StatusOK {
					t.Fatalf("refresh %d = %d %s", i, a.status, a.raw)
				}
				got, present := a.body["refresh_token"]
				if present != tc.wantRT || present && got != rt {
					t.Fatalf("refresh %d answer %s: want refresh_token present=%v and unchanged", i, a.raw, tc.wantRT)
				}
			}
			if st := srv.Stats(); st.Refreshes != 3 || st.Reuses != 0 {
				t.Errorf("Stats = %+v, want 3 refreshes and no reuse", st)
			}
		})
	}
	if got := oauthtest.RefreshMode(9).String(); got != "RefreshMode(9)" {
		t.Errorf("String() = %q", got)
	}
}

// TestConcurrentRefresh presents one refresh token from many goroutines at
// once: with rotation exactly one wins.
func TestConcurrentRefresh(t *testing.T) {
	srv := start(t, oauthtest.WithLatency(20*time.Millisecond))
	_, rt := exchangeTokens(t, srv, "alice")
	srv.ResetStats()

	const n = 16
	var wg sync.WaitGroup
	var ok, invalid, other atomic.Int64
	for range n {
		wg.Go(func() {
			a := post(t, srv.TokenURL(), bodyAuth, refreshForm(rt))
			switch {
			case a.status == http.StatusOK:
				ok.Add(1)
			case a.status == http.StatusBadRequest && a.str("error") == "invalid_grant":
				invalid.Add(1)
			default:
				other.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || invalid.Load() != n-1 || other.Load() != 0 {
		t.Errorf("ok=%d invalid_grant=%d other=%d, want 1, %d, 0", ok.Load(), invalid.Load(), other.Load(), n-1)
	}
	if st := srv.Stats(); st.Requests != n || st.Refreshes != 1 || st.Reuses != n-1 || st.InvalidGrants != n-1 {
		t.Errorf("Stats = %+v", st)
	}
}

func TestZohoQuirks(t *testing.T) {
	srv := start(t, oauthtest.WithZohoQuirks(), oauthtest.WithRefreshMode(oauthtest.OmitRefreshToken),
		oauthtest.WithAPIDomain("https://www.zohoapis.eu"))
	code := srv.IssueGrant(clientID, "alice")
	a := post(t, srv.TokenURL(), bodyAuth, exchangeForm(code))
	if a.status != http.StatusOK || a.str("api_domain") != "https://www.zohoapis.eu" {
		t.Fatalf("exchange = %d %s", a.status, a.raw)
	}
	rt := a.str("refresh_token")
	if a := post(t, srv.TokenURL(), bodyAuth, refreshForm(rt)); a.status != http.StatusOK || a.body["refresh_token"] != nil {
		t.Fatalf("refresh = %d %s, want 200 without refresh_token", a.status, a.raw)
	}

	for _, tc := range []struct {
		name string
		auth auth
		form url.Values
		want string
	}{
		{"used code", bodyAuth, exchangeForm(code), "invalid_code"},
		{"unknown refresh token", bodyAuth, refreshForm("rt_nope"), "invalid_code"},
		{"wrong secret", auth{id: clientID, secret: "nope"}, refreshForm(rt), "invalid_client_secret"},
		{"unknown client", auth{id: "nobody", secret: "x"}, refreshForm(rt), "invalid_client"},
		{"redirect mismatch", bodyAuth, url.Values{"grant_type": {"authorization_code"},
			"code": {srv.IssueGrant(clientID, "u")}, "redirect_uri": {"https://x.example/"}}, "invalid_redirect_uri"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := post(t, srv.TokenURL(), tc.auth, tc.form)
			wantError(t, a, http.StatusOK, tc.want)
			if _, ok := a.body["error_description"]; ok {
				t.Errorf("answer %s: Zoho sends no error_description", a.raw)
			}
		})
	}
	if st := srv.Stats(); st.InvalidGrants != 3 || st.InvalidClients != 2 {
		t.Errorf("Stats = %+v, want 3 invalid grants and 2 invalid clients", st)
	}
}

func TestFailNext(t *testing.T) {
	srv := start(t)
	_, rt := exchangeTokens(t, srv, "alice")
	srv.ResetStats()
	srv.FailNext(2, http.StatusServiceUnavailable)
	for range 2 {
		a := post(t, srv.TokenURL(), bodyAuth, refreshForm(rt))
		wantError(t, a, http.StatusServiceUnavailable, "server_error")
	}
	// The failed requests did not consume the refresh token.
	if a := post(t, srv.TokenURL(), bodyAuth, refreshForm(rt)); a.status != http.StatusOK {
		t.Fatalf("third request = %d %s, want 200", a.status, a.raw)
	}
	if st := srv.Stats(); st.Requests != 3 || st.Failures != 2 || st.Refreshes != 1 || st.BodyAuth != 3 {
		t.Errorf("Stats = %+v", st)
	}

	srv.FailNext(1, 0) // 0 means 500
	wantError(t, post(t, srv.TokenURL(), bodyAuth, refreshForm(rt)), http.StatusInternalServerError, "server_error")

	srv.FailNext(5, http.StatusInternalServerError)
	srv.FailNext(0, 0) // cancels
	if _, rt := exchangeTokens(t, srv, "bob"); rt == "" {
		t.Fatal("no refresh token")
	}
}

func TestFaultHook(t *testing.T) {
	srv := start(t, oauthtest.WithFault(func(r *http.Request) (int, string, bool) {
		if r.FormValue("grant_type") == "refresh_token" {
			return http.StatusBadRequest, `{"error":"unauthorized_client"}`, true
		}
		return 0, "", false
	}))
	_, rt := exchangeTokens(t, srv, "alice") // exchanges pass
	wantError(t, post(t, srv.TokenURL(), bodyAuth, refreshForm(rt)), http.StatusBadRequest, "unauthorized_client")

	srv.SetFault(func(*http.Request) (int, string, bool) { return 0, "{not json", true })
	a := post(t, srv.TokenURL(), bodyAuth, refreshForm(rt))
	if a.status != http.StatusOK || a.raw != "{not json" {
		t.Errorf("answer = %d %q, want 200 with the hook's body verbatim", a.status, a.raw)
	}
	srv.SetFault(nil)
	if a := post(t, srv.TokenURL(), bodyAuth, refreshForm(rt)); a.status != http.StatusOK {
		t.Errorf("after SetFault(nil) = %d %s, want 200", a.status, a.raw)
	}
	if st := srv.Stats(); st.Failures != 2 || st.Refreshes != 1 {
		t.Errorf("Stats = %+v, want 2 failures and 1 refresh", st)
	}
}

func TestLatency(t *testing.T) {
	srv := start(t, oauthtest.WithLatency(150*time.Millisecond))
	_, rt := exchangeTokens(t, srv, "alice")

	begin := time.Now()
	a := post(t, srv.TokenURL(), bodyAuth, refreshForm(rt))
	if took := time.Since(begin); took < 150*time.Millisecond {
		t.Errorf("refresh took %v, want at least the injected 150ms", took)
	}
	rt = a.str("refresh_token")

	// A client that gives up during the delay leaves no trace.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	if _, err := postCtx(ctx, t, srv.TokenURL(), bodyAuth, refreshForm(rt)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	waitFor(t, func() bool { return srv.Stats().Canceled == 1 })

	srv.SetLatency(0)
	var calls atomic.Int64
	srv.SetLatencyFunc(func(r *http.Request) time.Duration {
		calls.Add(1)
		if r.FormValue("grant_type") == "refresh_token" {
			return 50 * time.Millisecond
		}
		return 0
	})
	begin = time.Now()
	if a := post(t, srv.TokenURL(), bodyAuth, refreshForm(rt)); a.status != http.StatusOK {
		t.Fatalf("refresh with the token the canceled request carried = %d %s, want 200", a.status, a.raw)
	}
	if took := time.Since(begin); took < 50*time.Millisecond || calls.Load() != 1 {
		t.Errorf("refresh took %v with %d latency calls, want >= 50ms and 1", took, calls.Load())
	}
	srv.SetLatencyFunc(nil)
	if st := srv.Stats(); st.Refreshes != 2 {
		t.Errorf("Stats = %+v, want 2 refreshes", st)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCloseReleasesDelayedRequests(t *testing.T) {
	srv := start(t, oauthtest.WithLatency(time.Hour))
	done := make(chan answer)
	go func() {
		a, _ := postCtx(context.Background(), t, srv.TokenURL(), bodyAuth, exchangeForm(srv.IssueGrant(clientID, "u")))
		done <- a
	}()
	waitFor(t, func() bool { return srv.Stats().Requests == 1 })
	srv.Close()
	srv.Close()
	select {
	case a := <-done:
		wantError(t, a, http.StatusServiceUnavailable, "server_error")
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release the delayed request")
	}
}

func TestWhoAmI(t *testing.T) {
	now := time.Now()
	var clock atomic.Int64
	srv := start(t, oauthtest.WithAccessTokenLifetime(3*time.Second),
		oauthtest.WithClock(func() time.Time { return now.Add(time.Duration(clock.Load())) }))
	a := post(t, srv.TokenURL(), bodyAuth, exchangeForm(srv.IssueGrant(clientID, "alice")))
	at := a.str("access_token")
	if got := a.body["expires_in"]; got != float64(3) {
		t.Errorf("expires_in = %v, want 3", got)
	}

	for _, tc := range []struct {
		name, scheme, token string
		want                int
		wantUser            string
	}{
		{"bearer", "Bearer", at, 200, "alice"},
		{"lower-case scheme", "bearer", at, 200, "alice"},
		{"zoho scheme", "Zoho-oauthtoken", at, 200, "alice"},
		{"no header", "", "", 401, ""},
		{"basic scheme", "Basic", at, 401, ""},
		{"unknown token", "Bearer", "at_nope", 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, user := whoami(t, srv, tc.scheme, tc.token)
			if status != tc.want || user != tc.wantUser {
				t.Errorf("whoami = %d %q, want %d %q", status, user, tc.want, tc.wantUser)
			}
		})
	}
	clock.Store(int64(3 * time.Second))
	if status, _ := whoami(t, srv, "Bearer", at); status != http.StatusUnauthorized {
		t.Errorf("whoami with an expired token = %d, want 401", status)
	}
	if st := srv.Stats(); st.APICalls != 3 || st.Unauthorized != 4 {
		t.Errorf("Stats = %+v, want 3 API calls and 4 unauthorized", st)
	}
}

func TestAccessTokenLifetimeRoundsUp(t *testing.T) {
	srv := start(t, oauthtest.WithAccessTokenLifetime(100*time.Millisecond))
	a := post(t, srv.TokenURL(), bodyAuth, exchangeForm(srv.IssueGrant(clientID, "alice")))
	if got := a.body["expires_in"]; got != float64(1) {
		t.Errorf("expires_in = %v, want 1", got)
	}
	time.Sleep(150 * time.Millisecond)
	if status, _ := whoami(t, srv, "Bearer", a.str("access_token")); status != http.StatusUnauthorized {
		t.Errorf("whoami after the real lifetime = %d, want 401", status)
	}
}

func TestRevoke(t *testing.T) {
	srv := start(t)
	at1, rt1 := exchangeTokens(t, srv, "alice")
	_, rt2 := exchangeTokens(t, srv, "alice")
	_, rtBob := exchangeTokens(t, srv, "bob")
	seeded := srv.IssueTokens(clientID, "alice")

	if n := srv.Revoke("alice"); n != 3 {
		t.Errorf("Revoke = %d, want 3 families", n)
	}
	if n := srv.Revoke("alice"); n != 0 {
		t.Errorf("second Revoke = %d, want 0", n)
	}
	for _, rt := range []string{rt1, rt2, seeded.RefreshToken} {
		wantError(t, post(t, srv.TokenURL(), bodyAuth, refreshForm(rt)), http.StatusBadRequest, "invalid_grant")
	}
	if status, _ := whoami(t, srv, "Bearer", at1); status != http.StatusUnauthorized {
		t.Errorf("whoami after Revoke = %d, want 401", status)
	}
	if a := post(t, srv.TokenURL(), bodyAuth, refreshForm(rtBob)); a.status != http.StatusOK {
		t.Errorf("another user's refresh = %d %s, want 200", a.status, a.raw)
	}
}

func TestIssueTokens(t *testing.T) {
	srv := start(t, oauthtest.WithAccessTokenLifetime(time.Minute))
	tok := srv.IssueTokens(clientID, "carol")
	if tok.APIDomain != srv.URL() || time.Until(tok.Expiry) > time.Minute || time.Until(tok.Expiry) < 50*time.Second {
		t.Errorf("IssueTokens = api_domain %q, expiry in %v", tok.APIDomain, time.Until(tok.Expiry))
	}
	if status, user := whoami(t, srv, "Bearer", tok.AccessToken); status != 200 || user != "carol" {
		t.Errorf("whoami = %d %q", status, user)
	}
	if a := post(t, srv.TokenURL(), bodyAuth, refreshForm(tok.RefreshToken)); a.status != http.StatusOK {
		t.Errorf("refresh = %d %s", a.status, a.raw)
	}
	if st := srv.Stats(); st.Exchanges != 0 || st.Refreshes != 1 {
		t.Errorf("Stats = %+v, want no exchange and 1 refresh", st)
	}
}

func TestAuthorizeEndpoint(t *testing.T) {
	srv := start(t)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(t *testing.T, q url.Values) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL()+oauthtest.AuthPath+"?"+q.Encode(), nil)
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	resp := get(t, url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirectURL},
		"state": {"xyz"}, "login_hint": {"dave@example.com"}})
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status = %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), redirectURL+"?") || loc.Query().Get("state") != "xyz" {
		t.Fatalf("Location = %q", resp.Header.Get("Location"))
	}
	a := post(t, srv.TokenURL(), bodyAuth, exchangeForm(loc.Query().Get("code")))
	if status, user := whoami(t, srv, "Bearer", a.str("access_token")); status != 200 || user != "dave@example.com" {
		t.Errorf("whoami = %d %q", status, user)
	}

	resp = get(t, url.Values{"response_type": {"token"}, "client_id": {clientID}})
	if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != http.StatusFound || loc.Query().Get("error") != "unsupported_response_type" {
		t.Errorf("implicit grant: %d %q, want a redirect with unsupported_response_type", resp.StatusCode, resp.Header.Get("Location"))
	}
	for name, q := range map[string]url.Values{
		"unknown client":    {"response_type": {"code"}, "client_id": {"nobody"}},
		"redirect mismatch": {"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {"https://evil.example/"}},
	} {
		if resp := get(t, q); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status = %d, want 400 without a redirect", name, resp.StatusCode)
		}
	}
}

// TestNewWithoutStart mounts New's handler on a server of its own, as a
// demo or docker-compose does.
func TestNewWithoutStart(t *testing.T) {
	srv := oauthtest.New(oauthtest.WithDefaultClient())
	if srv.URL() != "" || srv.TokenURL() != "" {
		t.Errorf("URL = %q, TokenURL = %q, want empty", srv.URL(), srv.TokenURL())
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	srv.AddClient(clientID, clientSecret, redirectURL)
	a := post(t, hs.URL+oauthtest.TokenPath, bodyAuth, exchangeForm(srv.IssueGrant(clientID, "erin")))
	if a.status != http.StatusOK || a.str("api_domain") != hs.URL {
		t.Errorf("answer = %d %s, want api_domain from the Host %q", a.status, a.raw, hs.URL)
	}

	based := oauthtest.New(oauthtest.WithBaseURL("http://oauth:8080/"))
	if got := based.TokenURL(); got != "http://oauth:8080/oauth/v2/token" {
		t.Errorf("TokenURL = %q", got)
	}
	if got := based.IssueTokens("c", "u").APIDomain; got != "http://oauth:8080" {
		t.Errorf("api_domain = %q", got)
	}
	if got := oauthtest.New(oauthtest.WithBaseURL("http://a"), oauthtest.WithAPIDomain("")).IssueTokens("c", "u").APIDomain; got != "" {
		t.Errorf("api_domain with WithAPIDomain(\"\") = %q, want empty", got)
	}
}

// TestNoSecretsLogged runs every kind of request with a logger and checks
// that no secret reaches it.
func TestNoSecretsLogged(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, nil))
	srv := start(t, oauthtest.WithLogger(logger))
	code := srv.IssueGrant(clientID, "alice")
	a := post(t, srv.TokenURL(), bodyAuth, exchangeForm(code))
	at, rt := a.str("access_token"), a.str("refresh_token")
	b := post(t, srv.TokenURL(), bodyAuth, refreshForm(rt))
	post(t, srv.TokenURL(), bodyAuth, refreshForm(rt))                                   // reuse
	post(t, srv.TokenURL(), auth{id: clientID, secret: "wrong-secret"}, refreshForm(rt)) // invalid client
	srv.FailNext(1, 500)
	post(t, srv.TokenURL(), bodyAuth, refreshForm(b.str("refresh_token")))

	mu.Lock()
	defer mu.Unlock()
	out := buf.String()
	if !strings.Contains(out, "alice") || !strings.Contains(out, "invalid_grant") {
		t.Errorf("log lacks the expected events:\n%s", out)
	}
	for _, secret := range []string{clientSecret, "wrong-secret", code, at, rt, b.str("access_token"), b.str("refresh_token")} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains a secret:\n%s", out)
		}
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestConcurrentUse exercises every method at once under -race.
func TestConcurrentUse(t *testing.T) {
	srv := start(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			user := "user" + string(rune('a'+i))
			_, rt := exchangeTokens(t, srv, user)
			for range 5 {
				a := post(t, srv.TokenURL(), bodyAuth, refreshForm(rt))
				if a.status != http.StatusOK {
					t.Errorf("refresh = %d %s", a.status, a.raw)
					return
				}
				rt = a.str("refresh_token")
				if status, _ := whoami(t, srv, "Bearer", a.str("access_token")); status != 200 {
					t.Errorf("whoami = %d", status)
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			_ = srv.Stats()
			srv.SetLatency(0)
			srv.AddClient("other", "s", "")
			srv.IssueTokens("other", "x")
			srv.Revoke("x")
		}
	})
	wg.Wait()
	if st := srv.Stats(); st.Exchanges != 8 || st.Refreshes != 40 {
		t.Errorf("Stats = %+v", st)
	}
}
