package tokencache

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"time"
)

// Rule names the matching rule that decides which stored token a query
// means. RuleOf picks it; Matches applies it.
type Rule int

// The matching rules, in order of precedence.
const (
	// RuleNone: the query has nothing to match on.
	RuleNone Rule = iota
	// RuleID matches the token with the query's ID.
	RuleID
	// RuleUserName matches the token with the query's UserName and the same
	// ClientID.
	RuleUserName
	// RuleGrantToken matches the token with the query's GrantToken and the
	// same ClientID.
	RuleGrantToken
	// RuleRefreshToken matches the token with the query's RefreshToken and
	// the same ClientID.
	RuleRefreshToken
	// RuleAccessToken matches the token with the query's AccessToken, while
	// that access token has not expired.
	RuleAccessToken
)

// String returns the rule's name, such as "user_name".
func (r Rule) String() string {
	switch r {
	case RuleID:
		return "id"
	case RuleUserName:
		return "user_name"
	case RuleGrantToken:
		return "grant_token"
	case RuleRefreshToken:
		return "refresh_token"
	case RuleAccessToken:
		return "access_token"
	default:
		return "none"
	}
}

// RuleOf returns the rule that decides what query matches: the first of ID,
// UserName, GrantToken, RefreshToken and AccessToken that is set. There is
// no falling through: when the deciding rule finds nothing, the query finds
// nothing. SaveToken applies the same rule to the token it saves to find the
// token it updates.
func RuleOf(query Token) Rule {
	switch {
	case query.ID != "":
		return RuleID
	case query.UserName != "":
		return RuleUserName
	case query.GrantToken != "":
		return RuleGrantToken
	case query.RefreshToken != "":
		return RuleRefreshToken
	case query.AccessToken != "":
		return RuleAccessToken
	default:
		return RuleNone
	}
}

// Matches reports whether stored is the token query means at time now: the
// rule RuleOf(query) holds for stored, and stored is live. Values are compared
// byte for byte: case, white space and Unicode composition all count.
func Matches(query, stored Token, now time.Time) bool {
	if !stored.Live(now) {
		return false
	}
	switch RuleOf(query) {
	case RuleID:
		return stored.ID == query.ID
	case RuleUserName:
		return stored.UserName == query.UserName && stored.ClientID == query.ClientID
	case RuleGrantToken:
		return stored.GrantToken == query.GrantToken && stored.ClientID == query.ClientID
	case RuleRefreshToken:
		return stored.RefreshToken == query.RefreshToken && stored.ClientID == query.ClientID
	case RuleAccessToken:
		return stored.AccessToken == query.AccessToken && !stored.ExpiresWithin(now, 0)
	default:
		return false
	}
}

// MaxFieldSize is the largest value, in bytes, that a string field of a
// Token may hold.
const MaxFieldSize = 64 << 10

// MaxIDLength is the longest ID, in bytes, a store accepts.
const MaxIDLength = 128

// ValidateID reports, as an error wrapping ErrInvalidToken, why id cannot
// name a token: it is empty, longer than MaxIDLength, or has a character
// outside A-Z, a-z, 0-9, '.', '_' and '-'.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty id", ErrInvalidToken)
	}
	if len(id) > MaxIDLength {
		return fmt.Errorf("%w: id is %d bytes, the limit is %d", ErrInvalidToken, len(id), MaxIDLength)
	}
	for i := 0; i < len(id); i++ {
		if !idByte(id[i]) {
			return fmt.Errorf("%w: id has a character outside [A-Za-z0-9._-] at byte %d", ErrInvalidToken, i)
		}
	}
	return nil
}

func idByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}

// ValidateQuery reports, as an error wrapping ErrInvalidToken, why query
// cannot be matched: it has none of the fields RuleOf uses, a field is over
// MaxFieldSize, or its ID is malformed.
func ValidateQuery(query Token) error {
	if err := checkFields(query); err != nil {
		return err
	}
	if RuleOf(query) == RuleNone {
		return fmt.Errorf("%w: nothing to match on: set one of id, user_name, grant_token, refresh_token, access_token", ErrInvalidToken)
	}
	return nil
}

// ValidateSave reports, as an error wrapping ErrInvalidToken, why a store
// must refuse to save t at time now: t is nil, has none of AccessToken,
// RefreshToken and GrantToken, has an oversized field or a malformed ID, or is
// not live (an expired access token with no refresh token).
func ValidateSave(t *Token, now time.Time) error {
	if t == nil {
		return fmt.Errorf("%w: nil token", ErrInvalidToken)
	}
	if err := checkFields(*t); err != nil {
		return err
	}
	if t.AccessToken == "" && t.RefreshToken == "" && t.GrantToken == "" {
		return fmt.Errorf("%w: no access_token, refresh_token or grant_token to store", ErrInvalidToken)
	}
	if t.Version < 0 {
		return fmt.Errorf("%w: negative version %d", ErrInvalidToken, t.Version)
	}
	if !t.Live(now) {
		return fmt.Errorf("%w: the access token expired at %s and there is no refresh token to renew it",
			ErrInvalidToken, t.Expiry.Format(time.RFC3339))
	}
	return nil
}

// checkFields checks the sizes of all string fields and the form of a set ID.
// Its errors name the field, never its value, which may be a secret.
func checkFields(t Token) error {
	fields := [...]struct {
		name, value string
	}{
		{"user_name", t.UserName},
		{"client_id", t.ClientID},
		{"client_secret", t.ClientSecret},
		{"refresh_token", t.RefreshToken},
		{"access_token", t.AccessToken},
		{"grant_token", t.GrantToken},
		{"redirect_url", t.RedirectURL},
		{"api_domain", t.APIDomain},
	}
	for _, f := range fields {
		if len(f.value) > MaxFieldSize {
			return fmt.Errorf("%w: %s is %d bytes, the limit is %d", ErrInvalidToken, f.name, len(f.value), MaxFieldSize)
		}
	}
	if t.ID != "" {
		return ValidateID(t.ID)
	}
	return nil
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns a new unguessable token ID: 128 random bits from crypto/rand
// as 26 lower-case base32 characters.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+); it aborts the process instead
	return idEncoding.EncodeToString(b[:])
}
