package refresher

import (
	"context"
	"errors"

	"github.com/tokencache/tokencache"
)

// Endpoint talks to the OAuth authorization server. NewHTTPEndpoint is the
// RFC 6749 implementation; tests and unusual servers supply their own.
//
// Implementations must be safe for concurrent use, must honour ctx, and
// must wrap ErrInvalidGrant when the server rejects the grant or refresh
// token, so that the Refresher stops retrying a dead token, and
// ErrInvalidClient beside it when the server refuses the client's
// credentials, so that the Refresher does not take a configuration error
// for a dead token. Any other error is taken as transient.
type Endpoint interface {
	// Exchange trades t.GrantToken, with t's client credentials and
	// RedirectURL, for tokens. It returns t with AccessToken, RefreshToken,
	// Expiry and APIDomain set from the response and every other field kept.
	Exchange(ctx context.Context, t tokencache.Token) (tokencache.Token, error)
	// Refresh trades t.RefreshToken, with t's client credentials, for a new
	// access token. It returns t with AccessToken, Expiry and APIDomain set
	// from the response, RefreshToken replaced when the server rotated it
	// (kept when the response has none), and every other field kept.
	Refresh(ctx context.Context, t tokencache.Token) (tokencache.Token, error)
}

// ErrInvalidGrant means the authorization server rejected the grant token,
// the refresh token or the client credentials: retrying as it is cannot
// help. Unless the error also wraps ErrInvalidClient, the user has to
// authorize again. Endpoints wrap it, and Refresher.Token returns
// it when that is why it has no token. A network failure, a timeout or a 5xx
// answer is never ErrInvalidGrant.
var ErrInvalidGrant = errors.New("refresher: invalid grant")
