package refresher_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/oauthtest"
	"github.com/tokencache/tokencache/refresher"
)

// Two OAuth clients registered on every test server.
const (
	httpClientA   = "client-a"
	httpSecretA   = "secret-a-5f1c9e2b"
	httpRedirectA = "https://a.example/callback"
	httpClientB   = "client-b"
	httpSecretB   = "secret-b-0d7a4c88"
	httpRedirectB = "https://b.example/callback"
)

func startOAuth(t *testing.T, opts ...oauthtest.Option) *oauthtest.Server {
	t.Helper()
	return oauthtest.Start(t, append([]oauthtest.Option{
		oauthtest.WithClient(httpClientA, httpSecretA, httpRedirectA),
		oauthtest.WithClient(httpClientB, httpSecretB, httpRedirectB),
	}, opts...)...)
}

// grantFor returns a token that Exchange can trade, of client A unless
// client B is asked for.
func grantFor(srv *oauthtest.Server, user string, b bool) tokencache.Token {
	t := tokencache.Token{ID: "tok-" + user, UserName: user, ClientID: httpClientA, ClientSecret: httpSecretA,
		RedirectURL: httpRedirectA, Version: 7}
	if b {
		t.ClientID, t.ClientSecret, t.RedirectURL = httpClientB, httpSecretB, httpRedirectB
	}
	t.GrantToken = srv.IssueGrant(t.ClientID, user)
	return t
}

// refreshableFor returns a stored-looking token that Refresh can renew.
func refreshableFor(srv *oauthtest.Server, user string, b bool) tokencache.Token {
	t := grantFor(srv, user, b)
	issued := srv.IssueTokens(t.ClientID, user)
	t.GrantToken = "gc_long_used_code_0001"
	t.AccessToken = "at_expired_access_0001"
	t.RefreshToken = issued.RefreshToken
	t.Expiry = time.Now().Add(-time.Minute).Round(0)
	t.APIDomain = "https://api.previous.example"
	return t
}

type endpointOp struct {
	name string
	call func(refresher.Endpoint, context.Context, tokencache.Token) (tokencache.Token, error)
	make func(*oauthtest.Server, string, bool) tokencache.Token
}

var endpointOps = []endpointOp{
	{"exchange", refresher.Endpoint.Exchange, grantFor},
	{"refresh", refresher.Endpoint.Refresh, refreshableFor},
}

func whoamiUser(t *testing.T, srv *oauthtest.Server, access string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL()+oauthtest.WhoAmIPath, nil)
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var me struct{ User string }
	_ = json.NewDecoder(resp.Body).Decode(&me)
	return me.User
}

