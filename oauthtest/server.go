package oauthtest

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Paths a Server answers.
const (
	// TokenPath is the token endpoint, at Zoho's path.
	TokenPath = "/oauth/v2/token"
	// ShortTokenPath is the same token endpoint at a generic path.
	ShortTokenPath = "/token"
	// AuthPath is the authorization endpoint, at Zoho's path.
	AuthPath = "/oauth/v2/auth"
	// ShortAuthPath is the same authorization endpoint at a generic path.
	ShortAuthPath = "/authorize"
	// WhoAmIPath is the protected resource.
	WhoAmIPath = "/api/v1/whoami"
)

// maxFormBytes bounds the body of a token request.
const maxFormBytes = 64 << 10

// Server is a local OAuth 2.0 authorization server and protected resource.
// Make one with New (or Start in a test); the zero value is not usable. It is
// safe for concurrent use: every method may be called while it serves
// requests.
type Server struct {
	// Set by New and its options, read-only afterwards.
	now            func() time.Time
	accessLifetime time.Duration
	grantLifetime  time.Duration
	refreshMode    RefreshMode
	revokeOnReuse  bool
	zoho           bool
	apiDomain      string
	apiDomainSet   bool
	logger         *slog.Logger
	mux            *http.ServeMux
	closed         chan struct{} // closed by Close
	closeOnce      sync.Once

	stats counters // atomic, no lock needed

	mu          sync.Mutex // guards every field below
	baseURL     string
	clients     map[string]client
	grants      map[string]*grant        // by code
	refresh     map[string]*refreshEntry // by refresh token, retired ones included
	access      map[string]*accessEntry  // by access token
	families    map[string][]*family     // by user name
	latency     time.Duration
	latencyFunc LatencyFunc
	fault       FaultFunc
	failLeft    int // requests FailNext still fails
	failStatus  int
	sweepAt     int // len(access)+len(grants) that triggers the next sweep
}

type client struct {
	secret, redirectURL string
}

// grant is an unused authorization code.
type grant struct {
	clientID, user string
	redirectURI    string // the redirect_uri of the authorization request, if any
	expiry         time.Time
}

// family is everything issued from one authorization: one refresh token
// chain and its access tokens.
type family struct {
	clientID, user string
	revoked        bool
}

type refreshEntry struct {
	fam     *family
	retired bool // rotated away: presenting it again is a reuse
}

type accessEntry struct {
	fam    *family
	expiry time.Time
}

// New returns a Server configured by opts. Without WithClient or
// WithDefaultClient it knows no client until AddClient is called.
func New(opts ...Option) *Server {
	s := &Server{
		now:            time.Now,
		accessLifetime: DefaultAccessTokenLifetime,
		grantLifetime:  DefaultGrantLifetime,
		closed:         make(chan struct{}),
		clients:        make(map[string]client),
		grants:         make(map[string]*grant),
		refresh:        make(map[string]*refreshEntry),
		access:         make(map[string]*accessEntry),
		families:       make(map[string][]*family),
		sweepAt:        1024,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(s)
		}
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc(TokenPath, s.serveToken)
	s.mux.HandleFunc(ShortTokenPath, s.serveToken)
	s.mux.HandleFunc(AuthPath, s.serveAuthorize)
	s.mux.HandleFunc(ShortAuthPath, s.serveAuthorize)
	s.mux.HandleFunc(WhoAmIPath, s.serveWhoAmI)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// URL returns the server's base URL, such as "http://127.0.0.1:40123": the
// one Start or Listen listens on, or the one given to WithBaseURL. It is
// empty for a server made by New without WithBaseURL, which cannot know
// where it is served: outside a test, run it with Listen.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL
}

// TokenURL returns URL() + TokenPath, or "" when URL is empty.
func (s *Server) TokenURL() string {
	if u := s.URL(); u != "" {
		return u + TokenPath
	}
	return ""
}

// Close releases every request that is waiting on injected latency: each
// is answered with 503 and {"error":"server_error"}. Requests that arrive
// later skip the latency. Close does not stop a listener; Start's cleanup
// calls it before it closes its test server. Calling Close more than once
// is harmless.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
}

