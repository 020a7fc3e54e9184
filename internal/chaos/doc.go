// Package chaos is the fault suite of the refresh protocol: it runs a fleet
// of worker processes that call refresher.Token through redisstore and the
// lock against a real Redis behind a fault proxy (internal/faultproxy), with
// an oauthtest server that rotates refresh tokens and revokes the whole
// family on reuse, injects one scenario's faults, and measures what users
// felt:
//
//   - users lost: at the end the store holds no token for the user, or one
//     whose refresh token the server retired or revoked (asked of the
//     server with RefreshTokenState), or the server revoked a family of the
//     user;
//   - calls failed while valid: Token calls that failed (error, or a token
//     already expired) while the server held a live access token for the
//     user;
//   - refreshes per expiry: refresh requests that reached the server per
//     successful refresh (1.0: nobody sent a refresh token twice);
//   - recovery: after each fault ends, how long until every user not lost
//     had a successful call again (the worst fault of the run).
//
// Everything the suite starts (redis-server processes, workers, the proxy,
// the OAuth server, temporary directories) it stops or removes itself, by
// PID, and every loop and wait is bounded. The program is
// internal/chaos/chaosrun; `make chaos` and `make chaos-short` run it.
package chaos