func TestHTTPEndpointExchange(t *testing.T) {
	srv := startOAuth(t)
	ep := refresher.NewHTTPEndpoint(srv.TokenURL())
	in := grantFor(srv, "alice@example.com", false)
	before := time.Now()
	got, err := ep.Exchange(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessToken == "" || got.RefreshToken == "" {
		t.Fatalf("Exchange = %v, want access and refresh tokens", got)
	}
	if got.Expiry.Before(before.Add(time.Hour-time.Second)) || got.Expiry.After(time.Now().Add(time.Hour)) {
		t.Errorf("Expiry = %v, want about an hour from now", got.Expiry)
	}
	if got.APIDomain != srv.URL() {
		t.Errorf("APIDomain = %q, want the server's %q", got.APIDomain, srv.URL())
	}
	want := in
	want.AccessToken, want.RefreshToken, want.Expiry, want.APIDomain = got.AccessToken, got.RefreshToken, got.Expiry, got.APIDomain
	if got != want {
		t.Errorf("Exchange changed fields it must keep:\n got %#v\nwant %#v", got, want)
	}
	if user := whoamiUser(t, srv, got.AccessToken); user != "alice@example.com" {
		t.Errorf("whoami = %q, want alice@example.com", user)
	}
	if st := srv.Stats(); st.Requests != 1 || st.Exchanges != 1 || st.BodyAuth != 1 || st.BasicAuth != 0 {
		t.Errorf("Stats = %+v, want one exchange with credentials in the body", st)
	}
}

func TestHTTPEndpointRefreshRotation(t *testing.T) {
	srv := startOAuth(t)
	ep := refresher.NewHTTPEndpoint(srv.TokenURL())
	in := refreshableFor(srv, "alice", false)

	got, err := ep.Refresh(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if got.RefreshToken == "" || got.RefreshToken == in.RefreshToken || got.AccessToken == in.AccessToken {
		t.Fatalf("Refresh = %v: want a new access token and a rotated refresh token", got)
	}
	if !got.Valid() {
		t.Errorf("refreshed token is not valid: %v", got)
	}
	want := in
	want.AccessToken, want.RefreshToken, want.Expiry, want.APIDomain = got.AccessToken, got.RefreshToken, got.Expiry, srv.URL()
	if got != want {
		t.Errorf("Refresh changed fields it must keep:\n got %#v\nwant %#v", got, want)
	}

	// The old refresh token was retired: presenting it again is a reuse.
	_, err = ep.Refresh(t.Context(), in)
	if !errors.Is(err, refresher.ErrInvalidGrant) {
		t.Fatalf("Refresh with the retired token: err = %v, want ErrInvalidGrant", err)
	}
	// The new one works.
	again, err := ep.Refresh(t.Context(), got)
	if err != nil || again.RefreshToken == got.RefreshToken {
		t.Fatalf("Refresh with the new token = %v, %v", again, err)
	}
	if st := srv.Stats(); st.Requests != 3 || st.Refreshes != 2 || st.Reuses != 1 {
		t.Errorf("Stats = %+v, want 3 requests, 2 refreshes, 1 reuse", st)
	}
}

func TestHTTPEndpointNonRotatingServer(t *testing.T) {
	for _, mode := range []oauthtest.RefreshMode{oauthtest.OmitRefreshToken, oauthtest.RepeatRefreshToken} {
		t.Run(mode.String(), func(t *testing.T) {
			srv := startOAuth(t, oauthtest.WithRefreshMode(mode))
			ep := refresher.NewHTTPEndpoint(srv.TokenURL())
			tok := refreshableFor(srv, "alice", false)
			rt := tok.RefreshToken
			for i := range 3 {
				next, err := ep.Refresh(t.Context(), tok)
				if err != nil {
					t.Fatalf("refresh %d: %v", i, err)
				}
				if next.RefreshToken != rt || next.AccessToken == tok.AccessToken {
					t.Fatalf("refresh %d: refresh token changed or access token did not", i)
				}
				tok = next
			}
		})
	}
}

func TestHTTPEndpointAPIDomain(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []oauthtest.Option
		in   string // the input token's APIDomain
		want string // "" means the server's URL
	}{
		{"from the answer", []oauthtest.Option{oauthtest.WithAPIDomain("https://www.zohoapis.eu")}, "https://old.example", "https://www.zohoapis.eu"},
		{"kept when the answer has none", []oauthtest.Option{oauthtest.WithAPIDomain("")}, "https://kept.example", "https://kept.example"},
		{"server default", nil, "", ""},
	} {
		for _, op := range endpointOps {
			t.Run(tc.name+"/"+op.name, func(t *testing.T) {
				srv := startOAuth(t, tc.opts...)
				in := op.make(srv, "alice", false)
				in.APIDomain = tc.in
				got, err := op.call(refresher.NewHTTPEndpoint(srv.TokenURL()), t.Context(), in)
				if err != nil {
					t.Fatal(err)
				}
				want := tc.want
				if want == "" {
					want = srv.URL()
				}
				if got.APIDomain != want {
					t.Errorf("APIDomain = %q, want %q", got.APIDomain, want)
				}
			})
		}
	}
}

func TestHTTPEndpointAuthStyle(t *testing.T) {
	for _, basic := range []bool{false, true} {
		for _, op := range endpointOps {
			t.Run(fmt.Sprintf("basic=%v/%s", basic, op.name), func(t *testing.T) {
				srv := startOAuth(t)
				var opts []refresher.HTTPOption
				if basic {
					opts = append(opts, refresher.WithBasicAuth())
				}
				if _, err := op.call(refresher.NewHTTPEndpoint(srv.TokenURL(), opts...), t.Context(), op.make(srv, "u", false)); err != nil {
					t.Fatal(err)
				}
				st := srv.Stats()
				wantBasic, wantBody := int64(0), int64(1)
				if basic {
					wantBasic, wantBody = 1, 0
				}
				if st.BasicAuth != wantBasic || st.BodyAuth != wantBody || st.Requests != 1 {
					t.Errorf("Stats = %+v, want BasicAuth %d, BodyAuth %d, one request", st, wantBasic, wantBody)
				}
			})
		}
	}
}

// TestHTTPEndpointPerTokenCredentials serves two clients through one
// endpoint: each call must use its own token's credentials.
func TestHTTPEndpointPerTokenCredentials(t *testing.T) {
	for _, op := range endpointOps {
		t.Run(op.name, func(t *testing.T) {
			srv := startOAuth(t)
			ep := refresher.NewHTTPEndpoint(srv.TokenURL())
			for _, b := range []bool{false, true, false, true} {
				in := op.make(srv, "user", b)
				got, err := op.call(ep, t.Context(), in)
				if err != nil {
					t.Fatalf("client b=%v: %v", b, err)
				}
				if got.ClientID != in.ClientID || got.ClientSecret != in.ClientSecret {
					t.Errorf("the result's client changed")
				}
			}
			// Client B's token with client A's secret is refused.
			mixed := op.make(srv, "user", true)
			mixed.ClientSecret = httpSecretA
			if _, err := op.call(ep, t.Context(), mixed); !errors.Is(err, refresher.ErrInvalidGrant) {
				t.Errorf("err = %v, want ErrInvalidGrant", err)
			}
			if st := srv.Stats(); st.Exchanges+st.Refreshes != 4 || st.InvalidClients != 1 {
				t.Errorf("Stats = %+v, want 4 successes and 1 invalid client", st)
			}
		})
	}
}

// closedURL returns a token URL on a loopback port nobody listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + oauthtest.TokenPath
}

