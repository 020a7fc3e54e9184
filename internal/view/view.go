// Package view presents tokens to people and scripts: a redacted JSON form,
// table cells safe to print, and expiry times with how far away they are.
// Nothing here ever prints a secret.
package view

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tokencache/tokencache"
)

// Token is how list and show present a token: the fields of
// tokencache.Token under the same JSON names, with every secret replaced by
// "[redacted]" when it is set and left empty when it is not, so that a
// reader can tell which secrets a token has without seeing one. Expiry is
// null for a token that never expires. Commands marshal only this type,
// never a tokencache.Token, which encoding/json would print in clear.
type Token struct {
	ID           string     `json:"id"`
	UserName     string     `json:"user_name"`
	ClientID     string     `json:"client_id"`
	ClientSecret string     `json:"client_secret"`
	RefreshToken string     `json:"refresh_token"`
	AccessToken  string     `json:"access_token"`
	GrantToken   string     `json:"grant_token"`
	Expiry       *time.Time `json:"expiry"`
	RedirectURL  string     `json:"redirect_url"`
	APIDomain    string     `json:"api_domain"`
	Version      int64      `json:"version"`
}

// Redacted is what a secret that is set is shown as.
const Redacted = "[redacted]"

func redact(s string) string {
	if s == "" {
		return ""
	}
	return Redacted
}

// Of returns the redacted view of t.
func Of(t tokencache.Token) Token {
	return Token{
		ID:           t.ID,
		UserName:     t.UserName,
		ClientID:     t.ClientID,
		ClientSecret: redact(t.ClientSecret),
		RefreshToken: redact(t.RefreshToken),
		AccessToken:  redact(t.AccessToken),
		GrantToken:   redact(t.GrantToken),
		Expiry:       ExpiryPtr(t.Expiry),
		RedirectURL:  t.RedirectURL,
		APIDomain:    t.APIDomain,
		Version:      t.Version,
	}
}

// ExpiryPtr is nil for the zero time (never expires), else &t.
func ExpiryPtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// WriteJSON writes v indented, without escaping <, > and & in user names.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// SortByUserAndID orders tokens by user name, then ID, for stable output.
func SortByUserAndID(tokens []tokencache.Token) {
	slices.SortFunc(tokens, func(x, y tokencache.Token) int {
		if c := strings.Compare(x.UserName, y.UserName); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
}

// Cell makes a value safe for one cell of a table or one line of show:
// user names are data and may hold tabs, newlines or terminal escapes,
// which are shown quoted instead of being interpreted. Empty is "-".
func Cell(s string) string {
	if s == "" {
		return "-"
	}
	for _, r := range s {
		if r == utf8.RuneError || r == '\t' || !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// Expiry is an expiry for people: RFC 3339 and how far away it is.
func Expiry(exp, now time.Time) string {
	if exp.IsZero() {
		return "never"
	}
	d := exp.Sub(now)
	if d > 0 {
		return exp.Format(time.RFC3339) + " (in " + Approx(d) + ")"
	}
	return exp.Format(time.RFC3339) + " (expired " + Approx(-d) + " ago)"
}

// Approx rounds d to what a person needs: 42s, 3m, 5h07m, 12d.
func Approx(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
}

// YesNo is "yes" or "no".
func YesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// Plural returns "1 token" or "4 tokens".
func Plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// InvalidReason is a validation error without its "tokencache: invalid
// token:" prefix. Validation errors name fields, never their values.
func InvalidReason(err error) string {
	return strings.TrimPrefix(err.Error(), tokencache.ErrInvalidToken.Error()+": ")
}