func (s *Server) setBaseURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.baseURL = strings.TrimRight(u, "/")
}

// AddClient registers an OAuth client, like WithClient, on a running
// server.
func (s *Server) AddClient(id, secret, redirectURL string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[id] = client{secret: secret, redirectURL: redirectURL}
}

// IssueGrant returns a new single-use authorization code that clientID can
// exchange, with the client's registered redirect URL, for tokens of
// userName, as if the user had just approved an authorization request. The
// code expires after the grant lifetime (see WithGrantLifetime). The client
// need not be registered yet; if it is not when the code is exchanged, the
// exchange fails with invalid_client.
func (s *Server) IssueGrant(clientID, userName string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueGrantLocked(clientID, userName, "")
}

func (s *Server) issueGrantLocked(clientID, userName, redirectURI string) string {
	s.sweepLocked()
	code := newSecret("gc_")
	s.grants[code] = &grant{
		clientID:    clientID,
		user:        userName,
		redirectURI: redirectURI,
		expiry:      s.now().Add(s.grantLifetime),
	}
	return code
}

// Tokens are tokens IssueTokens made without a request.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	// Expiry is when AccessToken expires, by the server's clock.
	Expiry time.Time
	// APIDomain is the api_domain a token answer would carry, "" when the
	// server has no base URL yet or WithAPIDomain("") was given.
	APIDomain string
}

// IssueTokens returns a new access token and refresh token for userName,
// issued to clientID, as if a code had just been exchanged, but without a
// request and without counting an exchange. Tests use it to seed a store
// with a token that can be refreshed.
func (s *Server) IssueTokens(clientID, userName string) Tokens {
	s.mu.Lock()
	defer s.mu.Unlock()
	fam := s.newFamilyLocked(clientID, userName)
	at, exp := s.newAccessLocked(fam)
	domain := s.apiDomain
	if !s.apiDomainSet {
		domain = s.baseURL
	}
	return Tokens{AccessToken: at, RefreshToken: s.newRefreshLocked(fam), Expiry: exp, APIDomain: domain}
}

// Revoke revokes every token issued to userName, under any client: its
// refresh tokens are then answered with invalid_grant and its access tokens
// with 401. Unused codes are not affected. It returns how many token
// families (authorizations) it revoked.
func (s *Server) Revoke(userName string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, fam := range s.families[userName] {
		if !fam.revoked {
			fam.revoked = true
			n++
		}
	}
	return n
}

// SetLatency sets the fixed delay before each token request is handled. A
// request whose client gives up during the delay is dropped without any
// effect (counted as Canceled); Close ends every delay at once. Zero turns
// the fixed delay off.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetLatencyFunc sets a per-request delay, added to the fixed one; nil
// removes it.
func (s *Server) SetLatencyFunc(f LatencyFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latencyFunc = f
}

// SetFault installs (or, with nil, removes) the hook WithFault installs.
func (s *Server) SetFault(f FaultFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// FailNext makes the next n token requests fail with HTTP status and the
// body {"error":"server_error"}, each counted as a failure, before the fault
// hook is consulted. A status of 0 or less means 500. It replaces an
// earlier FailNext that has requests left; n <= 0 cancels it.
func (s *Server) FailNext(n, status int) {
	if status <= 0 {
		status = http.StatusInternalServerError
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failLeft = max(n, 0)
	s.failStatus = status
}

// serveToken is the token endpoint, RFC 6749 section 3.2.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	s.stats.requests.Add(1)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if r.Method != http.MethodPost {
		h.Set("Allow", http.MethodPost)
		s.stats.invalidRequests.Add(1)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "invalid_request", Description: "the token endpoint accepts POST only"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	parseErr := r.ParseForm()
	creds, credErr := s.clientCredentials(r)

	if !s.wait(w, r) {
		return
	}
	if s.injectFault(w, r) {
		return
	}

	form := r.PostForm
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case parseErr != nil:
		s.reject(w, r, creds, oauthError{status: http.StatusBadRequest, code: "invalid_request", desc: "the body is not a valid form"})
		return
	case ct != "application/x-www-form-urlencoded":
		s.reject(w, r, creds, oauthError{status: http.StatusBadRequest, code: "invalid_request", desc: "the body must be application/x-www-form-urlencoded"})
		return
	case credErr != nil:
		s.reject(w, r, creds, *credErr)
		return
	}

	switch gt := form.Get("grant_type"); gt {
	case "authorization_code":
		s.exchange(w, r, creds)
	case "refresh_token":
		s.refreshGrant(w, r, creds)
	case "":
		s.reject(w, r, creds, oauthError{status: http.StatusBadRequest, code: "invalid_request", desc: "grant_type is missing"})
	default:
		s.reject(w, r, creds, oauthError{status: http.StatusBadRequest, code: "unsupported_grant_type", desc: "only authorization_code and refresh_token are supported"})
	}
}

