package tokencache_test

import (
	"encoding/base32"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache"
)

func TestRuleOf(t *testing.T) {
	tests := []struct {
		name  string
		query tokencache.Token
		want  tokencache.Rule
	}{
		{"empty", tokencache.Token{}, tokencache.RuleNone},
		{"ID only", tokencache.Token{ID: "x"}, tokencache.RuleID},
		{"ID beats everything", tokencache.Token{ID: "x", UserName: "u", ClientID: "c", GrantToken: "g", RefreshToken: "r", AccessToken: "a"}, tokencache.RuleID},
		{"ID beats UserName", tokencache.Token{ID: "x", UserName: "u"}, tokencache.RuleID},
		{"ID beats AccessToken", tokencache.Token{ID: "x", AccessToken: "a"}, tokencache.RuleID},
		{"UserName only", tokencache.Token{UserName: "u"}, tokencache.RuleUserName},
		{"UserName with ClientID", tokencache.Token{UserName: "u", ClientID: "c"}, tokencache.RuleUserName},
		{"UserName beats the secrets", tokencache.Token{UserName: "u", GrantToken: "g", RefreshToken: "r", AccessToken: "a"}, tokencache.RuleUserName},
		{"UserName beats GrantToken", tokencache.Token{UserName: "u", GrantToken: "g"}, tokencache.RuleUserName},
		{"UserName beats AccessToken", tokencache.Token{UserName: "u", AccessToken: "a"}, tokencache.RuleUserName},
		{"GrantToken only", tokencache.Token{GrantToken: "g"}, tokencache.RuleGrantToken},
		{"GrantToken beats RefreshToken and AccessToken", tokencache.Token{GrantToken: "g", RefreshToken: "r", AccessToken: "a"}, tokencache.RuleGrantToken},
		{"RefreshToken only", tokencache.Token{RefreshToken: "r"}, tokencache.RuleRefreshToken},
		{"RefreshToken beats AccessToken", tokencache.Token{RefreshToken: "r", AccessToken: "a", ClientID: "c"}, tokencache.RuleRefreshToken},
		{"AccessToken only", tokencache.Token{AccessToken: "a"}, tokencache.RuleAccessToken},
		{"AccessToken with ClientID", tokencache.Token{AccessToken: "a", ClientID: "c"}, tokencache.RuleAccessToken},
		{"ClientID alone", tokencache.Token{ClientID: "c"}, tokencache.RuleNone},
		{"ClientSecret alone", tokencache.Token{ClientSecret: "s"}, tokencache.RuleNone},
		{"RedirectURL alone", tokencache.Token{RedirectURL: "https://x"}, tokencache.RuleNone},
		{"every non-matching field", tokencache.Token{
			ClientID: "c", ClientSecret: "s", RedirectURL: "https://x", APIDomain: "https://y",
			Expiry: t0, Version: 3,
		}, tokencache.RuleNone},
		{"white space is a value", tokencache.Token{UserName: " "}, tokencache.RuleUserName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tokencache.RuleOf(tt.query); got != tt.want {
				t.Errorf("RuleOf(%v) = %v, want %v", tt.query, got, tt.want)
			}
		})
	}
}

// TestRuleOfAllCombinations checks every subset of the five deciding fields:
// the first set one, in the documented order, decides.
func TestRuleOfAllCombinations(t *testing.T) {
	order := []struct {
		rule tokencache.Rule
		set  func(*tokencache.Token)
	}{
		{tokencache.RuleID, func(q *tokencache.Token) { q.ID = "x" }},
		{tokencache.RuleUserName, func(q *tokencache.Token) { q.UserName = "u" }},
		{tokencache.RuleGrantToken, func(q *tokencache.Token) { q.GrantToken = "g" }},
		{tokencache.RuleRefreshToken, func(q *tokencache.Token) { q.RefreshToken = "r" }},
		{tokencache.RuleAccessToken, func(q *tokencache.Token) { q.AccessToken = "a" }},
	}
	for mask := range 1 << len(order) {
		q := tokencache.Token{ClientID: "c", ClientSecret: "s", RedirectURL: "https://x"}
		want := tokencache.RuleNone
		for i := len(order) - 1; i >= 0; i-- {
			if mask&(1<<i) != 0 {
				order[i].set(&q)
				want = order[i].rule
			}
		}
		if got := tokencache.RuleOf(q); got != want {
			t.Errorf("RuleOf(%v) = %v, want %v", q, got, want)
		}
	}
}

