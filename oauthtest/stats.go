package oauthtest

import "sync/atomic"

// Stats counts what a Server has seen since it was made or ResetStats was
// last called.
type Stats struct {
	// Requests is every request to the token endpoint, whatever came of it.
	Requests int64
	// Exchanges is successful authorization_code grants.
	Exchanges int64
	// Refreshes is successful refresh_token grants.
	Refreshes int64
	// InvalidGrants is answers with invalid_grant (invalid_code,
	// invalid_redirect_uri in Zoho mode): unknown, used, expired, revoked
	// or reused codes and refresh tokens, and redirect URI mismatches.
	// Reuses are included.
	InvalidGrants int64
	// Reuses is presentations of a refresh token that rotation had already
	// retired.
	Reuses int64
	// InvalidClients is answers with invalid_client (invalid_client_secret
	// in Zoho mode): no, unknown or wrong client credentials.
	InvalidClients int64
	// InvalidRequests is other rejected token requests: invalid_request,
	// unsupported_grant_type, a method other than POST.
	InvalidRequests int64
	// Failures is token requests failed on purpose, by FailNext, the fault
	// hook, or Close during a delay.
	Failures int64
	// Canceled is token requests whose client went away during injected
	// latency; they had no effect.
	Canceled int64
	// BasicAuth is token requests that authenticated the client with HTTP
	// Basic, counted whether or not the credentials were right.
	BasicAuth int64
	// BodyAuth is token requests that sent client_id or client_secret in
	// the form body without HTTP Basic, counted the same way.
	BodyAuth int64
	// APICalls is requests to the protected resource answered with 200.
	APICalls int64
	// Unauthorized is requests to the protected resource answered with 401:
	// no, unknown, expired or revoked access token.
	Unauthorized int64
}

// counters backs Stats.
type counters struct {
	requests, exchanges, refreshes          atomic.Int64
	invalidGrants, reuses, invalidClients   atomic.Int64
	invalidRequests, failures, canceled     atomic.Int64
	basicAuth, bodyAuth, apiCalls, unauthed atomic.Int64
}

func (c *counters) all() []*atomic.Int64 {
	return []*atomic.Int64{
		&c.requests, &c.exchanges, &c.refreshes,
		&c.invalidGrants, &c.reuses, &c.invalidClients,
		&c.invalidRequests, &c.failures, &c.canceled,
		&c.basicAuth, &c.bodyAuth, &c.apiCalls, &c.unauthed,
	}
}

// Stats returns the counters. Each is read atomically; a request that is
// being handled meanwhile may be reflected in some counters and not yet in
// others (Requests is counted first).
func (s *Server) Stats() Stats {
	c := &s.stats
	return Stats{
		Requests:        c.requests.Load(),
		Exchanges:       c.exchanges.Load(),
		Refreshes:       c.refreshes.Load(),
		InvalidGrants:   c.invalidGrants.Load(),
		Reuses:          c.reuses.Load(),
		InvalidClients:  c.invalidClients.Load(),
		InvalidRequests: c.invalidRequests.Load(),
		Failures:        c.failures.Load(),
		Canceled:        c.canceled.Load(),
		BasicAuth:       c.basicAuth.Load(),
		BodyAuth:        c.bodyAuth.Load(),
		APICalls:        c.apiCalls.Load(),
		Unauthorized:    c.unauthed.Load(),
	}
}

// ResetStats sets every counter to zero. Tokens, clients and injected
// faults are kept.
func (s *Server) ResetStats() {
	for _, c := range s.stats.all() {
		c.Store(0)
	}
}
