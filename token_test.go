package tokencache_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache"
)

// t0 is the fixed "current time" of these tests.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// The secrets of secretToken. None of the non-secret values below contains
// the word SECRET, so any output that does has leaked one.
const (
	accessSecret  = "AT-SECRET-123"
	refreshSecret = "RT-SECRET-456"
	grantSecret   = "GT-SECRET-789"
	clientSecret  = "CS-SECRET-000"
)

var allSecrets = []string{accessSecret, refreshSecret, grantSecret, clientSecret, "SECRET"}

// secretToken returns a token with every field set and distinctive secrets.
func secretToken() tokencache.Token {
	return tokencache.Token{
		ID:           "tok-ID-1",
		UserName:     "alice@example.com",
		ClientID:     "1000.CLIENTXYZ",
		ClientSecret: clientSecret,
		RefreshToken: refreshSecret,
		AccessToken:  accessSecret,
		GrantToken:   grantSecret,
		Expiry:       time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC),
		RedirectURL:  "https://app.example.com/oauth/callback",
		APIDomain:    "https://www.zohoapis.eu",
		Version:      7,
	}
}

// holder has the token in an exported field, so that fmt reaches its methods.
type holder struct {
	Name  string
	Token tokencache.Token
	Ptr   *tokencache.Token
}

func slogText(args ...any) string {
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("msg", args...)
	return buf.String()
}

func slogJSON(args ...any) string {
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("msg", args...)
	return buf.String()
}