func TestRuleString(t *testing.T) {
	tests := []struct {
		rule tokencache.Rule
		want string
	}{
		{tokencache.RuleNone, "none"},
		{tokencache.RuleID, "id"},
		{tokencache.RuleUserName, "user_name"},
		{tokencache.RuleGrantToken, "grant_token"},
		{tokencache.RuleRefreshToken, "refresh_token"},
		{tokencache.RuleAccessToken, "access_token"},
		{tokencache.Rule(-1), "none"},
		{tokencache.Rule(99), "none"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.rule.String(); got != tt.want {
				t.Errorf("Rule(%d).String() = %q, want %q", int(tt.rule), got, tt.want)
			}
		})
	}
}

func TestMatches(t *testing.T) {
	// stored is a live token whose access token expires an hour after t0.
	stored := tokencache.Token{
		ID:           "id-1",
		UserName:     "alice",
		ClientID:     "client-a",
		ClientSecret: "cs",
		RefreshToken: "rt-1",
		AccessToken:  "at-1",
		GrantToken:   "gt-1",
		Expiry:       t0.Add(time.Hour),
		RedirectURL:  "https://app.example.com/cb",
	}
	with := func(f func(*tokencache.Token)) tokencache.Token {
		s := stored
		f(&s)
		return s
	}
	// noClient is stored without a ClientID.
	noClient := with(func(s *tokencache.Token) { s.ClientID = "" })
	// expiredNoRefresh is no longer live.
	expiredNoRefresh := with(func(s *tokencache.Token) { s.RefreshToken = ""; s.Expiry = t0.Add(-time.Minute) })
	// expiredWithRefresh is live, but its access token has expired.
	expiredWithRefresh := with(func(s *tokencache.Token) { s.Expiry = t0.Add(-time.Minute) })

	tests := []struct {
		name   string
		query  tokencache.Token
		stored tokencache.Token
		now    time.Time
		want   bool
	}{
		// RuleNone.
		{"empty query", tokencache.Token{}, stored, t0, false},
		{"empty query, empty stored", tokencache.Token{}, tokencache.Token{}, t0, false},
		{"ClientID alone", tokencache.Token{ClientID: "client-a"}, stored, t0, false},
		{"ClientSecret and RedirectURL alone", tokencache.Token{ClientSecret: "cs", RedirectURL: "https://app.example.com/cb"}, stored, t0, false},

		// RuleID.
		{"ID", tokencache.Token{ID: "id-1"}, stored, t0, true},
		{"ID ignores ClientID", tokencache.Token{ID: "id-1", ClientID: "client-b"}, stored, t0, true},
		{"other ID", tokencache.Token{ID: "id-2"}, stored, t0, false},
		{"ID does not fall through to UserName", tokencache.Token{ID: "id-2", UserName: "alice", ClientID: "client-a"}, stored, t0, false},
		{"ID does not fall through to AccessToken", tokencache.Token{ID: "id-2", AccessToken: "at-1"}, stored, t0, false},

		// RuleUserName.
		{"UserName and ClientID", tokencache.Token{UserName: "alice", ClientID: "client-a"}, stored, t0, true},
		{"UserName, other ClientID", tokencache.Token{UserName: "alice", ClientID: "client-b"}, stored, t0, false},
		{"UserName, empty ClientID, stored has one", tokencache.Token{UserName: "alice"}, stored, t0, false},
		{"UserName, empty ClientID, stored has none", tokencache.Token{UserName: "alice"}, noClient, t0, true},
		{"UserName, ClientID, stored has none", tokencache.Token{UserName: "alice", ClientID: "client-a"}, noClient, t0, false},
		{"other UserName", tokencache.Token{UserName: "bob", ClientID: "client-a"}, stored, t0, false},
		{"UserName does not fall through to GrantToken", tokencache.Token{UserName: "bob", ClientID: "client-a", GrantToken: "gt-1"}, stored, t0, false},
		{"UserName does not fall through to AccessToken", tokencache.Token{UserName: "bob", ClientID: "client-a", AccessToken: "at-1"}, stored, t0, false},
		{"UserName ignores the query's secrets", tokencache.Token{UserName: "alice", ClientID: "client-a", AccessToken: "at-other", RefreshToken: "rt-other"}, stored, t0, true},

		// RuleGrantToken.
		{"GrantToken and ClientID", tokencache.Token{GrantToken: "gt-1", ClientID: "client-a"}, stored, t0, true},
		{"GrantToken, other ClientID", tokencache.Token{GrantToken: "gt-1", ClientID: "client-b"}, stored, t0, false},
		{"GrantToken, empty ClientID", tokencache.Token{GrantToken: "gt-1"}, stored, t0, false},
		{"GrantToken, empty ClientID both", tokencache.Token{GrantToken: "gt-1"}, noClient, t0, true},
		{"other GrantToken", tokencache.Token{GrantToken: "gt-2", ClientID: "client-a"}, stored, t0, false},
		{"GrantToken does not fall through to RefreshToken", tokencache.Token{GrantToken: "gt-2", RefreshToken: "rt-1", ClientID: "client-a"}, stored, t0, false},

		// RuleRefreshToken.
		{"RefreshToken and ClientID", tokencache.Token{RefreshToken: "rt-1", ClientID: "client-a"}, stored, t0, true},
		{"RefreshToken, other ClientID", tokencache.Token{RefreshToken: "rt-1", ClientID: "client-b"}, stored, t0, false},
		{"RefreshToken, empty ClientID", tokencache.Token{RefreshToken: "rt-1"}, stored, t0, false},
		{"RefreshToken, empty ClientID both", tokencache.Token{RefreshToken: "rt-1"}, noClient, t0, true},
		{"other RefreshToken", tokencache.Token{RefreshToken: "rt-2", ClientID: "client-a"}, stored, t0, false},
		{"RefreshToken does not fall through to AccessToken", tokencache.Token{RefreshToken: "rt-2", AccessToken: "at-1", ClientID: "client-a"}, stored, t0, false},
		{"RefreshToken after access token expiry", tokencache.Token{RefreshToken: "rt-1", ClientID: "client-a"}, expiredWithRefresh, t0, true},

		// RuleAccessToken.
		{"AccessToken", tokencache.Token{AccessToken: "at-1"}, stored, t0, true},
		{"AccessToken ignores ClientID", tokencache.Token{AccessToken: "at-1", ClientID: "client-b"}, stored, t0, true},
		{"other AccessToken", tokencache.Token{AccessToken: "at-2"}, stored, t0, false},
		{"AccessToken just before Expiry", tokencache.Token{AccessToken: "at-1"}, stored, stored.Expiry.Add(-time.Nanosecond), true},
		{"AccessToken inside ExpiryMargin", tokencache.Token{AccessToken: "at-1"}, stored, stored.Expiry.Add(-tokencache.ExpiryMargin / 2), true},
		{"AccessToken at Expiry", tokencache.Token{AccessToken: "at-1"}, stored, stored.Expiry, false},
		{"AccessToken after Expiry", tokencache.Token{AccessToken: "at-1"}, stored, stored.Expiry.Add(time.Hour), false},
		{"AccessToken, expired but refreshable", tokencache.Token{AccessToken: "at-1"}, expiredWithRefresh, t0, false},
		{"AccessToken, zero Expiry", tokencache.Token{AccessToken: "at-1"}, with(func(s *tokencache.Token) { s.Expiry = time.Time{} }), t0.AddDate(100, 0, 0), true},

		// A stored token that is not live never matches.
		{"not live: ID", tokencache.Token{ID: "id-1"}, expiredNoRefresh, t0, false},
		{"not live: UserName", tokencache.Token{UserName: "alice", ClientID: "client-a"}, expiredNoRefresh, t0, false},
		{"not live: GrantToken", tokencache.Token{GrantToken: "gt-1", ClientID: "client-a"}, expiredNoRefresh, t0, false},
		{"not live: AccessToken", tokencache.Token{AccessToken: "at-1"}, expiredNoRefresh, t0, false},
		{"not live at its Expiry", tokencache.Token{ID: "id-1"}, with(func(s *tokencache.Token) { s.RefreshToken = "" }), stored.Expiry, false},
		{"live just before its Expiry", tokencache.Token{ID: "id-1"}, with(func(s *tokencache.Token) { s.RefreshToken = "" }), stored.Expiry.Add(-time.Nanosecond), true},
		{"refreshable: ID", tokencache.Token{ID: "id-1"}, expiredWithRefresh, t0, true},
		{"refreshable: UserName", tokencache.Token{UserName: "alice", ClientID: "client-a"}, expiredWithRefresh, t0, true},

		// Values are compared byte for byte.
		{"ID case", tokencache.Token{ID: "ID-1"}, stored, t0, false},
		{"UserName case", tokencache.Token{UserName: "Alice", ClientID: "client-a"}, stored, t0, false},
		{"UserName trailing space", tokencache.Token{UserName: "alice ", ClientID: "client-a"}, stored, t0, false},
		{"UserName leading space", tokencache.Token{UserName: " alice", ClientID: "client-a"}, stored, t0, false},
		{"ClientID case", tokencache.Token{UserName: "alice", ClientID: "Client-A"}, stored, t0, false},
		{"ClientID trailing space", tokencache.Token{UserName: "alice", ClientID: "client-a "}, stored, t0, false},
		{"AccessToken case", tokencache.Token{AccessToken: "AT-1"}, stored, t0, false},
		{"AccessToken trailing space", tokencache.Token{AccessToken: "at-1 "}, stored, t0, false},
		{"RefreshToken trailing newline", tokencache.Token{RefreshToken: "rt-1\n", ClientID: "client-a"}, stored, t0, false},
		{"NFC query, NFD stored", tokencache.Token{UserName: "caf\u00e9", ClientID: "client-a"}, with(func(s *tokencache.Token) { s.UserName = "cafe\u0301" }), t0, false},
		{"NFD query, NFC stored", tokencache.Token{UserName: "cafe\u0301", ClientID: "client-a"}, with(func(s *tokencache.Token) { s.UserName = "caf\u00e9" }), t0, false},
		{"NFC both", tokencache.Token{UserName: "caf\u00e9", ClientID: "client-a"}, with(func(s *tokencache.Token) { s.UserName = "caf\u00e9" }), t0, true},
		{"NFD both", tokencache.Token{UserName: "cafe\u0301", ClientID: "client-a"}, with(func(s *tokencache.Token) { s.UserName = "cafe\u0301" }), t0, true},

		// Pattern characters are data.
		{"star is not a wildcard", tokencache.Token{UserName: "*", ClientID: "client-a"}, stored, t0, false},
		{"question mark is not a wildcard", tokencache.Token{UserName: "alic?", ClientID: "client-a"}, stored, t0, false},
		{"brackets are not a class", tokencache.Token{UserName: "[a]lice", ClientID: "client-a"}, stored, t0, false},
		{"star matches star", tokencache.Token{UserName: "*", ClientID: "client-a"}, with(func(s *tokencache.Token) { s.UserName = "*" }), t0, true},
		{"braces and quotes match exactly", tokencache.Token{UserName: `{"a"}` + "\n", ClientID: "client-a"}, with(func(s *tokencache.Token) { s.UserName = `{"a"}` + "\n" }), t0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tokencache.Matches(tt.query, tt.stored, tt.now); got != tt.want {
				t.Errorf("Matches(%v, %v, %v) = %v, want %v", tt.query, tt.stored, tt.now, got, tt.want)
			}
		})
	}
}