// credentials is how a request authenticated its client.
type credentials struct {
	ids, secrets []string // candidate values, see clientCredentials
	basic        bool
}

func (c credentials) id() string {
	if len(c.ids) == 0 {
		return ""
	}
	return c.ids[0]
}

// clientCredentials reads the client authentication of r (RFC 6749 section
// 2.3.1) and counts its style. HTTP Basic credentials are form-encoded
// before base64 by the RFC, as x/oauth2 does; curl -u and others send them
// raw, so both the decoded and the raw value are tried.
func (s *Server) clientCredentials(r *http.Request) (credentials, *oauthError) {
	form := r.PostForm
	bodyID, bodySecret := form.Get("client_id"), form.Get("client_secret")
	_, hasBodySecret := form["client_secret"]
	if id, secret, ok := r.BasicAuth(); ok {
		s.stats.basicAuth.Add(1)
		c := credentials{ids: formDecoded(id), secrets: formDecoded(secret), basic: true}
		if hasBodySecret {
			return c, &oauthError{status: http.StatusBadRequest, code: "invalid_request", desc: "the client authenticated both with HTTP Basic and in the body"}
		}
		if bodyID != "" && !contains(c.ids, bodyID) {
			return c, &oauthError{status: http.StatusBadRequest, code: "invalid_request", desc: "client_id in the body differs from the HTTP Basic user"}
		}
		return c, nil
	}
	if bodyID == "" && !hasBodySecret {
		return credentials{}, &oauthError{status: http.StatusUnauthorized, code: "invalid_client", desc: "no client authentication"}
	}
	s.stats.bodyAuth.Add(1)
	return credentials{ids: []string{bodyID}, secrets: []string{bodySecret}}, nil
}

