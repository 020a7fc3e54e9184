// Package tokencache keeps OAuth tokens that a fleet of workers share.
//
// The root package holds the model and the contract that every store keeps:
// [Token], the [Store] interface, the sentinel errors, and the matching rules
// ([RuleOf], [Matches]) that decide which stored token a query means. It
// imports the standard library only.
//
// Implementations live in sub-packages: memstore (in memory, the reference)
// and redisstore (Redis, standalone, Sentinel or Cluster). The storetest
// package checks any Store against this contract, and refresher keeps tokens
// valid with one refresh per expiry across the fleet.
package tokencache

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// ExpiryMargin is how long before its Expiry a token already counts as
// expired for [Token.Valid], so that a token is not sent to an API that will
// have rejected it by the time the request arrives.
const ExpiryMargin = 10 * time.Second

// Token is an OAuth token with the client credentials needed to renew it. It
// mirrors the OAuthToken of the Zoho CRM SDKs.
//
// AccessToken, RefreshToken, GrantToken and ClientSecret are secrets: the
// String, GoString, Format and LogValue methods redact them, so a Token can be
// logged or printed safely. encoding/json keeps them, because stores and
// export need them; that is also why a handler that hands values to
// encoding/json (slog's JSONHandler with a []Token, a map of tokens, or a
// struct holding one) prints them in clear: log tokens one at a time, or their
// IDs. fmt cannot call methods on unexported struct fields either, so it
// prints the secrets of a Token held in one.
type Token struct {
	// ID identifies the token in its store. SaveToken assigns an unguessable
	// one when it is empty. It may hold only A-Z, a-z, 0-9, '.', '_' and '-'.
	ID string `json:"id"`
	// UserName is the user signature, such as the user's e-mail address.
	UserName string `json:"user_name"`
	// ClientID is the OAuth client the token was issued to.
	ClientID string `json:"client_id"`
	// ClientSecret is the OAuth client's secret (secret).
	ClientSecret string `json:"client_secret"`
	// RefreshToken renews the access token (secret).
	RefreshToken string `json:"refresh_token"`
	// AccessToken authorizes API calls until Expiry (secret).
	AccessToken string `json:"access_token"`
	// GrantToken is the single-use authorization code that is exchanged for
	// the first access and refresh tokens (secret).
	GrantToken string `json:"grant_token"`
	// Expiry is when AccessToken expires. The zero time means it never does.
	Expiry time.Time `json:"expiry"`
	// RedirectURL is the redirect URI registered for the OAuth client.
	RedirectURL string `json:"redirect_url"`
	// APIDomain is the API host the authorization server named for this
	// token (Zoho's api_domain).
	APIDomain string `json:"api_domain"`
	// Version is the store-managed revision: SaveToken sets it, and a
	// non-zero Version makes SaveToken a compare-and-set. See Store.
	Version int64 `json:"version"`
}

// Valid reports whether t has an access token that does not expire within
// [ExpiryMargin] of the current time. It is safe to call on a nil *Token.
func (t *Token) Valid() bool {
	return t.ValidAt(time.Now())
}

// ValidAt is [Token.Valid] with the current time given by the caller, so
// that tests and callers with their own clock get the same answer.
func (t *Token) ValidAt(now time.Time) bool {
	if t == nil || t.AccessToken == "" {
		return false
	}
	return !t.ExpiresWithin(now, ExpiryMargin)
}

// ExpiresWithin reports whether the access token expires at or before now+d. A
// token with a zero Expiry never does. It is safe to call on a nil *Token,
// which has nothing that could expire.
func (t *Token) ExpiresWithin(now time.Time, d time.Duration) bool {
	if t == nil || t.Expiry.IsZero() {
		return false
	}
	return !now.Add(d).Before(t.Expiry)
}

// Live reports whether a store still holds t at time now: a token whose
// access token has expired and that has no refresh token to renew it is gone.
// Every store treats a token that is not live as if it had been deleted.
func (t *Token) Live(now time.Time) bool {
	if t == nil {
		return false
	}
	return t.RefreshToken != "" || t.Expiry.IsZero() || now.Before(t.Expiry)
}

const redacted = "[redacted]"

// hide returns the printable form of a secret: empty stays visibly empty,
// anything else is replaced, so a reader can tell which secrets are present.
func hide(secret string) string {
	if secret == "" {
		return ""
	}
	return redacted
}

// String returns t with its secrets redacted.
func (t Token) String() string {
	var b strings.Builder
	b.WriteString("Token{")
	t.writeFields(&b, false)
	b.WriteString("}")
	return b.String()
}

// GoString returns t as Go syntax for %#v, with its secrets redacted.
func (t Token) GoString() string {
	var b strings.Builder
	b.WriteString("tokencache.Token{")
	t.writeFields(&b, true)
	b.WriteString("}")
	return b.String()
}

// writeFields writes every field of t, secrets redacted; quoted selects Go
// syntax for the %#v form.
func (t Token) writeFields(b *strings.Builder, quoted bool) {
	str := func(s string) string {
		if quoted || s == "" {
			return strconv.Quote(s)
		}
		return s
	}
	secret := func(s string) string {
		if s == "" {
			return `""`
		}
		return redacted
	}
	expiry := "never"
	if !t.Expiry.IsZero() {
		expiry = t.Expiry.Format(time.RFC3339Nano)
	}
	if quoted {
		expiry = strconv.Quote(expiry)
	}
	fmt.Fprintf(b, "ID:%s, UserName:%s, ClientID:%s, ClientSecret:%s, RefreshToken:%s, AccessToken:%s, GrantToken:%s, Expiry:%s, RedirectURL:%s, APIDomain:%s, Version:%d",
		str(t.ID), str(t.UserName), str(t.ClientID), secret(t.ClientSecret),
		secret(t.RefreshToken), secret(t.AccessToken), secret(t.GrantToken),
		expiry, str(t.RedirectURL), str(t.APIDomain), t.Version)
}

// Format implements fmt.Formatter so that every verb, %v, %+v, %#v, %s, %q
// and the rest, prints t with its secrets redacted.
func (t Token) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		fmt.Fprint(f, t.GoString())
	case verb == 'q':
		fmt.Fprint(f, strconv.Quote(t.String()))
	default:
		fmt.Fprint(f, t.String())
	}
}

// LogValue implements slog.LogValuer: the token is logged as a group of its
// fields, with the secrets redacted.
func (t Token) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("id", t.ID),
		slog.String("user_name", t.UserName),
		slog.String("client_id", t.ClientID),
		slog.String("client_secret", hide(t.ClientSecret)),
		slog.String("refresh_token", hide(t.RefreshToken)),
		slog.String("access_token", hide(t.AccessToken)),
		slog.String("grant_token", hide(t.GrantToken)),
	}
	if !t.Expiry.IsZero() {
		attrs = append(attrs, slog.Time("expiry", t.Expiry))
	}
	attrs = append(attrs,
		slog.String("redirect_url", t.RedirectURL),
		slog.String("api_domain", t.APIDomain),
		slog.Int64("version", t.Version),
	)
	return slog.GroupValue(attrs...)
}