func fault(status int, body string) oauthtest.Option {
	return oauthtest.WithFault(func(*http.Request) (int, string, bool) { return status, body, true })
}

// echoFault answers with status and a body built by format from every
// secret the request carried: the client secret (in the body or HTTP
// Basic), the code and the refresh token.
func echoFault(status int, format string) oauthtest.Option {
	return oauthtest.WithFault(func(r *http.Request) (int, string, bool) {
		secret := r.FormValue("client_secret")
		if _, pw, ok := r.BasicAuth(); ok {
			secret, _ = url.QueryUnescape(pw)
		}
		all := strings.Join([]string{secret, r.FormValue("code"), r.FormValue("refresh_token")}, " ")
		return status, fmt.Sprintf(format, all), true
	})
}

func TestHTTPEndpointErrors(t *testing.T) {
	unknown := func(t *tokencache.Token) {
		t.GrantToken, t.RefreshToken = "gc_unknown_code_0001", "rt_unknown_refresh_0001"
	}
	wrongSecret := func(t *tokencache.Token) { t.ClientSecret = "wrong-secret-77aa" }

	for _, tc := range []struct {
		name      string
		opts      []oauthtest.Option
		setup     func(*oauthtest.Server)
		mutate    func(*tokencache.Token)
		closed    bool          // send to a port nobody listens on
		timeout   time.Duration // of the call's ctx
		wantDead  bool          // errors.Is(err, ErrInvalidGrant)
		wantCli   bool          // errors.Is(err, ErrInvalidClient): the client's credentials refused
		wantHTTP  int           // status in the *oauth2.RetrieveError; 0: there is none
		wantIs    error         // another error the chain must hold
		wantInMsg string
	}{
		{name: "400 invalid_grant", mutate: unknown, wantDead: true, wantHTTP: 400, wantInMsg: `invalid grant: token endpoint answered HTTP 400 with error "invalid_grant"`},
		{name: "401 invalid_client", mutate: wrongSecret, wantDead: true, wantCli: true, wantHTTP: 401, wantInMsg: `invalid client: token endpoint answered HTTP 401 with error "invalid_client"`},
		{name: "400 unauthorized_client", opts: []oauthtest.Option{fault(400, `{"error":"unauthorized_client"}`)}, wantDead: true, wantCli: true, wantHTTP: 400},
		{name: "Zoho 200 invalid_code", opts: []oauthtest.Option{oauthtest.WithZohoQuirks()}, mutate: unknown, wantDead: true, wantHTTP: 200, wantInMsg: `HTTP 200 with error "invalid_code"`},
		{name: "Zoho 200 invalid_client_secret", opts: []oauthtest.Option{oauthtest.WithZohoQuirks()}, mutate: wrongSecret, wantDead: true, wantCli: true, wantHTTP: 200},
		{name: "Zoho 200 invalid_redirect_uri", opts: []oauthtest.Option{fault(200, `{"error":"invalid_redirect_uri"}`)}, wantDead: true, wantHTTP: 200},
		{name: "500", setup: func(s *oauthtest.Server) { s.FailNext(1, 500) }, wantHTTP: 500, wantInMsg: `HTTP 500 with error "server_error"`},
		{name: "503", setup: func(s *oauthtest.Server) { s.FailNext(1, 503) }, wantHTTP: 503},
		{name: "429", setup: func(s *oauthtest.Server) { s.FailNext(1, 429) }, wantHTTP: 429},
		{name: "429 saying invalid_grant", opts: []oauthtest.Option{fault(429, `{"error":"invalid_grant"}`)}, wantHTTP: 429},
		{name: "502 saying invalid_grant", opts: []oauthtest.Option{fault(502, `{"error":"invalid_grant"}`)}, wantHTTP: 502},
		{name: "400 invalid_request", opts: []oauthtest.Option{fault(400, `{"error":"invalid_request"}`)}, wantHTTP: 400},
		{name: "Zoho rate limit Access Denied", opts: []oauthtest.Option{fault(400,
			`{"error_description":"You have made too many requests continuously. Please try again after some time.","error":"Access Denied","status":"failure"}`)},
			wantHTTP: 400, wantInMsg: `"Access Denied"`},
		{name: "200 malformed JSON", opts: []oauthtest.Option{fault(200, `{"access_token": "at_x`)}},
		{name: "500 HTML", opts: []oauthtest.Option{fault(500, `<html>Internal Server Error</html>`)}, wantHTTP: 500},
		{name: "200 without access_token", opts: []oauthtest.Option{fault(200, `{"token_type":"Bearer","expires_in":3600}`)}},
		{name: "connection refused", closed: true, wantIs: new(net.OpError)},
		// The deadline leaves the request time to reach the server on a
		// loaded machine (the test counts it there), and ends long before
		// the server's latency.
		{name: "deadline with a slow server", opts: []oauthtest.Option{oauthtest.WithLatency(5 * time.Second)},
			timeout: time.Second, wantIs: context.DeadlineExceeded},
		{name: "500 body echoing secrets", opts: []oauthtest.Option{echoFault(500, `{"echo":%q}`)}, wantHTTP: 500},
		{name: "400 description echoing secrets", opts: []oauthtest.Option{echoFault(400, `{"error":"invalid_grant","error_description":%q}`)}, wantDead: true, wantHTTP: 400},
		{name: "400 error code echoing secrets", opts: []oauthtest.Option{echoFault(400, `{"error":%q}`)}, wantHTTP: 400},
		{name: "400 malformed error code", opts: []oauthtest.Option{fault(400, `{"error":"line\nbreak"}`)}, wantHTTP: 400, wantInMsg: "(malformed error code)"},
	} {
		for _, op := range endpointOps {
			for _, basic := range []bool{false, true} {
				name := fmt.Sprintf("%s/%s/basic=%v", tc.name, op.name, basic)
				t.Run(name, func(t *testing.T) {
					srv := startOAuth(t, tc.opts...)
					if tc.setup != nil {
						tc.setup(srv)
					}
					in := op.make(srv, "alice", false)
					if tc.mutate != nil {
						tc.mutate(&in)
					}
					secrets := []string{httpSecretA, in.ClientSecret, in.GrantToken, in.RefreshToken, in.AccessToken}

					tokenURL := srv.TokenURL()
					if tc.closed {
						tokenURL = closedURL(t)
					}
					var opts []refresher.HTTPOption
					if basic {
						opts = append(opts, refresher.WithBasicAuth())
					}
					ctx := t.Context()
					if tc.timeout > 0 {
						var cancel context.CancelFunc
						ctx, cancel = context.WithTimeout(ctx, tc.timeout)
						defer cancel()
					}

					got, err := op.call(refresher.NewHTTPEndpoint(tokenURL, opts...), ctx, in)
					if err == nil {
						t.Fatalf("no error; got %v", got)
					}
					if got != (tokencache.Token{}) {
						t.Errorf("a failed call returned a token: %v", got)
					}
					if dead := errors.Is(err, refresher.ErrInvalidGrant); dead != tc.wantDead {
						t.Errorf("errors.Is(err, ErrInvalidGrant) = %v, want %v; err = %v", dead, tc.wantDead, err)
					}
					if cli := errors.Is(err, refresher.ErrInvalidClient); cli != tc.wantCli {
						t.Errorf("errors.Is(err, ErrInvalidClient) = %v, want %v; err = %v", cli, tc.wantCli, err)
					}
					if errors.Is(err, tokencache.ErrNotFound) {
						t.Errorf("err = %v wraps ErrNotFound", err)
					}
					var re *oauth2.RetrieveError
					switch {
					case errors.As(err, &re) != (tc.wantHTTP != 0):
						t.Errorf("errors.As(*oauth2.RetrieveError) = %v, want %v; err = %v", re != nil, tc.wantHTTP != 0, err)
					case re != nil && re.Response.StatusCode != tc.wantHTTP:
						t.Errorf("RetrieveError status = %d, want %d", re.Response.StatusCode, tc.wantHTTP)
					}
					switch want := tc.wantIs.(type) {
					case nil:
					case *net.OpError:
						if !errors.As(err, &want) {
							t.Errorf("err = %v, want a *net.OpError in the chain", err)
						}
					default:
						if !errors.Is(err, want) {
							t.Errorf("err = %v, want errors.Is %v", err, want)
						}
					}
					msg := err.Error()
					if !strings.HasPrefix(msg, "refresher: "+op.name+": ") || strings.Contains(msg, "\n") {
						t.Errorf("message %q: want one line starting with %q", msg, "refresher: "+op.name+": ")
					}
					if tc.wantInMsg != "" && !strings.Contains(msg, tc.wantInMsg) {
						t.Errorf("message %q lacks %q", msg, tc.wantInMsg)
					}
					for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
						printed := fmt.Sprintf(format, err)
						for _, s := range secrets {
							if s != "" && strings.Contains(printed, s) {
								t.Errorf("%s of the error shows a secret: %s", format, printed)
							}
						}
					}

					// One failed call, one request: no retry, no auth style probe.
					wantRequests := int64(1)
					if tc.closed {
						wantRequests = 0
					}
					if tc.timeout > 0 {
						waitForStat(t, func() bool { return srv.Stats().Canceled == 1 })
					}
					if st := srv.Stats(); st.Requests != wantRequests || st.Exchanges+st.Refreshes != 0 {
						t.Errorf("Stats = %+v, want %d request(s) and no success", st, wantRequests)
					}
				})
			}
		}
	}
}

