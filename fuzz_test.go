package tokencache_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache"
)

// fuzzNow is the clock of the matching fuzz target.
var fuzzNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// pickValue returns the field value a two-bit selector names: none, a, b,
// or both joined. Few values, so that query and stored token often agree.
func pickValue(sel uint32, a, b string) string {
	switch sel & 3 {
	case 1:
		return a
	case 2:
		return b
	case 3:
		return a + b
	}
	return ""
}

// fuzzToken builds a token whose ID, UserName, ClientID, GrantToken,
// RefreshToken and AccessToken each take two bits of mask.
func fuzzToken(mask uint32, a, b string) tokencache.Token {
	return tokencache.Token{
		ID:           pickValue(mask, a, b),
		UserName:     pickValue(mask>>2, a, b),
		ClientID:     pickValue(mask>>4, a, b),
		GrantToken:   pickValue(mask>>6, a, b),
		RefreshToken: pickValue(mask>>8, a, b),
		AccessToken:  pickValue(mask>>10, a, b),
	}
}

// specRule restates DESIGN §3: the first of ID, UserName, GrantToken,
// RefreshToken, AccessToken that is set decides.
func specRule(q tokencache.Token) tokencache.Rule {
	for _, f := range []struct {
		set  bool
		rule tokencache.Rule
	}{
		{q.ID != "", tokencache.RuleID},
		{q.UserName != "", tokencache.RuleUserName},
		{q.GrantToken != "", tokencache.RuleGrantToken},
		{q.RefreshToken != "", tokencache.RuleRefreshToken},
		{q.AccessToken != "", tokencache.RuleAccessToken},
	} {
		if f.set {
			return f.rule
		}
	}
	return tokencache.RuleNone
}

// specMatches restates DESIGN §3 and the liveness rule of tokencache.Store:
// a token whose access token expired and that has no refresh token is
// gone; an access token past its Expiry matches nothing.
func specMatches(q, s tokencache.Token, now time.Time) bool {
	accessValid := s.Expiry.IsZero() || now.Before(s.Expiry)
	if s.RefreshToken == "" && !accessValid {
		return false
	}
	switch specRule(q) {
	case tokencache.RuleID:
		return s.ID == q.ID
	case tokencache.RuleUserName:
		return s.UserName == q.UserName && s.ClientID == q.ClientID
	case tokencache.RuleGrantToken:
		return s.GrantToken == q.GrantToken && s.ClientID == q.ClientID
	case tokencache.RuleRefreshToken:
		return s.RefreshToken == q.RefreshToken && s.ClientID == q.ClientID
	case tokencache.RuleAccessToken:
		return s.AccessToken == q.AccessToken && accessValid
	}
	return false
}

// specValidID restates the ID rule: 1 to MaxIDLength bytes of A-Z, a-z,
// 0-9, '.', '_', '-'.
func specValidID(id string) bool {
	if id == "" || len(id) > tokencache.MaxIDLength {
		return false
	}
	return strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == ""
}

// FuzzMatchingRules checks RuleOf, Matches, ValidateID, ValidateQuery and
// ValidateSave against a plain re-statement of DESIGN §3 and §6, and the
// invariants that follow: an ID query matches only that ID, a later field
// never changes the answer, nothing matches on an empty value, errors wrap
// ErrInvalidToken and never quote a value.
func FuzzMatchingRules(f *testing.F) {
	f.Add(uint32(0b000000000001), uint32(0b000000000001), "id1", "x", int64(0), int64(0))
	f.Add(uint32(0b000000010100), uint32(0b010101010101), "alice", "c1", int64(3600), int64(1))
	f.Add(uint32(0b010000000000), uint32(0b010000000000), "at", "b", int64(-1), int64(0))
	f.Add(uint32(0b000100010000), uint32(0b000100010000), "r", "c", int64(-60), int64(-2))
	f.Add(uint32(0b000000000011), uint32(0b000000000011), "bad id!", "{x}", int64(0), int64(3))
	f.Fuzz(func(t *testing.T, qmask, smask uint32, a, b string, expirySec, version int64) {
		q := fuzzToken(qmask, a, b)
		s := fuzzToken(smask, a, b)
		if expirySec != 0 {
			s.Expiry = fuzzNow.Add(time.Duration(expirySec%(1<<32)) * time.Second)
		}
		s.Version = version

		rule := tokencache.RuleOf(q)
		if want := specRule(q); rule != want {
			t.Fatalf("RuleOf(%#v) = %v, want %v", q, rule, want)
		}
		got := tokencache.Matches(q, s, fuzzNow)
		if want := specMatches(q, s, fuzzNow); got != want {
			t.Fatalf("Matches(%#v, %#v) = %v, want %v", q, s, got, want)
		}
		if got && !s.Live(fuzzNow) {
			t.Fatalf("Matches a token that is not live: %#v", s)
		}
		if got && rule == tokencache.RuleID && s.ID != q.ID {
			t.Fatalf("an ID query matched another ID")
		}
		if got && rule == tokencache.RuleNone {
			t.Fatalf("a query with nothing to match on matched")
		}
		// The fields after the deciding one never decide.
		later := q
		switch rule {
		case tokencache.RuleID:
			later.UserName, later.GrantToken, later.RefreshToken, later.AccessToken = "~u", "~g", "~r", "~a"
		case tokencache.RuleUserName:
			later.GrantToken, later.RefreshToken, later.AccessToken = "~g", "~r", "~a"
		case tokencache.RuleGrantToken:
			later.RefreshToken, later.AccessToken = "~r", "~a"
		case tokencache.RuleRefreshToken:
			later.AccessToken = "~a"
		}
		if rule != tokencache.RuleNone && tokencache.Matches(later, s, fuzzNow) != got {
			t.Fatalf("a field after the deciding %v changed the answer", rule)
		}

		// Validation.
		idErr := tokencache.ValidateID(q.ID)
		if (idErr == nil) != specValidID(q.ID) {
			t.Fatalf("ValidateID(%q) = %v", q.ID, idErr)
		}
		qErr := tokencache.ValidateQuery(q)
		wantQ := rule != tokencache.RuleNone && (q.ID == "" || specValidID(q.ID))
		if (qErr == nil) != wantQ {
			t.Fatalf("ValidateQuery(%#v) = %v, want ok %v", q, qErr, wantQ)
		}
		sErr := tokencache.ValidateSave(&s, fuzzNow)
		wantS := (s.ID == "" || specValidID(s.ID)) && s.Version >= 0 &&
			(s.AccessToken != "" || s.RefreshToken != "" || s.GrantToken != "") && s.Live(fuzzNow)
		if (sErr == nil) != wantS {
			t.Fatalf("ValidateSave(%#v) = %v, want ok %v", s, sErr, wantS)
		}
		for _, err := range []error{idErr, qErr, sErr} {
			if err == nil {
				continue
			}
			if !errors.Is(err, tokencache.ErrInvalidToken) {
				t.Fatalf("%v does not wrap ErrInvalidToken", err)
			}
			for _, v := range []string{a, b} {
				if len(v) >= 6 && strings.Contains(err.Error(), v) {
					t.Fatalf("error %q quotes a value", err)
				}
			}
		}
	})
}
