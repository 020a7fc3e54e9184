package zohofmt

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tokencache/tokencache"
)

// ErrBadRow is wrapped by Row.Err: the row cannot be imported. Errors name
// the row and the column, never a cell's value.
var ErrBadRow = errors.New("zohofmt: bad row")

// Columns are the FileStore CSV's columns, in the order the SDK writes
// them, and the DBStore table's column names.
var Columns = []string{
	"id", "user_name", "client_id", "client_secret", "refresh_token",
	"access_token", "grant_token", "expiry_time", "redirect_url", "api_domain",
}

// columnAliases maps column names older SDKs used onto the current ones.
var columnAliases = map[string]string{
	"user_mail": "user_name", // SDKs before user signatures had names
}

// Row is one row of a Zoho store.
type Row struct {
	// Line is where the row is: the CSV line its record starts on (the
	// header is line 1), or the row's 1-based position in the table.
	Line int
	// ID is the row's id cell as read ("" when the store has none). It is
	// safe to print: Zoho IDs are counters.
	ID string
	// Token is the token the row holds, with the Zoho ID as its ID and
	// Version 0. It is meaningful only when Err is nil.
	Token tokencache.Token
	// Err, when not nil, says why the row cannot be imported; it wraps
	// ErrBadRow.
	Err error
}

// Name returns how a message names the row: "line 7", or "row 3 (id 12)".
func (r Row) Name(unit string) string {
	if r.ID != "" && tokencache.ValidateID(r.ID) == nil {
		return fmt.Sprintf("%s %d (id %s)", unit, r.Line, r.ID)
	}
	return fmt.Sprintf("%s %d", unit, r.Line)
}

// cells maps a column name to a row's value.
type cells map[string]string

// toToken builds the token of one row and checks what an import needs: a
// well-formed ID (or none), a secret to store, and an expiry_time in epoch
// milliseconds (empty: none). Field sizes and liveness are the store's to
// check when the token is saved.
func toToken(c cells) (tokencache.Token, error) {
	t := tokencache.Token{
		ID:           strings.TrimSpace(c["id"]),
		UserName:     c["user_name"],
		ClientID:     c["client_id"],
		ClientSecret: c["client_secret"],
		RefreshToken: c["refresh_token"],
		AccessToken:  c["access_token"],
		GrantToken:   c["grant_token"],
		RedirectURL:  c["redirect_url"],
		APIDomain:    c["api_domain"],
	}
	if t.ID != "" {
		if err := tokencache.ValidateID(t.ID); err != nil {
			return tokencache.Token{}, fmt.Errorf("%w: id: %v", ErrBadRow, err)
		}
	}
	if t.AccessToken == "" && t.RefreshToken == "" && t.GrantToken == "" {
		return tokencache.Token{}, fmt.Errorf("%w: no access_token, refresh_token or grant_token", ErrBadRow)
	}
	expiry, err := parseExpiry(c["expiry_time"])
	if err != nil {
		return tokencache.Token{}, err
	}
	t.Expiry = expiry
	return t, nil
}

// parseExpiry reads an expiry_time cell: epoch milliseconds as a decimal
// string ("1700000000000", or "1700000000000.0" as a float written by a
// script); empty means the access token never expires.
func parseExpiry(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if whole, frac, ok := strings.Cut(s, "."); ok && strings.Trim(frac, "0") == "" {
		s = whole
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms < 0 {
		return time.Time{}, fmt.Errorf("%w: expiry_time is not epoch milliseconds", ErrBadRow)
	}
	return time.UnixMilli(ms), nil
}

// formatExpiry writes an expiry_time cell.
func formatExpiry(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

// canonical returns the column a header or table column name stands for,
// or "" for a column this package does not know.
func canonical(name string) string {
	n := strings.ToLower(strings.TrimSpace(name))
	if a, ok := columnAliases[n]; ok {
		return a
	}
	for _, c := range Columns {
		if n == c {
			return c
		}
	}
	return ""
}