func waitForStat(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAutoDetectWouldDoubleRequests shows what the explicit auth style
// prevents: x/oauth2's auto-detection answers a failed request by sending
// it again with the other style, so the one-request assertions above would
// catch an endpoint that used it.
func TestAutoDetectWouldDoubleRequests(t *testing.T) {
	srv := startOAuth(t)
	cfg := &oauth2.Config{ClientID: httpClientA, ClientSecret: httpSecretA,
		Endpoint: oauth2.Endpoint{TokenURL: srv.TokenURL(), AuthStyle: oauth2.AuthStyleAutoDetect}}
	if _, err := cfg.TokenSource(t.Context(), &oauth2.Token{RefreshToken: "rt_unknown"}).Token(); err == nil {
		t.Fatal("refresh with an unknown token succeeded")
	}
	if st := srv.Stats(); st.Requests != 2 || st.BasicAuth != 1 || st.BodyAuth != 1 {
		t.Errorf("Stats = %+v, want 2 requests, one of each style: x/oauth2's auto-detection changed; revisit this test", st)
	}
}

func TestHTTPEndpointWithoutTheTokenToSend(t *testing.T) {
	srv := startOAuth(t)
	ep := refresher.NewHTTPEndpoint(srv.TokenURL())
	noGrant := refreshableFor(srv, "alice", false)
	noGrant.GrantToken = ""
	if _, err := ep.Exchange(t.Context(), noGrant); !errors.Is(err, refresher.ErrInvalidGrant) {
		t.Errorf("Exchange without a grant token: err = %v, want ErrInvalidGrant", err)
	}
	noRefresh := grantFor(srv, "alice", false)
	if _, err := ep.Refresh(t.Context(), noRefresh); !errors.Is(err, refresher.ErrInvalidGrant) {
		t.Errorf("Refresh without a refresh token: err = %v, want ErrInvalidGrant", err)
	}
	if st := srv.Stats(); st.Requests != 0 {
		t.Errorf("Stats = %+v, want no request", st)
	}
}

func TestHTTPEndpointBadTokenURL(t *testing.T) {
	tok := tokencache.Token{ClientID: "c", ClientSecret: "s", GrantToken: "g", RefreshToken: "r"}
	for _, u := range []string{"", "not a url", "ftp://example.com/token", "/oauth/v2/token", "http://%zz"} {
		ep := refresher.NewHTTPEndpoint(u)
		for _, op := range endpointOps {
			_, err := op.call(ep, t.Context(), tok)
			if err == nil || errors.Is(err, refresher.ErrInvalidGrant) {
				t.Errorf("%s with token URL %q: err = %v, want a transient error", op.name, u, err)
			}
		}
	}
}

type countingTransport struct {
	n atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

func TestHTTPEndpointWithHTTPClient(t *testing.T) {
	srv := startOAuth(t)
	tr := &countingTransport{}
	ep := refresher.NewHTTPEndpoint(srv.TokenURL(), refresher.WithHTTPClient(&http.Client{Transport: tr}))
	tok, err := ep.Exchange(t.Context(), grantFor(srv, "alice", false))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ep.Refresh(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	if got := tr.n.Load(); got != 2 {
		t.Errorf("the client's transport saw %d requests, want 2", got)
	}
	// nil keeps the default client.
	if _, err := refresher.NewHTTPEndpoint(srv.TokenURL(), refresher.WithHTTPClient(nil), nil).Refresh(t.Context(), refreshableFor(srv, "bob", false)); err != nil {
		t.Fatal(err)
	}
}

// TestHTTPEndpointFollowsNoRedirect: the default client does not carry the
// client secret and the token to wherever a redirect points.
func TestHTTPEndpointFollowsNoRedirect(t *testing.T) {
	srv := startOAuth(t)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, srv.TokenURL(), http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	_, err := refresher.NewHTTPEndpoint(redirector.URL+"/token").Refresh(t.Context(), refreshableFor(srv, "alice", false))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusTemporaryRedirect || errors.Is(err, refresher.ErrInvalidGrant) {
		t.Fatalf("err = %v, want a transient error for the 307", err)
	}
	if st := srv.Stats(); st.Requests != 0 {
		t.Errorf("the redirect was followed: Stats = %+v", st)
	}
}

// TestHTTPEndpointConcurrentRotation refreshes one token from many
// goroutines against a rotating server: exactly one wins, every other call
// is ErrInvalidGrant, and each call is one request. This is the stampede
// the Refresher exists to prevent.
func TestHTTPEndpointConcurrentRotation(t *testing.T) {
	srv := startOAuth(t)
	ep := refresher.NewHTTPEndpoint(srv.TokenURL())
	tok := refreshableFor(srv, "alice", false)
	const n = 12
	var wg sync.WaitGroup
	var ok, dead atomic.Int64
	for range n {
		wg.Go(func() {
			_, err := ep.Refresh(t.Context(), tok)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, refresher.ErrInvalidGrant):
				dead.Add(1)
			default:
				t.Errorf("unexpected error: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || dead.Load() != n-1 {
		t.Errorf("successes = %d, invalid grants = %d, want 1 and %d", ok.Load(), dead.Load(), n-1)
	}
	if st := srv.Stats(); st.Requests != n || st.Reuses != n-1 {
		t.Errorf("Stats = %+v", st)
	}
}

// TestHTTPEndpointZohoLikeServer runs a whole life against a server that
// behaves like Zoho Accounts.
func TestHTTPEndpointZohoLikeServer(t *testing.T) {
	srv := startOAuth(t, oauthtest.WithZohoQuirks(), oauthtest.WithRefreshMode(oauthtest.OmitRefreshToken),
		oauthtest.WithAPIDomain("https://www.zohoapis.com"))
	ep := refresher.NewHTTPEndpoint(srv.TokenURL())
	tok, err := ep.Exchange(t.Context(), grantFor(srv, "alice", false))
	if err != nil {
		t.Fatal(err)
	}
	rt := tok.RefreshToken
	for range 2 {
		if tok, err = ep.Refresh(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if tok.RefreshToken != rt || tok.APIDomain != "https://www.zohoapis.com" {
		t.Errorf("after two refreshes: refresh token kept = %v, APIDomain = %q", tok.RefreshToken == rt, tok.APIDomain)
	}
	srv.Revoke("alice")
	_, err = ep.Refresh(t.Context(), tok)
	var re *oauth2.RetrieveError
	if !errors.Is(err, refresher.ErrInvalidGrant) || !errors.As(err, &re) || re.ErrorCode != "invalid_code" || re.Response.StatusCode != 200 {
		t.Errorf("after Revoke: err = %v, want ErrInvalidGrant from a 200 invalid_code answer", err)
	}
}

// TestHTTPEndpointMinimalAnswer: an answer with an access token only keeps
// the refresh token and API domain, and a missing expires_in means the
// token never expires.
func TestHTTPEndpointMinimalAnswer(t *testing.T) {
	srv := startOAuth(t, fault(200, `{"access_token":"at_minimal"}`))
	for _, op := range endpointOps {
		in := op.make(srv, "alice", false)
		in.RefreshToken, in.APIDomain = "rt_kept", "https://kept.example"
		got, err := op.call(refresher.NewHTTPEndpoint(srv.TokenURL()), t.Context(), in)
		if err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
		if got.AccessToken != "at_minimal" || got.RefreshToken != "rt_kept" || got.APIDomain != "https://kept.example" || !got.Expiry.IsZero() {
			t.Errorf("%s = %#v", op.name, got)
		}
	}
}

func TestZohoTokenURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"us", refresher.ZohoUS},
		{"EU", refresher.ZohoEU},
		{"In", refresher.ZohoIN},
		{" au ", refresher.ZohoAU},
		{"cn", refresher.ZohoCN},
		{"jp", refresher.ZohoJP},
		{"CA", refresher.ZohoCA},
		{"sa", refresher.ZohoSA},
		{"uk", refresher.ZohoUK},
	} {
		got, err := refresher.ZohoTokenURL(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ZohoTokenURL(%q) = %q, %v, want %q", tc.in, got, err, tc.want)
		}
		u, err := url.Parse(got)
		if err != nil || u.Scheme != "https" || u.Path != "/oauth/v2/token" || !strings.HasPrefix(u.Host, "accounts.zoho") {
			t.Errorf("ZohoTokenURL(%q) = %q is not an https Zoho accounts token URL", tc.in, got)
		}
	}
	hosts := map[string]string{
		refresher.ZohoUS: "accounts.zoho.com", refresher.ZohoEU: "accounts.zoho.eu", refresher.ZohoIN: "accounts.zoho.in",
		refresher.ZohoAU: "accounts.zoho.com.au", refresher.ZohoCN: "accounts.zoho.com.cn", refresher.ZohoJP: "accounts.zoho.jp",
		refresher.ZohoCA: "accounts.zohocloud.ca", refresher.ZohoSA: "accounts.zoho.sa", refresher.ZohoUK: "accounts.zoho.uk",
	}
	if len(hosts) != 9 {
		t.Errorf("the Zoho presets are not 9 distinct URLs")
	}
	for u, host := range hosts {
		if want := "https://" + host + "/oauth/v2/token"; u != want {
			t.Errorf("preset %q, want %q", u, want)
		}
	}
	for _, bad := range []string{"", "usa", "com", "eu1", "zoho.eu"} {
		got, err := refresher.ZohoTokenURL(bad)
		if err == nil || got != "" {
			t.Errorf("ZohoTokenURL(%q) = %q, %v, want an error", bad, got, err)
			continue
		}
		for _, name := range []string{"us", "eu", "in", "au", "cn", "jp", "ca", "sa", "uk"} {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("error %q does not list %q", err, name)
			}
		}
	}
}

// TestHTTPEndpointShortSecretsKeepMessagesReadable: redaction skips values
// too short to be real secrets instead of garbling the message.
func TestHTTPEndpointShortSecretsKeepMessagesReadable(t *testing.T) {
	tok := tokencache.Token{ClientID: "c", ClientSecret: "e", GrantToken: "g", RefreshToken: "r"}
	ep := refresher.NewHTTPEndpoint(closedURL(t))
	for _, op := range endpointOps {
		_, err := op.call(ep, t.Context(), tok)
		if err == nil || !strings.HasPrefix(err.Error(), "refresher: "+op.name+": Post ") || strings.Contains(err.Error(), "[redacted]") {
			t.Errorf("%s: err = %v", op.name, err)
		}
	}
}

// TestHTTPEndpointDeadlineWhileReadingTheAnswer: x/oauth2 formats a body
// read error with %v; the endpoint still reports the ctx's deadline.
func TestHTTPEndpointDeadlineWhileReadingTheAnswer(t *testing.T) {
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"access_token":`))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer stall.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	tok := tokencache.Token{ClientID: "c", ClientSecret: "secret-123456", RefreshToken: "rt_123456789"}
	_, err := refresher.NewHTTPEndpoint(stall.URL+"/token").Refresh(ctx, tok)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, refresher.ErrInvalidGrant) {
		t.Fatalf("err = %v, want a transient error wrapping context.DeadlineExceeded", err)
	}
}
