package refresher

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokencache/tokencache"
)

// DefaultHTTPTimeout bounds each token request of an endpoint made by
// NewHTTPEndpoint without WithHTTPClient.
const DefaultHTTPTimeout = 30 * time.Second

// HTTPOption configures the endpoint NewHTTPEndpoint returns.
type HTTPOption func(*httpConfig)

type httpConfig struct {
	client    *http.Client
	authStyle oauth2.AuthStyle
}

func newHTTPConfig(opts []HTTPOption) httpConfig {
	c := httpConfig{authStyle: oauth2.AuthStyleInParams}
	for _, opt := range opts {
		if opt != nil {
			opt(&c)
		}
	}
	if c.client == nil {
		c.client = &http.Client{
			Timeout: DefaultHTTPTimeout,
			// A token endpoint has no reason to redirect, and following a
			// 307 or 308 would send the client secret and the token to
			// wherever it points. The redirect answer becomes a transient
			// error instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return c
}

// WithHTTPClient makes the endpoint send its requests with c instead of the
// default client, which has a DefaultHTTPTimeout timeout and follows no
// redirect. c carries proxies, TLS settings and instrumentation (an
// otelhttp transport, say); give it a timeout, or make sure every ctx passed
// to Exchange and Refresh has a deadline. A nil c keeps the default.
func WithHTTPClient(c *http.Client) HTTPOption {
	return func(hc *httpConfig) { hc.client = c }
}

// WithBasicAuth sends the client ID and secret with HTTP Basic
// authentication (RFC 6749 section 2.3.1) instead of in the request body,
// which is the default because Zoho expects that. Either way the
// style is fixed: the endpoint never probes the other one after a failure,
// so that one refresh is always one request.
func WithBasicAuth() HTTPOption {
	return func(hc *httpConfig) { hc.authStyle = oauth2.AuthStyleInHeader }
}

// NewHTTPEndpoint returns an Endpoint that speaks RFC 6749 to the token
// endpoint at tokenURL, such as ZohoUS, through golang.org/x/oauth2. It is
// safe for concurrent use.
//
// Each call authenticates with the token's own ClientID and ClientSecret
// and, for Exchange, sends its RedirectURL, so one endpoint serves any
// number of clients. Each call makes exactly one HTTP request (none when the
// token lacks the grant or refresh token to send).
//
// Exchange and Refresh return the input token with AccessToken, Expiry (from
// expires_in; zero, meaning never, when the answer has none) and APIDomain
// (from api_domain) set from the answer. RefreshToken is replaced when the
// answer carries one and kept otherwise, as non-rotating servers like
// Zoho's answer a refresh without it; APIDomain is kept when the answer has
// none. Every other field is kept as given.
//
// Errors wrap ErrInvalidGrant when the server rejected the grant or the
// client: an answer below 500, other than 429, whose error code is one of
//
//	invalid_grant          RFC 6749: the code or refresh token is invalid,
//	                       expired, revoked, or was issued to another client
//	invalid_client         RFC 6749: the client credentials are wrong (Zoho
//	                       also says so to a client of another data centre)
//	unauthorized_client    RFC 6749: the client may not use this grant
//	invalid_code           Zoho (HTTP 200): the code or refresh token is
//	                       invalid, used or expired
//	invalid_client_secret  Zoho (HTTP 200): the client secret is wrong
//	invalid_redirect_uri   Zoho (HTTP 200): the redirect URI does not match the
//	                       code's, so this code can never be exchanged
//
// Of these, invalid_client, unauthorized_client and invalid_client_secret
// (the client's own credentials or registration refused: a configuration
// error, not a dead user token) wrap ErrInvalidClient as well.
//
// Anything else is transient and does not wrap ErrInvalidGrant: 5xx and 429
// answers whatever their body says, other error codes (invalid_request,
// invalid_scope, unsupported_grant_type and Zoho's rate limit "Access
// Denied" are about the request or the moment, not a dead credential), an
// answer without access_token or that is not JSON, network errors and
// timeouts. When ctx ended, the error wraps ctx.Err() too (x/oauth2 cuts
// the chain when that happens while it reads the answer), so errors.Is(err,
// context.DeadlineExceeded) holds. A
// token without the grant or refresh token the call needs wraps
// ErrInvalidGrant too: nothing can renew it.
//
// When the server answered with an error status or an error code,
// errors.As finds the *oauth2.RetrieveError with the response and the raw
// body; x/oauth2 reports a 2xx answer it cannot use (not JSON, no
// access_token) with a plain error instead. The error's own message never
// holds the body or the error description, which a server may fill with
// what it was sent: for an answer it gives only the operation, the HTTP
// status and the error code; for other failures, the cause's message. Any
// of the token's secrets found in either is replaced by "[redacted]".
func NewHTTPEndpoint(tokenURL string, opts ...HTTPOption) Endpoint {
	cfg := newHTTPConfig(opts)
	e := &httpEndpoint{tokenURL: tokenURL, client: cfg.client, authStyle: cfg.authStyle}
	if u, err := url.Parse(tokenURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		e.badURL = errors.New("refresher: the token URL is not an absolute http or https URL")
	}
	return e
}

type httpEndpoint struct {
	tokenURL  string
	client    *http.Client
	authStyle oauth2.AuthStyle
	badURL    error // set when tokenURL is unusable; every call returns it
}

// oauthConfig is the x/oauth2 configuration for one call with t's client.
// It is built per call because the credentials are the token's.
func (e *httpEndpoint) oauthConfig(t tokencache.Token) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     t.ClientID,
		ClientSecret: t.ClientSecret,
		RedirectURL:  t.RedirectURL,
		Endpoint:     oauth2.Endpoint{TokenURL: e.tokenURL, AuthStyle: e.authStyle},
	}
}