func TestTokenRedaction(t *testing.T) {
	tok := secretToken()
	ptr := &tok
	tests := []struct {
		name string
		out  func() string
	}{
		{"%v", func() string { return fmt.Sprintf("%v", tok) }},
		{"%+v", func() string { return fmt.Sprintf("%+v", tok) }},
		{"%#v", func() string { return fmt.Sprintf("%#v", tok) }},
		{"%s", func() string { return fmt.Sprintf("%s", tok) }},
		{"%q", func() string { return fmt.Sprintf("%q", tok) }},
		{"%x", func() string { return fmt.Sprintf("%x", tok) }},
		{"%X", func() string { return fmt.Sprintf("%X", tok) }},
		{"%d", func() string { return fmt.Sprintf("%d", tok) }},
		{"%20.3v", func() string { return fmt.Sprintf("%20.3v", tok) }},
		{"pointer %v", func() string { return fmt.Sprintf("%v", ptr) }},
		{"pointer %+v", func() string { return fmt.Sprintf("%+v", ptr) }},
		{"pointer %#v", func() string { return fmt.Sprintf("%#v", ptr) }},
		{"pointer %s", func() string { return fmt.Sprintf("%s", ptr) }},
		{"pointer %q", func() string { return fmt.Sprintf("%q", ptr) }},
		{"pointer %x", func() string { return fmt.Sprintf("%x", ptr) }},
		{"pointer %d", func() string { return fmt.Sprintf("%d", ptr) }},
		{"Sprint", func() string { return fmt.Sprint(tok) }},
		{"Sprint pointer", func() string { return fmt.Sprint(ptr) }},
		{"Sprintln", func() string { return fmt.Sprintln("token", tok, ptr) }},
		{"struct %v", func() string { return fmt.Sprintf("%v", holder{"h", tok, ptr}) }},
		{"struct %+v", func() string { return fmt.Sprintf("%+v", holder{"h", tok, ptr}) }},
		{"struct %#v", func() string { return fmt.Sprintf("%#v", holder{"h", tok, ptr}) }},
		{"struct pointer %+v", func() string { return fmt.Sprintf("%+v", &holder{"h", tok, ptr}) }},
		{"slice %v", func() string { return fmt.Sprintf("%v", []tokencache.Token{tok, tok}) }},
		{"slice %#v", func() string { return fmt.Sprintf("%#v", []tokencache.Token{tok}) }},
		{"slice of pointers %+v", func() string { return fmt.Sprintf("%+v", []*tokencache.Token{ptr}) }},
		{"map value %v", func() string { return fmt.Sprintf("%v", map[string]tokencache.Token{"k": tok}) }},
		{"map value %#v", func() string { return fmt.Sprintf("%#v", map[string]tokencache.Token{"k": tok}) }},
		{"map pointer value %+v", func() string { return fmt.Sprintf("%+v", map[string]*tokencache.Token{"k": ptr}) }},
		{"any %v", func() string { var a any = tok; return fmt.Sprintf("%v", a) }},
		{"String", tok.String},
		{"GoString", tok.GoString},
		{"pointer String", ptr.String},
		{"Errorf %v", func() string { return fmt.Errorf("save %v", tok).Error() }},
		{"Errorf %+v pointer", func() string { return fmt.Errorf("save %+v", ptr).Error() }},
		{"Errorf %w and %v", func() string {
			return fmt.Errorf("%w: %v", tokencache.ErrConflict, tok).Error()
		}},
		{"errors.Join", func() string {
			return errors.Join(fmt.Errorf("a %v", tok), fmt.Errorf("b %s", ptr)).Error()
		}},
		{"slog text Any", func() string { return slogText(slog.Any("token", tok)) }},
		{"slog text pointer", func() string { return slogText(slog.Any("token", ptr)) }},
		{"slog text key-value", func() string { return slogText("token", tok) }},
		{"slog text group", func() string { return slogText(slog.Group("g", slog.Any("token", tok))) }},
		{"slog text slice", func() string { return slogText("tokens", []tokencache.Token{tok}) }},
		{"slog JSON Any", func() string { return slogJSON(slog.Any("token", tok)) }},
		{"slog JSON pointer", func() string { return slogJSON(slog.Any("token", ptr)) }},
		{"slog JSON key-value", func() string { return slogJSON("token", tok) }},
		{"slog JSON group", func() string { return slogJSON(slog.Group("g", slog.Any("token", ptr))) }},
		{"slog JSON With", func() string {
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).With("token", tok).Info("msg")
			return buf.String()
		}},
		{"slog JSON error", func() string { return slogJSON("err", fmt.Errorf("save %v", tok)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.out()
			for _, s := range allSecrets {
				if strings.Contains(got, s) {
					t.Errorf("output contains secret %q:\n%s", s, got)
				}
			}
			if !strings.Contains(got, "[redacted]") {
				t.Errorf("output does not say [redacted]:\n%s", got)
			}
		})
	}
}

func TestTokenPrintsNonSecretFields(t *testing.T) {
	tok := secretToken()
	wantPlain := []string{
		"ID:tok-ID-1",
		"UserName:alice@example.com",
		"ClientID:1000.CLIENTXYZ",
		"ClientSecret:[redacted]",
		"RefreshToken:[redacted]",
		"AccessToken:[redacted]",
		"GrantToken:[redacted]",
		"Expiry:2026-03-01T13:00:00Z",
		"RedirectURL:https://app.example.com/oauth/callback",
		"APIDomain:https://www.zohoapis.eu",
		"Version:7",
	}
	wantGo := []string{
		`ID:"tok-ID-1"`,
		`UserName:"alice@example.com"`,
		`ClientID:"1000.CLIENTXYZ"`,
		`RedirectURL:"https://app.example.com/oauth/callback"`,
		`APIDomain:"https://www.zohoapis.eu"`,
		`Version:7`,
	}
	tests := []struct {
		name string
		got  string
		want []string
	}{
		{"String", tok.String(), wantPlain},
		{"%v", fmt.Sprintf("%v", tok), wantPlain},
		{"%+v", fmt.Sprintf("%+v", tok), wantPlain},
		{"%s", fmt.Sprintf("%s", tok), wantPlain},
		{"pointer %v", fmt.Sprintf("%v", &tok), wantPlain},
		{"GoString", tok.GoString(), wantGo},
		{"%#v", fmt.Sprintf("%#v", tok), wantGo},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, w := range tt.want {
				if !strings.Contains(tt.got, w) {
					t.Errorf("output lacks %q:\n%s", w, tt.got)
				}
			}
		})
	}
}