// formDecoded returns v decoded as a form value, then v itself when that
// differs.
func formDecoded(v string) []string {
	d, err := url.QueryUnescape(v)
	if err != nil || d == v {
		return []string{v}
	}
	return []string{d, v}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// authenticateLocked returns the ID of the client creds prove, or the
// invalid_client error.
func (s *Server) authenticateLocked(creds credentials) (string, *oauthError) {
	for _, id := range creds.ids {
		c, ok := s.clients[id]
		if !ok {
			continue
		}
		for _, secret := range creds.secrets {
			if subtle.ConstantTimeCompare([]byte(secret), []byte(c.secret)) == 1 {
				return id, nil
			}
		}
		return "", &oauthError{status: http.StatusUnauthorized, code: "invalid_client", zoho: "invalid_client_secret", desc: "wrong client secret"}
	}
	return "", &oauthError{status: http.StatusUnauthorized, code: "invalid_client", desc: "unknown client"}
}

// exchange handles grant_type=authorization_code, RFC 6749 section 4.1.3.
func (s *Server) exchange(w http.ResponseWriter, r *http.Request, creds credentials) {
	form := r.PostForm
	code := form.Get("code")
	if code == "" {
		s.reject(w, r, creds, oauthError{status: http.StatusBadRequest, code: "invalid_request", desc: "code is missing"})
		return
	}
	s.mu.Lock()
	clientID, oerr := s.authenticateLocked(creds)
	if oerr != nil {
		s.mu.Unlock()
		s.reject(w, r, creds, *oerr)
		return
	}
	g := s.grants[code]
	now := s.now()
	switch {
	case g == nil || !now.Before(g.expiry):
		delete(s.grants, code)
		s.mu.Unlock()
		s.reject(w, r, creds, oauthError{status: http.StatusBadRequest, code: "invalid_grant", zoho: "invalid_code", desc: "unknown, used or expired authorization code"})
		return
	case g.clientID != clientID:
		s.mu.Unlock()
		s.reject(w, r, creds, oauthError{status: http.StatusBadRequest, code: "invalid_grant", zoho: "invalid_code", desc: "the authorization code was issued to another client"})
		return
	}
	want := g.redirectURI
	if want == "" {
		want = s.clients[clientID].redirectURL
	}
	if want != "" && form.Get("redirect_uri") != want {
		s.mu.Unlock()
		s.reject(w, r, creds, oauthError{status: http.StatusBadRequest, code: "invalid_grant", zoho: "invalid_redirect_uri", desc: "redirect_uri does not match"})
		return
	}
	delete(s.grants, code)
	fam := s.newFamilyLocked(clientID, g.user)
	at, _ := s.newAccessLocked(fam)
	resp := tokenResponse{
		AccessToken:  at,
		RefreshToken: s.newRefreshLocked(fam),
		ExpiresIn:    s.expiresIn(),
		APIDomain:    s.apiDomainLocked(r),
		TokenType:    "Bearer",
	}
	s.mu.Unlock()
	s.stats.exchanges.Add(1)
	s.log(r.Context(), "code exchanged", "authorization_code", clientID, g.user)
	writeJSON(w, http.StatusOK, resp)
}

// refreshGrant handles grant_type=refresh_token, RFC 6749 section 6.
func (s *Server) refreshGrant(w http.ResponseWriter, r *http.Request, creds credentials) {
	rt := r.PostForm.Get("refresh_token")
	if rt == "" {
		s.reject(w, r, creds, oauthError{status: http.StatusBadRequest, code: "invalid_request", desc: "refresh_token is missing"})
		return
	}
	s.mu.Lock()
	clientID, oerr := s.authenticateLocked(creds)
	if oerr != nil {
		s.mu.Unlock()
		s.reject(w, r, creds, *oerr)
		return
	}
	e := s.refresh[rt]
	switch {
	case e == nil:
		s.mu.Unlock()
		s.reject(w, r, creds, oauthError{status: http.StatusBadRequest, code: "invalid_grant", zoho: "invalid_code", desc: "unknown refresh token"})
		return
	case e.fam.clientID != clientID:
		s.mu.Unlock()
		s.reject(w, r, creds, oauthError{status: http.StatusBadRequest, code: "invalid_grant", zoho: "invalid_code", desc: "the refresh token was issued to another client"})
		return
	case e.fam.revoked:
		s.mu.Unlock()
		s.reject(w, r, creds, oauthError{status: http.StatusBadRequest, code: "invalid_grant", zoho: "invalid_code", desc: "the refresh token was revoked"})
		return
	case e.retired:
		if s.revokeOnReuse {
			e.fam.revoked = true
		}
		s.mu.Unlock()
		s.stats.reuses.Add(1)
		s.reject(w, r, creds, oauthError{status: http.StatusBadRequest, code: "invalid_grant", zoho: "invalid_code", desc: "the refresh token was already used"})
		return
	}
	at, _ := s.newAccessLocked(e.fam)
	resp := tokenResponse{
		AccessToken: at,
		ExpiresIn:   s.expiresIn(),
		APIDomain:   s.apiDomainLocked(r),
		TokenType:   "Bearer",
	}
	switch s.refreshMode {
	case RepeatRefreshToken:
		resp.RefreshToken = rt
	case OmitRefreshToken:
	default:
		e.retired = true
		resp.RefreshToken = s.newRefreshLocked(e.fam)
	}
	user := e.fam.user
	s.mu.Unlock()
	s.stats.refreshes.Add(1)
	s.log(r.Context(), "token refreshed", "refresh_token", clientID, user)
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) newFamilyLocked(clientID, user string) *family {
	fam := &family{clientID: clientID, user: user}
	s.families[user] = append(s.families[user], fam)
	return fam
}

func (s *Server) newRefreshLocked(fam *family) string {
	rt := newSecret("rt_")
	s.refresh[rt] = &refreshEntry{fam: fam}
	return rt
}

func (s *Server) newAccessLocked(fam *family) (string, time.Time) {
	s.sweepLocked()
	at := newSecret("at_")
	exp := s.now().Add(s.accessLifetime)
	s.access[at] = &accessEntry{fam: fam, expiry: exp}
	return at, exp
}

// sweepLocked forgets expired access tokens and codes once their number
// has doubled since the last sweep, so that a long-running server does not
// grow without bound. Refresh tokens are kept: they never expire.
func (s *Server) sweepLocked() {
	if len(s.access)+len(s.grants) < s.sweepAt {
		return
	}
	now := s.now()
	for k, a := range s.access {
		if !now.Before(a.expiry) {
			delete(s.access, k)
		}
	}
	for k, g := range s.grants {
		if !now.Before(g.expiry) {
			delete(s.grants, k)
		}
	}
	s.sweepAt = max(1024, 2*(len(s.access)+len(s.grants)))
}

// expiresIn is the access token lifetime in whole seconds, rounded up,
// never 0.
func (s *Server) expiresIn() int64 {
	return max(1, int64(math.Ceil(s.accessLifetime.Seconds())))
}

func (s *Server) apiDomainLocked(r *http.Request) string {
	switch {
	case s.apiDomainSet:
		return s.apiDomain
	case s.baseURL != "":
		return s.baseURL
	case r.TLS != nil:
		return "https://" + r.Host
	default:
		return "http://" + r.Host
	}
}

// wait applies the injected latency. It reports false, having answered or
// dropped the request, when the wait was cut short.
func (s *Server) wait(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	d, f := s.latency, s.latencyFunc
	s.mu.Unlock()
	if f != nil {
		d += f(r)
	}
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		s.stats.canceled.Add(1)
		return false
	case <-s.closed:
		s.stats.failures.Add(1)
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "server_error", Description: "the server is closing"})
		return false
	}
}

