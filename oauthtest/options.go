package oauthtest

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Defaults of a new Server.
const (
	// DefaultAccessTokenLifetime is how long an access token lives unless
	// WithAccessTokenLifetime says otherwise.
	DefaultAccessTokenLifetime = time.Hour
	// DefaultGrantLifetime is how long an authorization code issued by
	// IssueGrant or the authorization endpoint can be exchanged.
	DefaultGrantLifetime = 10 * time.Minute
)

// The client that WithDefaultClient registers. Its secret is public: use it
// only against a test server.
const (
	DefaultClientID     = "oauthtest-client"
	DefaultClientSecret = "oauthtest-secret"
	DefaultRedirectURL  = "http://localhost/callback"
)

// RefreshMode says what a Server puts in the answer to a refresh_token grant.
type RefreshMode int

const (
	// RotateRefreshToken (the default) answers every refresh with a new
	// refresh token and retires the one presented: presenting it again is a
	// reuse, answered with invalid_grant.
	RotateRefreshToken RefreshMode = iota
	// RepeatRefreshToken answers with the refresh token that was presented,
	// which stays valid.
	RepeatRefreshToken
	// OmitRefreshToken answers without a refresh_token member, as Zoho does;
	// the refresh token presented stays valid.
	OmitRefreshToken
)

// String returns the mode's name, such as "rotate".
func (m RefreshMode) String() string {
	switch m {
	case RotateRefreshToken:
		return "rotate"
	case RepeatRefreshToken:
		return "repeat"
	case OmitRefreshToken:
		return "omit"
	default:
		return "RefreshMode(" + strconv.Itoa(int(m)) + ")"
	}
}

// FaultFunc decides whether to fail a token request. When ok is true the
// server answers with status (0 means 200) and body, verbatim, as
// application/json, and counts a failure; the request has no other effect.
// It runs after the request form has been parsed, so it may call
// r.FormValue, and before the request is processed. It must be safe for
// concurrent use.
type FaultFunc func(r *http.Request) (status int, body string, ok bool)

// LatencyFunc returns how long the server waits before it handles the token
// request r. It must be safe for concurrent use.
type LatencyFunc func(r *http.Request) time.Duration

// Option configures a Server made by New or Start.
type Option func(*Server)

// WithClient registers an OAuth client. redirectURL, when not empty, is the
// only redirect_uri the client's authorization codes can be exchanged with.
// Registering an ID again replaces its secret and redirect URL.
func WithClient(id, secret, redirectURL string) Option {
	return func(s *Server) { s.clients[id] = client{secret: secret, redirectURL: redirectURL} }
}

// WithDefaultClient registers the client DefaultClientID with
// DefaultClientSecret and DefaultRedirectURL.
func WithDefaultClient() Option {
	return WithClient(DefaultClientID, DefaultClientSecret, DefaultRedirectURL)
}

// WithAccessTokenLifetime sets how long an access token lives
// (DefaultAccessTokenLifetime by default). The expires_in the server sends
// is the lifetime rounded up to whole seconds, at least 1, because 0 would
// mean "does not expire" to most clients; the server itself expires the
// token after exactly d. A d of zero or less keeps the default.
func WithAccessTokenLifetime(d time.Duration) Option {
	return func(s *Server) {
		if d > 0 {
			s.accessLifetime = d
		}
	}
}

// WithGrantLifetime sets how long an authorization code can be exchanged
// (DefaultGrantLifetime by default). A d of zero or less keeps the default.
func WithGrantLifetime(d time.Duration) Option {
	return func(s *Server) {
		if d > 0 {
			s.grantLifetime = d
		}
	}
}

// WithRefreshMode selects what a refresh answer carries; the default is
// RotateRefreshToken.
func WithRefreshMode(m RefreshMode) Option {
	return func(s *Server) { s.refreshMode = m }
}

// WithRevokeOnReuse makes the presentation of a retired refresh token
// revoke its whole family, as RFC 9700 recommends: the refresh token that
// replaced it and every access token issued from the same authorization
// stop working. Off by default, when a reuse is only rejected and counted.
func WithRevokeOnReuse(on bool) Option {
	return func(s *Server) { s.revokeOnReuse = on }
}

// WithAPIDomain sets the api_domain member of token answers. By default it
// is the server's base URL (see Server.URL); an empty domain leaves the
// member out.
func WithAPIDomain(domain string) Option {
	return func(s *Server) {
		s.apiDomain = domain
		s.apiDomainSet = true
	}
}

// WithBaseURL tells a server mounted outside Start the URL it is reached at,
// such as "http://oauth:8080", for Server.URL, Server.TokenURL and the
// default api_domain. Without it, and outside Start, the api_domain is taken
// from each request's Host. Start replaces it with its listener's URL.
func WithBaseURL(u string) Option {
	return func(s *Server) { s.baseURL = strings.TrimRight(u, "/") }
}

// WithLatency delays every token request by d before it is handled. See
// Server.SetLatency.
func WithLatency(d time.Duration) Option {
	return func(s *Server) { s.latency = d }
}

// WithLatencyFunc delays every token request by f(r), added to any fixed
// latency. See Server.SetLatencyFunc.
func WithLatencyFunc(f LatencyFunc) Option {
	return func(s *Server) { s.latencyFunc = f }
}

// WithFault installs a hook that can fail any token request. See FaultFunc
// and Server.SetFault.
func WithFault(f FaultFunc) Option {
	return func(s *Server) { s.fault = f }
}

// WithZohoQuirks makes the token endpoint answer errors the way Zoho
// Accounts does: with HTTP 200 and an error member, and with Zoho's codes:
// invalid_code for an unknown, used or expired code or refresh token (RFC
// 6749's invalid_grant), invalid_client_secret for a wrong secret, and
// invalid_redirect_uri for a redirect URI mismatch. Counters keep RFC 6749's
// names: an invalid_code answer counts as an InvalidGrant. Zoho does not
// rotate refresh tokens either; combine with
// WithRefreshMode(OmitRefreshToken) for a server that behaves like Zoho.
func WithZohoQuirks() Option {
	return func(s *Server) { s.zoho = true }
}

// WithClock sets the clock the server reads to expire access tokens and
// codes (time.Now by default), so that tests can move time forward. Latency
// injection still waits in real time.
func WithClock(now func() time.Time) Option {
	return func(s *Server) {
		if now != nil {
			s.now = now
		}
	}
}

// WithLogger makes the server log one line per token request outcome, at
// Info level: the event, grant type, client ID and user name. Secrets,
// codes and tokens are never logged. A nil logger (the default) logs
// nothing.
func WithLogger(l *slog.Logger) Option {
	return func(s *Server) { s.logger = l }
}