func TestTokenStringExact(t *testing.T) {
	tests := []struct {
		name     string
		tok      tokencache.Token
		wantStr  string
		wantGo   string
		wantSVal string
	}{
		{
			name:    "zero",
			tok:     tokencache.Token{},
			wantStr: `Token{ID:"", UserName:"", ClientID:"", ClientSecret:"", RefreshToken:"", AccessToken:"", GrantToken:"", Expiry:never, RedirectURL:"", APIDomain:"", Version:0}`,
			wantGo:  `tokencache.Token{ID:"", UserName:"", ClientID:"", ClientSecret:"", RefreshToken:"", AccessToken:"", GrantToken:"", Expiry:"never", RedirectURL:"", APIDomain:"", Version:0}`,
		},
		{
			name:    "access token only",
			tok:     tokencache.Token{UserName: "bob", AccessToken: accessSecret},
			wantStr: `Token{ID:"", UserName:bob, ClientID:"", ClientSecret:"", RefreshToken:"", AccessToken:[redacted], GrantToken:"", Expiry:never, RedirectURL:"", APIDomain:"", Version:0}`,
			wantGo:  `tokencache.Token{ID:"", UserName:"bob", ClientID:"", ClientSecret:"", RefreshToken:"", AccessToken:[redacted], GrantToken:"", Expiry:"never", RedirectURL:"", APIDomain:"", Version:0}`,
		},
		{
			name:    "refresh and client secret",
			tok:     tokencache.Token{ID: "x", ClientSecret: clientSecret, RefreshToken: refreshSecret, Expiry: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Version: 3},
			wantStr: `Token{ID:x, UserName:"", ClientID:"", ClientSecret:[redacted], RefreshToken:[redacted], AccessToken:"", GrantToken:"", Expiry:2026-01-02T03:04:05.000000006Z, RedirectURL:"", APIDomain:"", Version:3}`,
			wantGo:  `tokencache.Token{ID:"x", UserName:"", ClientID:"", ClientSecret:[redacted], RefreshToken:[redacted], AccessToken:"", GrantToken:"", Expiry:"2026-01-02T03:04:05.000000006Z", RedirectURL:"", APIDomain:"", Version:3}`,
		},
		{
			name:    "all set",
			tok:     secretToken(),
			wantStr: `Token{ID:tok-ID-1, UserName:alice@example.com, ClientID:1000.CLIENTXYZ, ClientSecret:[redacted], RefreshToken:[redacted], AccessToken:[redacted], GrantToken:[redacted], Expiry:2026-03-01T13:00:00Z, RedirectURL:https://app.example.com/oauth/callback, APIDomain:https://www.zohoapis.eu, Version:7}`,
			wantGo:  `tokencache.Token{ID:"tok-ID-1", UserName:"alice@example.com", ClientID:"1000.CLIENTXYZ", ClientSecret:[redacted], RefreshToken:[redacted], AccessToken:[redacted], GrantToken:[redacted], Expiry:"2026-03-01T13:00:00Z", RedirectURL:"https://app.example.com/oauth/callback", APIDomain:"https://www.zohoapis.eu", Version:7}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.tok.String(); got != tt.wantStr {
				t.Errorf("String() =\n%s\nwant\n%s", got, tt.wantStr)
			}
			if got := fmt.Sprintf("%v", tt.tok); got != tt.wantStr {
				t.Errorf("%%v =\n%s\nwant\n%s", got, tt.wantStr)
			}
			if got := tt.tok.GoString(); got != tt.wantGo {
				t.Errorf("GoString() =\n%s\nwant\n%s", got, tt.wantGo)
			}
			if got := fmt.Sprintf("%#v", tt.tok); got != tt.wantGo {
				t.Errorf("%%#v =\n%s\nwant\n%s", got, tt.wantGo)
			}
			if got, want := fmt.Sprintf("%q", tt.tok), fmt.Sprintf("%q", tt.wantStr); got != want {
				t.Errorf("%%q =\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestTokenLogValueFields(t *testing.T) {
	tests := []struct {
		name string
		tok  tokencache.Token
		want map[string]any
	}{
		{
			name: "all set",
			tok:  secretToken(),
			want: map[string]any{
				"id":            "tok-ID-1",
				"user_name":     "alice@example.com",
				"client_id":     "1000.CLIENTXYZ",
				"client_secret": "[redacted]",
				"refresh_token": "[redacted]",
				"access_token":  "[redacted]",
				"grant_token":   "[redacted]",
				"expiry":        "2026-03-01T13:00:00Z",
				"redirect_url":  "https://app.example.com/oauth/callback",
				"api_domain":    "https://www.zohoapis.eu",
				"version":       float64(7),
			},
		},
		{
			name: "empty secrets stay empty",
			tok:  tokencache.Token{UserName: "bob", AccessToken: accessSecret},
			want: map[string]any{
				"id":            "",
				"user_name":     "bob",
				"client_id":     "",
				"client_secret": "",
				"refresh_token": "",
				"access_token":  "[redacted]",
				"grant_token":   "",
				"redirect_url":  "",
				"api_domain":    "",
				"version":       float64(0),
			},
		},
	}
	for _, tt := range tests {
		for _, arg := range []struct {
			name string
			val  any
		}{{"value", tt.tok}, {"pointer", &tt.tok}} {
			t.Run(tt.name+"/"+arg.name, func(t *testing.T) {
				out := slogJSON(slog.Any("token", arg.val))
				var rec struct {
					Token map[string]any `json:"token"`
				}
				if err := json.Unmarshal([]byte(out), &rec); err != nil {
					t.Fatalf("log line is not JSON: %v\n%s", err, out)
				}
				if len(rec.Token) != len(tt.want) {
					t.Errorf("token group has %d keys, want %d:\n%s", len(rec.Token), len(tt.want), out)
				}
				for k, want := range tt.want {
					if got := rec.Token[k]; got != want {
						t.Errorf("token.%s = %#v, want %#v", k, got, want)
					}
				}
			})
		}
	}
}

func TestTokenPrintNil(t *testing.T) {
	var tok *tokencache.Token
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d"} {
		t.Run(verb, func(t *testing.T) {
			got := fmt.Sprintf(verb, tok)
			if got != "<nil>" {
				t.Errorf("Sprintf(%q, nil) = %q, want %q", verb, got, "<nil>")
			}
		})
	}
	if got, want := fmt.Sprint(tok), "<nil>"; got != want {
		t.Errorf("Sprint(nil) = %q, want %q", got, want)
	}
}

func TestTokenJSONRoundTrip(t *testing.T) {
	zone := time.FixedZone("UTC+5:30", 5*3600+30*60)
	tests := []struct {
		name string
		tok  tokencache.Token
	}{
		{"zero", tokencache.Token{}},
		{"all set", secretToken()},
		{"nanoseconds in another zone", tokencache.Token{
			AccessToken: accessSecret,
			Expiry:      time.Date(2026, 7, 4, 9, 8, 7, 123456789, zone),
		}},
		{"awkward values", tokencache.Token{
			UserName:     "caf\u00e9 \"*?[x]{y}\"\n",
			ClientID:     "<script>&amp;",
			RefreshToken: "rt/+=\x00",
			Version:      1 << 62,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := json.Marshal(tt.tok)
			if err != nil {
				t.Fatal(err)
			}
			var got tokencache.Token
			if err := json.Unmarshal(data, &got); err != nil {
				t.Fatal(err)
			}
			if !got.Expiry.Equal(tt.tok.Expiry) {
				t.Errorf("Expiry = %v, want %v", got.Expiry, tt.tok.Expiry)
			}
			want := tt.tok
			got.Expiry, want.Expiry = time.Time{}, time.Time{}
			if got != want {
				t.Errorf("round trip =\n%#v\nwant\n%#v\n(JSON %s)", got, want, data)
			}
		})
	}
}

func TestTokenJSONNames(t *testing.T) {
	tok := secretToken()
	data, err := json.Marshal(tok)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"id":            "tok-ID-1",
		"user_name":     "alice@example.com",
		"client_id":     "1000.CLIENTXYZ",
		"client_secret": clientSecret,
		"refresh_token": refreshSecret,
		"access_token":  accessSecret,
		"grant_token":   grantSecret,
		"expiry":        "2026-03-01T13:00:00Z",
		"redirect_url":  "https://app.example.com/oauth/callback",
		"api_domain":    "https://www.zohoapis.eu",
		"version":       float64(7),
	}
	gotKeys, wantKeys := slices.Sorted(maps.Keys(m)), slices.Sorted(maps.Keys(want))
	if !slices.Equal(gotKeys, wantKeys) {
		t.Errorf("JSON keys = %v, want %v", gotKeys, wantKeys)
	}
	for k, w := range want {
		if got := m[k]; got != w {
			t.Errorf("JSON %s = %#v, want %#v", k, got, w)
		}
	}

	// And the other way: a document written by another program decodes.
	doc := `{"id":"tok-ID-1","user_name":"alice@example.com","client_id":"1000.CLIENTXYZ",
		"client_secret":"CS-SECRET-000","refresh_token":"RT-SECRET-456","access_token":"AT-SECRET-123",
		"grant_token":"GT-SECRET-789","expiry":"2026-03-01T14:00:00+01:00",
		"redirect_url":"https://app.example.com/oauth/callback","api_domain":"https://www.zohoapis.eu","version":7}`
	var got tokencache.Token
	if err := json.Unmarshal([]byte(doc), &got); err != nil {
		t.Fatal(err)
	}
	if !got.Expiry.Equal(tok.Expiry) {
		t.Errorf("decoded Expiry = %v, want %v", got.Expiry, tok.Expiry)
	}
	got.Expiry = tok.Expiry
	if got != tok {
		t.Errorf("decoded =\n%#v\nwant\n%#v", got, tok)
	}
}

func TestTokenValidAt(t *testing.T) {
	const m = tokencache.ExpiryMargin
	tests := []struct {
		name string
		tok  *tokencache.Token
		want bool
	}{
		{"nil", nil, false},
		{"empty", &tokencache.Token{}, false},
		{"no access token, zero expiry", &tokencache.Token{RefreshToken: "rt"}, false},
		{"no access token, far expiry", &tokencache.Token{RefreshToken: "rt", Expiry: t0.Add(24 * time.Hour)}, false},
		{"zero expiry never expires", &tokencache.Token{AccessToken: "at"}, true},
		{"far ahead", &tokencache.Token{AccessToken: "at", Expiry: t0.Add(time.Hour)}, true},
		{"just outside margin", &tokencache.Token{AccessToken: "at", Expiry: t0.Add(m + time.Nanosecond)}, true},
		{"exactly at margin", &tokencache.Token{AccessToken: "at", Expiry: t0.Add(m)}, false},
		{"inside margin", &tokencache.Token{AccessToken: "at", Expiry: t0.Add(m / 2)}, false},
		{"expires now", &tokencache.Token{AccessToken: "at", Expiry: t0}, false},
		{"expired", &tokencache.Token{AccessToken: "at", RefreshToken: "rt", Expiry: t0.Add(-time.Hour)}, false},
		{"far ahead in another zone", &tokencache.Token{AccessToken: "at", Expiry: t0.Add(time.Hour).In(time.FixedZone("W", -8*3600))}, true},
		{"inside margin in another zone", &tokencache.Token{AccessToken: "at", Expiry: t0.Add(m / 2).In(time.FixedZone("E", 9*3600))}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.tok.ValidAt(t0); got != tt.want {
				t.Errorf("ValidAt(%v) = %v, want %v", t0, got, tt.want)
			}
		})
	}
}

func TestTokenValid(t *testing.T) {
	// Valid reads the real clock; these expiries are far enough from it
	// that the answer cannot depend on when the test runs.
	now := time.Now()
	tests := []struct {
		name string
		tok  *tokencache.Token
		want bool
	}{
		{"nil", nil, false},
		{"no access token", &tokencache.Token{RefreshToken: "rt"}, false},
		{"zero expiry", &tokencache.Token{AccessToken: "at"}, true},
		{"an hour ahead", &tokencache.Token{AccessToken: "at", Expiry: now.Add(time.Hour)}, true},
		{"inside margin", &tokencache.Token{AccessToken: "at", Expiry: now.Add(tokencache.ExpiryMargin / 2)}, false},
		{"an hour ago", &tokencache.Token{AccessToken: "at", Expiry: now.Add(-time.Hour)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.tok.Valid(); got != tt.want {
				t.Errorf("Valid() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTokenExpiresWithin(t *testing.T) {
	tests := []struct {
		name string
		tok  *tokencache.Token
		d    time.Duration
		want bool
	}{
		{"nil", nil, time.Hour, false},
		{"zero expiry", &tokencache.Token{AccessToken: "at"}, 1000 * time.Hour, false},
		{"zero d, before expiry", &tokencache.Token{Expiry: t0.Add(time.Nanosecond)}, 0, false},
		{"zero d, at expiry", &tokencache.Token{Expiry: t0}, 0, true},
		{"zero d, after expiry", &tokencache.Token{Expiry: t0.Add(-time.Nanosecond)}, 0, true},
		{"expiry inside d", &tokencache.Token{Expiry: t0.Add(30 * time.Minute)}, time.Hour, true},
		{"expiry at end of d", &tokencache.Token{Expiry: t0.Add(time.Hour)}, time.Hour, true},
		{"expiry after d", &tokencache.Token{Expiry: t0.Add(time.Hour + time.Nanosecond)}, time.Hour, false},
		{"no access token still has an expiry", &tokencache.Token{RefreshToken: "rt", Expiry: t0}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.tok.ExpiresWithin(t0, tt.d); got != tt.want {
				t.Errorf("ExpiresWithin(t0, %v) = %v, want %v", tt.d, got, tt.want)
			}
		})
	}
}

func TestTokenLive(t *testing.T) {
	tests := []struct {
		name string
		tok  *tokencache.Token
		want bool
	}{
		{"nil", nil, false},
		{"zero expiry, no refresh token", &tokencache.Token{AccessToken: "at"}, true},
		{"zero expiry, refresh token", &tokencache.Token{RefreshToken: "rt"}, true},
		{"future expiry, no refresh token", &tokencache.Token{AccessToken: "at", Expiry: t0.Add(time.Nanosecond)}, true},
		{"inside margin, no refresh token", &tokencache.Token{AccessToken: "at", Expiry: t0.Add(tokencache.ExpiryMargin / 2)}, true},
		{"expires now, no refresh token", &tokencache.Token{AccessToken: "at", Expiry: t0}, false},
		{"expired, no refresh token", &tokencache.Token{AccessToken: "at", GrantToken: "gt", Expiry: t0.Add(-time.Hour)}, false},
		{"expired, refresh token", &tokencache.Token{AccessToken: "at", RefreshToken: "rt", Expiry: t0.Add(-time.Hour)}, true},
		{"expired long ago, refresh token only", &tokencache.Token{RefreshToken: "rt", Expiry: t0.AddDate(-5, 0, 0)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.tok.Live(t0); got != tt.want {
				t.Errorf("Live(t0) = %v, want %v", got, tt.want)
			}
		})
	}
}
