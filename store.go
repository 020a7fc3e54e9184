package tokencache

import (
	"context"
	"errors"
)

// Errors returned by every Store. Compare them with errors.Is: stores wrap
// them with details.
var (
	// ErrNotFound means no token matches. It is returned only when the store
	// answered and had nothing: a failure of Redis or of the network is
	// never ErrNotFound, because a caller that sees it starts a new login.
	ErrNotFound = errors.New("tokencache: token not found")
	// ErrInvalidToken means the input cannot be matched or stored: a nil
	// token, a query with nothing to match on, a token with no secret, a
	// field over MaxFieldSize, or a malformed ID. Nothing was changed.
	ErrInvalidToken = errors.New("tokencache: invalid token")
	// ErrConflict means SaveToken was given a non-zero Version that is not the
	// stored revision (or no token matched). Nothing was changed; read the
	// token again and retry.
	ErrConflict = errors.New("tokencache: version conflict")
)

// Store persists tokens. It keeps the TokenStore contract of the Zoho CRM
// SDKs (find, save and delete a token, get and delete all tokens, find by
// ID) and makes it safe for many processes at once.
//
// Queries are matched by the rules documented at [RuleOf]. A token that is
// not [Token.Live] (its access token expired and it has no refresh token) is
// treated as deleted by every method.
//
// Implementations must be safe for concurrent use, and must pass
// storetest.Run.
type Store interface {
	// FindToken returns the token that query matches under the rule
	// [RuleOf] picks: ID, else UserName with ClientID, else GrantToken with
	// ClientID, else RefreshToken with ClientID, else AccessToken. Only the
	// first set field decides; a miss there is ErrNotFound even when a later
	// field would have matched. An access token past its Expiry matches
	// nothing. A query with none of those fields, or an invalid one, is
	// ErrInvalidToken.
	FindToken(ctx context.Context, query Token) (Token, error)

	// SaveToken inserts token, or updates the stored token it matches under
	// the same rules as FindToken, replacing all of its fields but keeping
	// its ID. On success it sets token.ID and token.Version to what was
	// stored. It never creates a second token for one identity, also when
	// many processes save it at once.
	//
	// A token with none of AccessToken, RefreshToken and GrantToken, or one
	// whose access token has already expired with no refresh token, is
	// ErrInvalidToken. Version 0 saves unconditionally; a non-zero Version
	// saves only if it equals the stored revision, else ErrConflict and
	// nothing changes (also when no token matches). Each save increments the
	// revision; a new token starts at 1. Values the update replaced stop
	// matching: after a refresh the old access token finds nothing.
	SaveToken(ctx context.Context, token *Token) error

	// DeleteToken removes the token with this ID. Deleting a missing ID is
	// not an error and returns nil; a malformed ID is ErrInvalidToken.
	DeleteToken(ctx context.Context, id string) error

	// GetTokens returns every live token of this store, in no particular
	// order. An empty store returns an empty slice and nil.
	GetTokens(ctx context.Context) ([]Token, error)

	// DeleteTokens removes every token of this store and nothing else: other
	// stores sharing the same backend keep theirs.
	DeleteTokens(ctx context.Context) error

	// FindTokenByID returns the token with this ID, ErrNotFound when there is
	// none, and ErrInvalidToken for an empty or malformed ID.
	FindTokenByID(ctx context.Context, id string) (Token, error)
}