// injectFault applies FailNext and the fault hook. It reports whether it
// answered the request.
func (s *Server) injectFault(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	status := 0
	if s.failLeft > 0 {
		s.failLeft--
		status = s.failStatus
	}
	f := s.fault
	s.mu.Unlock()
	if status != 0 {
		s.stats.failures.Add(1)
		s.log(r.Context(), "failure injected", r.PostForm.Get("grant_type"), "", "")
		writeJSON(w, status, errorBody{Error: "server_error"})
		return true
	}
	if f == nil {
		return false
	}
	status, body, ok := f(r)
	if !ok {
		return false
	}
	if status <= 0 {
		status = http.StatusOK
	}
	s.stats.failures.Add(1)
	s.log(r.Context(), "failure injected", r.PostForm.Get("grant_type"), "", "")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
	return true
}

// oauthError is an error answer of the token endpoint, RFC 6749 section
// 5.2. Its description never holds a secret.
type oauthError struct {
	status int
	code   string
	zoho   string // Zoho's code, when it differs from code
	desc   string
}

type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// reject answers with e and counts it.
func (s *Server) reject(w http.ResponseWriter, r *http.Request, creds credentials, e oauthError) {
	switch e.code {
	case "invalid_grant":
		s.stats.invalidGrants.Add(1)
	case "invalid_client":
		s.stats.invalidClients.Add(1)
	default:
		s.stats.invalidRequests.Add(1)
	}
	s.log(r.Context(), "request rejected", r.PostForm.Get("grant_type"), creds.id(), "", slog.String("error", e.code))
	if s.zoho {
		code := e.code
		if e.zoho != "" {
			code = e.zoho
		}
		writeJSON(w, http.StatusOK, errorBody{Error: code})
		return
	}
	if e.status == http.StatusUnauthorized && creds.basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="oauthtest"`)
	}
	writeJSON(w, e.status, errorBody{Error: e.code, Description: e.desc})
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	ExpiresIn    int64  `json:"expires_in"`
	APIDomain    string `json:"api_domain,omitempty"`
	TokenType    string `json:"token_type"`
}

// serveAuthorize is an authorization endpoint (RFC 6749 section 4.1.1) that
// approves every request: it redirects to the redirect URI with a new code
// for the user named by login_hint ("user@example.com" when absent) and
// the request's state.
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "the authorization endpoint accepts GET only", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	clientID, redirect := q.Get("client_id"), q.Get("redirect_uri")
	s.mu.Lock()
	c, ok := s.clients[clientID]
	s.mu.Unlock()
	// Errors about the client or the redirect URI must not redirect
	// (section 4.1.2.1).
	switch {
	case !ok:
		http.Error(w, "unknown client_id", http.StatusBadRequest)
		return
	case redirect == "" && c.redirectURL == "":
		http.Error(w, "redirect_uri is missing", http.StatusBadRequest)
		return
	case redirect != "" && c.redirectURL != "" && redirect != c.redirectURL:
		http.Error(w, "redirect_uri does not match the client's", http.StatusBadRequest)
		return
	}
	target := redirect
	if target == "" {
		target = c.redirectURL
	}
	u, err := url.Parse(target)
	if err != nil || !u.IsAbs() {
		http.Error(w, "redirect_uri is not an absolute URL", http.StatusBadRequest)
		return
	}
	back := u.Query()
	if st := q.Get("state"); st != "" {
		back.Set("state", st)
	}
	if q.Get("response_type") != "code" {
		back.Set("error", "unsupported_response_type")
	} else {
		user := q.Get("login_hint")
		if user == "" {
			user = "user@example.com"
		}
		s.mu.Lock()
		back.Set("code", s.issueGrantLocked(clientID, user, redirect))
		s.mu.Unlock()
	}
	u.RawQuery = back.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// serveWhoAmI is the protected resource. It accepts the bearer token
// scheme of RFC 6750 and Zoho's "Zoho-oauthtoken" scheme.
func (s *Server) serveWhoAmI(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "invalid_request"})
		return
	}
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if tok == "" || !strings.EqualFold(scheme, "Bearer") && !strings.EqualFold(scheme, "Zoho-oauthtoken") {
		s.stats.unauthed.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="oauthtest"`)
		writeJSON(w, http.StatusUnauthorized, errorBody{Error: "invalid_request", Description: "no bearer token"})
		return
	}
	s.mu.Lock()
	a := s.access[tok]
	live := a != nil && !a.fam.revoked && s.now().Before(a.expiry)
	var user, clientID string
	if live {
		user, clientID = a.fam.user, a.fam.clientID
	}
	s.mu.Unlock()
	if !live {
		s.stats.unauthed.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="oauthtest", error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, errorBody{Error: "invalid_token", Description: "the access token is unknown, expired or revoked"})
		return
	}
	s.stats.apiCalls.Add(1)
	writeJSON(w, http.StatusOK, struct {
		User     string `json:"user"`
		ClientID string `json:"client_id"`
	}{user, clientID})
}

func (s *Server) log(ctx context.Context, msg, grantType, clientID, user string, extra ...slog.Attr) {
	if s.logger == nil {
		return
	}
	attrs := []slog.Attr{slog.String("grant_type", grantType)}
	if clientID != "" {
		attrs = append(attrs, slog.String("client_id", clientID))
	}
	if user != "" {
		attrs = append(attrs, slog.String("user", user))
	}
	s.logger.LogAttrs(ctx, slog.LevelInfo, "oauthtest: "+msg, append(attrs, extra...)...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// newSecret returns prefix followed by 128 random bits.
func newSecret(prefix string) string {
	return prefix + rand.Text()
}