func (e *httpEndpoint) withClient(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, e.client)
}

// Exchange implements Endpoint with an authorization_code grant.
func (e *httpEndpoint) Exchange(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	if e.badURL != nil {
		return tokencache.Token{}, fmt.Errorf("refresher: exchange: %w", e.badURL)
	}
	if t.GrantToken == "" {
		return tokencache.Token{}, fmt.Errorf("refresher: exchange: %w: the token has no grant token", ErrInvalidGrant)
	}
	got, err := e.oauthConfig(t).Exchange(e.withClient(ctx), t.GrantToken)
	if err != nil {
		return tokencache.Token{}, newTokenRequestError(ctx, "exchange", err, t)
	}
	return merge(t, got), nil
}

// Refresh implements Endpoint with a refresh_token grant.
func (e *httpEndpoint) Refresh(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	if e.badURL != nil {
		return tokencache.Token{}, fmt.Errorf("refresher: refresh: %w", e.badURL)
	}
	if t.RefreshToken == "" {
		return tokencache.Token{}, fmt.Errorf("refresher: refresh: %w: the token has no refresh token", ErrInvalidGrant)
	}
	// x/oauth2 has no exported call for a bare refresh_token grant; its
	// TokenSource makes one when the token it holds is not valid, and one
	// without an access token never is, whatever its expiry.
	src := e.oauthConfig(t).TokenSource(e.withClient(ctx), &oauth2.Token{RefreshToken: t.RefreshToken})
	got, err := src.Token()
	if err != nil {
		return tokencache.Token{}, newTokenRequestError(ctx, "refresh", err, t)
	}
	return merge(t, got), nil
}

// merge returns t updated from a token answer.
func merge(t tokencache.Token, got *oauth2.Token) tokencache.Token {
	t.AccessToken = got.AccessToken
	// x/oauth2 already puts the refresh token it sent into an answer that
	// has none; keeping t's covers an exchange answered without one too.
	if got.RefreshToken != "" {
		t.RefreshToken = got.RefreshToken
	}
	// Round(0) drops the monotonic clock reading, so that the token equals
	// what a store gives back after saving it.
	t.Expiry = got.Expiry.Round(0)
	if d, ok := got.Extra("api_domain").(string); ok && d != "" {
		t.APIDomain = d
	}
	return t
}

// deadGrantCodes are the error codes that say the grant or the client is
// dead; see NewHTTPEndpoint.
var deadGrantCodes = map[string]bool{
	"invalid_grant":         true,
	"invalid_client":        true,
	"unauthorized_client":   true,
	"invalid_code":          true,
	"invalid_client_secret": true,
	"invalid_redirect_uri":  true,
}

// clientCodes are the dead-grant codes that say the client's own
// credentials or registration were refused: those errors wrap
// ErrInvalidClient too.
var clientCodes = map[string]bool{
	"invalid_client":        true,
	"unauthorized_client":   true,
	"invalid_client_secret": true,
}

// tokenRequestError is a failed token request. Its message is built once,
// without the response body and with the request's secrets removed; the
// causes stay reachable through Unwrap for errors.Is and errors.As.
type tokenRequestError struct {
	msg  string
	errs []error
}

func (e *tokenRequestError) Error() string   { return e.msg }
func (e *tokenRequestError) Unwrap() []error { return e.errs }

func newTokenRequestError(ctx context.Context, op string, cause error, t tokencache.Token) error {
	var detail string
	dead := false
	var re *oauth2.RetrieveError
	if errors.As(cause, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		dead = status < 500 && status != http.StatusTooManyRequests && deadGrantCodes[re.ErrorCode]
		detail = fmt.Sprintf("token endpoint answered HTTP %d", status)
		if re.ErrorCode != "" {
			detail += fmt.Sprintf(" with error %q", printableCode(re.ErrorCode))
		}
	} else {
		// Network errors, timeouts, and x/oauth2's own complaints about an
		// answer it could not use. None of them quotes the answer, but a
		// URL or a transport's message might quote a request value.
		detail = cause.Error()
	}
	prefix := "refresher: " + op + ": "
	errs := []error{cause}
	if dead && clientCodes[re.ErrorCode] {
		prefix += "invalid client: "
		errs = []error{ErrInvalidGrant, ErrInvalidClient, cause}
	} else if dead {
		prefix += "invalid grant: "
		errs = []error{ErrInvalidGrant, cause}
	} else if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(cause, ctxErr) {
		errs = append(errs, ctxErr)
	}
	detail = redactSecrets(detail, t.ClientSecret, t.RefreshToken, t.GrantToken, t.AccessToken)
	return &tokenRequestError{msg: prefix + detail, errs: errs}
}

// printableCode returns code when it is a well-formed RFC 6749 error code
// of reasonable length (printable ASCII without '"' and '\'; Zoho's
// "Access Denied" passes), else a placeholder: a server must not be able to
// put arbitrary text into the error message.
func printableCode(code string) string {
	if len(code) > 64 {
		return "(malformed error code)"
	}
	for i := 0; i < len(code); i++ {
		if c := code[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return "(malformed error code)"
		}
	}
	return code
}

// minRedacted is the length below which a "secret" is not searched for:
// replacing every "g" or "abc" would garble the message and hide nothing
// that a real client secret or token looks like.
const minRedacted = 6

// redactSecrets replaces every occurrence of each secret in s.
func redactSecrets(s string, secrets ...string) string {
	for _, v := range secrets {
		if len(v) >= minRedacted {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}