func TestValidateID(t *testing.T) {
	tests := []struct {
		name string
		id   string
		ok   bool
	}{
		{"one letter", "a", true},
		{"every kind of character", "A-Z_0.9", true},
		{"MaxIDLength", strings.Repeat("a", tokencache.MaxIDLength), true},
		{"dots only", "..", true},
		{"NewID", tokencache.NewID(), true},
		{"empty", "", false},
		{"MaxIDLength+1", strings.Repeat("a", tokencache.MaxIDLength+1), false},
		{"space", "a b", false},
		{"colon", "a:b", false},
		{"braces", "{x}", false},
		{"non-ASCII letter", "ü", false},
		{"newline", "a\n", false},
		{"slash", "a/b", false},
		{"star", "a*", false},
		{"NUL", "a\x00", false},
		{"trailing space", "a ", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tokencache.ValidateID(tt.id)
			if tt.ok {
				if err != nil {
					t.Errorf("ValidateID(%q) = %v, want nil", tt.id, err)
				}
				return
			}
			if !errors.Is(err, tokencache.ErrInvalidToken) {
				t.Errorf("ValidateID(%q) = %v, want an error wrapping ErrInvalidToken", tt.id, err)
			}
		})
	}
}

// oversized returns a value of n bytes that starts with a marker an error
// message must not repeat.
func oversized(n int) string {
	const marker = "OVERSIZED-VALUE-"
	return marker + strings.Repeat("v", n-len(marker))
}

