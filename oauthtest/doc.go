// Package oauthtest is a local OAuth 2.0 authorization server for tests,
// demos and development setups. It imports the standard library only.
//
// A [Server] is an [http.Handler] that speaks enough of RFC 6749 to stand in
// for a real provider such as Zoho Accounts:
//
//   - POST /oauth/v2/token (Zoho's path) and POST /token, the token endpoint:
//     grant_type=authorization_code and grant_type=refresh_token, with the
//     client authenticated by client_id and client_secret in the form body or
//     by HTTP Basic. The answer is JSON with access_token, refresh_token,
//     expires_in, api_domain and token_type.
//   - GET /oauth/v2/auth and GET /authorize, an authorization endpoint that
//     approves every request at once and redirects back with a code, for
//     programs that run a login flow over HTTP.
//   - GET /api/v1/whoami, a protected resource that answers 200 with the
//     user's name for a live access token and 401 otherwise.
//
// Refresh tokens rotate by default: each refresh returns a new refresh token
// and retires the one presented, and presenting a retired one again is
// answered with invalid_grant and counted as a reuse (optionally revoking the
// whole token family). [WithRefreshMode] selects servers that repeat or omit
// the refresh token instead, and [WithZohoQuirks] answers errors the way Zoho
// does (HTTP 200 with {"error":"invalid_code"}).
//
// Latency and failures can be injected ([WithLatency], [Server.FailNext],
// [WithFault]), and [Server.Stats] counts what the server saw: requests,
// successful exchanges and refreshes, rejected grants, reuses, injected
// failures, and which client authentication style each request used.
//
// In a test, [Start] runs a Server on a loopback port and closes it when the
// test ends:
//
//	srv := oauthtest.Start(t, oauthtest.WithDefaultClient())
//	code := srv.IssueGrant(oauthtest.DefaultClientID, "alice@example.com")
//	// exchange code at srv.TokenURL() ...
//
// Outside tests, mount [New]'s Server on any http.Server.
//
// The server never logs, and never puts into an error message, a client
// secret, a code or a token. It approves every authorization request and
// keeps everything in memory: it is a test double, never to be exposed to
// untrusted networks.
package oauthtest