// fieldSetters sets each size-checked string field by its JSON name.
var fieldSetters = []struct {
	name string
	set  func(*tokencache.Token, string)
}{
	{"user_name", func(t *tokencache.Token, v string) { t.UserName = v }},
	{"client_id", func(t *tokencache.Token, v string) { t.ClientID = v }},
	{"client_secret", func(t *tokencache.Token, v string) { t.ClientSecret = v }},
	{"refresh_token", func(t *tokencache.Token, v string) { t.RefreshToken = v }},
	{"access_token", func(t *tokencache.Token, v string) { t.AccessToken = v }},
	{"grant_token", func(t *tokencache.Token, v string) { t.GrantToken = v }},
	{"redirect_url", func(t *tokencache.Token, v string) { t.RedirectURL = v }},
	{"api_domain", func(t *tokencache.Token, v string) { t.APIDomain = v }},
}

func TestValidateQuery(t *testing.T) {
	tests := []struct {
		name  string
		query tokencache.Token
		ok    bool
	}{
		{"ID", tokencache.Token{ID: "abc"}, true},
		{"UserName", tokencache.Token{UserName: "alice", ClientID: "c"}, true},
		{"GrantToken", tokencache.Token{GrantToken: "g"}, true},
		{"RefreshToken", tokencache.Token{RefreshToken: "r"}, true},
		{"AccessToken", tokencache.Token{AccessToken: "a"}, true},
		{"expired AccessToken is still a query", tokencache.Token{AccessToken: "a", Expiry: t0.AddDate(-1, 0, 0)}, true},
		{"Unicode and pattern characters in UserName", tokencache.Token{UserName: "caf\u00e9*?[{\"\n"}, true},
		{"empty", tokencache.Token{}, false},
		{"ClientID only", tokencache.Token{ClientID: "c"}, false},
		{"ClientSecret only", tokencache.Token{ClientSecret: "s"}, false},
		{"RedirectURL and APIDomain only", tokencache.Token{RedirectURL: "https://x", APIDomain: "https://y"}, false},
		{"malformed ID", tokencache.Token{ID: "a b"}, false},
		{"malformed ID with a valid UserName", tokencache.Token{ID: "a:b", UserName: "alice"}, false},
		{"ID too long", tokencache.Token{ID: strings.Repeat("a", tokencache.MaxIDLength+1)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tokencache.ValidateQuery(tt.query)
			if tt.ok {
				if err != nil {
					t.Errorf("ValidateQuery(%v) = %v, want nil", tt.query, err)
				}
				return
			}
			if !errors.Is(err, tokencache.ErrInvalidToken) {
				t.Errorf("ValidateQuery(%v) = %v, want an error wrapping ErrInvalidToken", tt.query, err)
			}
		})
	}
}

func TestValidateQueryFieldSize(t *testing.T) {
	for _, f := range fieldSetters {
		t.Run(f.name+"/MaxFieldSize", func(t *testing.T) {
			q := tokencache.Token{AccessToken: "a"}
			f.set(&q, oversized(tokencache.MaxFieldSize))
			if err := tokencache.ValidateQuery(q); err != nil {
				t.Errorf("ValidateQuery with a %d-byte %s = %v, want nil", tokencache.MaxFieldSize, f.name, err)
			}
		})
		t.Run(f.name+"/MaxFieldSize+1", func(t *testing.T) {
			q := tokencache.Token{AccessToken: "a"}
			f.set(&q, oversized(tokencache.MaxFieldSize+1))
			checkOversizedError(t, tokencache.ValidateQuery(q), f.name)
		})
	}
}

func checkOversizedError(t *testing.T, err error, field string) {
	t.Helper()
	if !errors.Is(err, tokencache.ErrInvalidToken) {
		t.Fatalf("error = %v, want one wrapping ErrInvalidToken", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, field+" is ") {
		t.Errorf("error %q does not name the field %s", msg, field)
	}
	if strings.Contains(msg, "OVERSIZED-VALUE") {
		t.Errorf("error repeats the value: %.200q", msg)
	}
	if len(msg) > 200 {
		t.Errorf("error is %d bytes long: %.200q", len(msg), msg)
	}
}

func TestValidateSave(t *testing.T) {
	tests := []struct {
		name string
		tok  *tokencache.Token
		ok   bool
	}{
		{"nil", nil, false},
		{"empty", &tokencache.Token{}, false},
		{"no secret", &tokencache.Token{UserName: "alice", ClientID: "c", ClientSecret: "cs", RedirectURL: "https://x"}, false},
		{"client secret is not a token", &tokencache.Token{ClientSecret: "cs"}, false},
		{"access token only", &tokencache.Token{AccessToken: "a", Expiry: t0.Add(time.Hour)}, true},
		{"refresh token only", &tokencache.Token{RefreshToken: "r"}, true},
		{"grant token only", &tokencache.Token{GrantToken: "g"}, true},
		{"all set", func() *tokencache.Token { tok := secretToken(); tok.Expiry = t0.Add(time.Hour); return &tok }(), true},
		{"valid ID", &tokencache.Token{ID: tokencache.NewID(), AccessToken: "a"}, true},
		{"ID of MaxIDLength", &tokencache.Token{ID: strings.Repeat("Z", tokencache.MaxIDLength), AccessToken: "a"}, true},
		{"malformed ID", &tokencache.Token{ID: "a/b", AccessToken: "a"}, false},
		{"ID too long", &tokencache.Token{ID: strings.Repeat("Z", tokencache.MaxIDLength+1), AccessToken: "a"}, false},
		{"version 0", &tokencache.Token{AccessToken: "a", Version: 0}, true},
		{"positive version", &tokencache.Token{AccessToken: "a", Version: 42}, true},
		{"negative version", &tokencache.Token{AccessToken: "a", Version: -1}, false},
		{"zero expiry, no refresh token", &tokencache.Token{AccessToken: "a"}, true},
		{"expired without refresh token", &tokencache.Token{AccessToken: "a", Expiry: t0.Add(-time.Second)}, false},
		{"expires now without refresh token", &tokencache.Token{AccessToken: "a", Expiry: t0}, false},
		{"inside margin without refresh token", &tokencache.Token{AccessToken: "a", Expiry: t0.Add(tokencache.ExpiryMargin / 2)}, true},
		{"expired with refresh token", &tokencache.Token{AccessToken: "a", RefreshToken: "r", Expiry: t0.Add(-time.Hour)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before tokencache.Token
			if tt.tok != nil {
				before = *tt.tok
			}
			err := tokencache.ValidateSave(tt.tok, t0)
			if tt.tok != nil && *tt.tok != before {
				t.Errorf("ValidateSave changed its argument: %v, was %v", *tt.tok, before)
			}
			if tt.ok {
				if err != nil {
					t.Errorf("ValidateSave(%v) = %v, want nil", tt.tok, err)
				}
				return
			}
			if !errors.Is(err, tokencache.ErrInvalidToken) {
				t.Errorf("ValidateSave(%v) = %v, want an error wrapping ErrInvalidToken", tt.tok, err)
			}
		})
	}
}

func TestValidateSaveFieldSize(t *testing.T) {
	for _, f := range fieldSetters {
		t.Run(f.name+"/MaxFieldSize", func(t *testing.T) {
			tok := tokencache.Token{AccessToken: "a"}
			f.set(&tok, oversized(tokencache.MaxFieldSize))
			if err := tokencache.ValidateSave(&tok, t0); err != nil {
				t.Errorf("ValidateSave with a %d-byte %s = %v, want nil", tokencache.MaxFieldSize, f.name, err)
			}
		})
		t.Run(f.name+"/MaxFieldSize+1", func(t *testing.T) {
			tok := tokencache.Token{AccessToken: "a"}
			f.set(&tok, oversized(tokencache.MaxFieldSize+1))
			checkOversizedError(t, tokencache.ValidateSave(&tok, t0), f.name)
		})
	}
}

func TestValidateSaveErrorsHideSecrets(t *testing.T) {
	bad := []*tokencache.Token{
		{ClientSecret: clientSecret},
		{AccessToken: accessSecret, ClientSecret: clientSecret, GrantToken: grantSecret, Version: -1},
		{AccessToken: accessSecret, GrantToken: grantSecret, ClientSecret: clientSecret, Expiry: t0.Add(-time.Hour)},
		{AccessToken: accessSecret, RefreshToken: refreshSecret, ID: "bad id"},
	}
	for _, tok := range bad {
		err := tokencache.ValidateSave(tok, t0)
		if err == nil {
			t.Errorf("ValidateSave(%v) = nil, want an error", tok)
			continue
		}
		for _, s := range allSecrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("ValidateSave error %q contains secret %q", err, s)
			}
		}
	}
}

func TestNewID(t *testing.T) {
	const n = 1000
	valid := regexp.MustCompile(`^[a-z2-7]{26}$`)
	enc := base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
	seen := make(map[string]bool, n)
	for range n {
		id := tokencache.NewID()
		if seen[id] {
			t.Fatalf("NewID returned %q twice", id)
		}
		seen[id] = true
		if !valid.MatchString(id) {
			t.Errorf("NewID() = %q, want 26 characters from [a-z2-7]", id)
		}
		if err := tokencache.ValidateID(id); err != nil {
			t.Errorf("ValidateID(NewID() = %q) = %v", id, err)
		}
		b, err := enc.DecodeString(id)
		if err != nil {
			t.Errorf("NewID() = %q is not unpadded lower-case base32: %v", id, err)
			continue
		}
		if len(b) != 16 {
			t.Errorf("NewID() = %q decodes to %d bytes, want 16 (128 bits)", id, len(b))
		}
		if back := enc.EncodeToString(b); back != id {
			t.Errorf("NewID() = %q is not canonical base32 (re-encodes as %q)", id, back)
		}
	}
}
