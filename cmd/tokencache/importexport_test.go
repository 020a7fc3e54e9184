package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/view"
)

// exportSet saves a few tokens of different shapes and returns them.
func exportSet(t *testing.T, e *adminEnv) []tokencache.Token {
	t.Helper()
	now := time.Now().Truncate(time.Millisecond)
	grantOnly := tokencache.Token{UserName: "grant-only", ClientID: "1000.X", GrantToken: secretMark + "-grant", RedirectURL: "https://app.example.com/cb"}
	odd := fullToken("quote\" star* {brace} ünïcode\nnewline", "1000.X", now.Add(time.Hour))
	tokens := []tokencache.Token{
		e.save(t, fullToken("alice@example.com", "1000.X", now.Add(time.Hour))),
		e.save(t, fullToken("bob@example.com", "1000.X", now.Add(-time.Hour))),
		e.save(t, grantOnly),
		e.save(t, odd),
	}
	view.SortByUserAndID(tokens)
	return tokens
}

func decodeLines(t *testing.T, s string) []tokencache.Token {
	t.Helper()
	var out []tokencache.Token
	for i, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if line == "" {
			continue
		}
		var tok tokencache.Token
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&tok); err != nil {
			t.Fatalf("export line %d: %v: %q", i+1, err, line)
		}
		out = append(out, tok)
	}
	return out
}

// sameToken compares tokens field by field; Version is the store's own.
func sameToken(a, b tokencache.Token) bool {
	if !a.Expiry.Equal(b.Expiry) {
		return false
	}
	a.Expiry, b.Expiry = time.Time{}, time.Time{}
	a.Version, b.Version = 0, 0
	return a == b
}

func TestExport(t *testing.T) {
	e := newAdminEnv(t)
	saved := exportSet(t, e)

	r := e.run(t, "", "export")
	wantCode(t, "export", r, 0)
	noSecrets(t, "export", r)
	got := decodeLines(t, r.stdout)
	if len(got) != len(saved) {
		t.Fatalf("export wrote %d tokens, want %d", len(got), len(saved))
	}
	view.SortByUserAndID(got) // export writes the store's order
	for i, tok := range got {
		want := saved[i]
		want.ClientSecret, want.AccessToken, want.RefreshToken, want.GrantToken = "", "", "", ""
		if !sameToken(tok, want) || tok.Version != want.Version {
			t.Errorf("export line %d = %v\nwant %v", i+1, tok, want)
		}
	}
	if want := fmt.Sprintf("exported %d tokens from namespace %s to stdout (without secrets", len(saved), e.ns); !strings.HasPrefix(r.stderr, want) {
		t.Errorf("export stderr %q, want %q…", r.stderr, want)
	}

	r = e.run(t, "", "export", "--include-secrets")
	wantCode(t, "export --include-secrets", r, 0)
	got = decodeLines(t, r.stdout)
	if len(got) != len(saved) {
		t.Fatalf("export --include-secrets wrote %d tokens, want %d", len(got), len(saved))
	}
	view.SortByUserAndID(got)
	for i, tok := range got {
		if !sameToken(tok, saved[i]) {
			t.Errorf("export --include-secrets line %d = %#v\nwant %#v", i+1, tok, saved[i])
		}
		if tok.ClientSecret != saved[i].ClientSecret || tok.AccessToken != saved[i].AccessToken {
			t.Errorf("export --include-secrets line %d lost its secrets", i+1)
		}
	}
	if strings.Contains(r.stderr, secretMark) {
		t.Errorf("export --include-secrets printed a secret on stderr: %q", r.stderr)
	}
}

func TestExportFileModes(t *testing.T) {
	e := newAdminEnv(t)
	saved := exportSet(t, e)
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.jsonl")

	mode := func() os.FileMode {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	r := e.run(t, "", "export", "--output", path)
	wantCode(t, "export --output", r, 0)
	if r.stdout != "" || !strings.Contains(r.stderr, "to "+path) {
		t.Errorf("export --output: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	if m := mode(); m != 0o644 {
		t.Errorf("export without secrets: mode %v, want 0644", m)
	}
	// Overwriting that file with secrets makes it private.
	r = e.run(t, "", "export", "--include-secrets", "-o", path)
	wantCode(t, "export --include-secrets -o", r, 0)
	if m := mode(); m != 0o600 {
		t.Errorf("export with secrets: mode %v, want 0600", m)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeLines(t, string(data)); len(got) != len(saved) || got[0].AccessToken == "" && got[0].GrantToken == "" {
		t.Errorf("export file holds %d tokens (%v), want %d with secrets", len(got), got, len(saved))
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("export left temporary files: %v", entries)
	}
	oneLineError(t, "export to a missing directory", e.run(t, "", "export", "-o", filepath.Join(dir, "no", "such", "f")), 1)
}

func TestImportRoundTrip(t *testing.T) {
	src := newAdminEnv(t)
	saved := exportSet(t, src)
	path := filepath.Join(t.TempDir(), "backup.jsonl")
	wantCode(t, "export", src.run(t, "", "export", "--include-secrets", "-o", path), 0)

	dst := newAdminEnvOn(t, src.tg)
	for round := 1; round <= 2; round++ { // the second import updates the same tokens
		r := dst.run(t, "", "import", path)
		wantCode(t, "import", r, 0)
		noSecrets(t, "import", r)
		if want := fmt.Sprintf("imported %d tokens into namespace %s from %s", len(saved), dst.ns, path); !strings.Contains(r.stderr, want) {
			t.Errorf("import round %d: stderr %q, want %q", round, r.stderr, want)
		}
		got, err := dst.store.GetTokens(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		view.SortByUserAndID(got)
		if len(got) != len(saved) {
			t.Fatalf("import round %d: %d tokens, want %d", round, len(got), len(saved))
		}
		for i := range got {
			if !sameToken(got[i], saved[i]) || got[i].Version != int64(round) {
				t.Errorf("import round %d token %d = %#v (version %d)\nwant %#v", round, i, got[i], got[i].Version, saved[i])
			}
		}
	}
	// The imported tokens are found as a worker finds them.
	tok, err := dst.store.FindToken(context.Background(), tokencache.Token{UserName: saved[0].UserName, ClientID: saved[0].ClientID})
	if err != nil || tok.ID != saved[0].ID {
		t.Errorf("FindToken by user after import: %v, %v", tok.ID, err)
	}

	// From stdin, and into a namespace that already has other tokens.
	data, _ := os.ReadFile(path)
	third := newAdminEnvOn(t, src.tg)
	third.save(t, fullToken("already-here", "1000.Y", time.Now().Add(time.Hour)))
	r := third.run(t, string(data), "import", "--workers", "1")
	wantCode(t, "import from stdin", r, 0)
	if n := third.count(t); n != len(saved)+1 {
		t.Errorf("import from stdin: %d tokens, want %d", n, len(saved)+1)
	}
	if r := third.run(t, string(data), "import", "-"); r.code != 0 || !strings.Contains(r.stderr, "from stdin") {
		t.Errorf("import -: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestImportBadLines(t *testing.T) {
	e := newAdminEnv(t)
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	big := strings.Repeat("x", 60<<10)
	good := func(user string) string {
		return fmt.Sprintf(`{"user_name":%q,"client_id":"1000.I","access_token":"%s-a-%s","refresh_token":"%s-r-%s","expiry":%q}`,
			user, secretMark, user, secretMark, user, future)
	}
	lines := []string{
		/* 1 */ good("first"),
		/* 2 */ `{"user_name":"broken","access_token":"` + secretMark + `-broken",`,
		/* 3 */ `{"user_name":"typo","access_tokn":"` + secretMark + `-typo"}`,
		/* 4 */ `{"user_name":"nosecret","client_id":"1000.I"}`,
		/* 5 */ `{"id":"bad id/` + secretMark + `","user_name":"badid","access_token":"` + secretMark + `-badid"}`,
		/* 6 */ `{"user_name":"huge","access_token":"` + secretMark + strings.Repeat("y", tokencache.MaxFieldSize) + `"}`,
		/* 7 */ "",
		/* 8 */ `{"id":"long-line-ok","user_name":"long","client_id":"1000.I","access_token":"` + secretMark + big + `","refresh_token":"` + secretMark + big + `","expiry":"` + future + `"}`,
		/* 9 */ `not json ` + secretMark,
		/* 10 */ `{"user_name":"late","access_token":"` + secretMark + `-late","expiry":"yesterday-ish"}`,
		/* 11 */ `{"user_name":"expired","access_token":"` + secretMark + `-exp","expiry":"2001-01-01T00:00:00Z"}`,
		/* 12 */ `{"user_name":"toolong","access_token":"` + secretMark + strings.Repeat("z", 4<<20) + `"}`,
		/* 13 */ `{"user_name":"number","access_token":42}`,
		/* 14 */ `["an","array"]`,
		/* 15 */ good("second") + " " + good("third"),
		/* 16 */ `{"id":"kept-id","user_name":"last","grant_token":"` + secretMark + `-g","version":7}` + "\r",
	}
	input := strings.Join(lines, "\n") // no newline after the last line
	r := e.run(t, input, "import", "--workers", "3")
	wantCode(t, "import with bad lines", r, 1)
	noSecrets(t, "import with bad lines", r)

	wantBad := map[int]string{
		2:  "invalid JSON: the line ends inside a value",
		3:  `unknown field "access_tokn"`,
		4:  "no access_token, refresh_token or grant_token to store",
		5:  "id has a character outside [A-Za-z0-9._-] at byte 3",
		6:  fmt.Sprintf("access_token is %d bytes, the limit is %d", tokencache.MaxFieldSize+len(secretMark), tokencache.MaxFieldSize),
		9:  "invalid JSON at byte 2",
		10: "expiry: not an RFC 3339 time",
		11: "the access token expired at 2001-01-01T00:00:00Z and there is no refresh token to renew it",
		12: "longer than 4 MiB",
		13: "access_token: a JSON number where a string belongs",
		14: "not a JSON object but a JSON array",
		15: "more than one JSON value on the line",
	}
	re := regexp.MustCompile(`(?m)^line (\d+): (.*)$`)
	gotBad := map[int]string{}
	for _, m := range re.FindAllStringSubmatch(r.stderr, -1) {
		var n int
		fmt.Sscan(m[1], &n)
		gotBad[n] = m[2]
	}
	for n, want := range wantBad {
		if gotBad[n] != want {
			t.Errorf("line %d reported as %q, want %q", n, gotBad[n], want)
		}
	}
	for n := range gotBad {
		if _, ok := wantBad[n]; !ok {
			t.Errorf("line %d reported as bad: %q", n, gotBad[n])
		}
	}
	if want := fmt.Sprintf("tokencache: %d of 15 records were not imported", len(wantBad)); !strings.Contains(r.stderr, want) {
		t.Errorf("import stderr lacks %q:\n%s", want, r.stderr)
	}
	if !strings.Contains(r.stderr, "imported 3 tokens into namespace "+e.ns) {
		t.Errorf("import stderr lacks the count:\n%s", r.stderr)
	}

	tokens, err := e.store.GetTokens(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, tok := range tokens {
		users = append(users, tok.UserName)
	}
	slices.Sort(users)
	if !slices.Equal(users, []string{"first", "last", "long"}) {
		t.Errorf("imported %v, want first, last, long", users)
	}
	long, err := e.store.FindTokenByID(context.Background(), "long-line-ok")
	if err != nil || long.AccessToken != secretMark+big {
		t.Errorf("the long line's token: %v (access token of %d bytes)", err, len(long.AccessToken))
	}
	last, err := e.store.FindTokenByID(context.Background(), "kept-id")
	if err != nil || last.Version != 1 || last.GrantToken != secretMark+"-g" {
		t.Errorf("the token with an ID: %v, %v", last, err)
	}
}

func TestImportFlags(t *testing.T) {
	e := newAdminEnv(t)
	oneLineError(t, "--workers 0", e.run(t, "", "import", "--workers", "0"), 2)
	oneLineError(t, "--progress bogus", e.run(t, "", "import", "--progress", "bogus"), 2)
	oneLineError(t, "missing file", e.run(t, "", "import", filepath.Join(t.TempDir(), "missing.jsonl")), 1)
	oneLineError(t, "two files", e.run(t, "", "import", "a", "b"), 2)
	oneLineError(t, "unknown format", e.run(t, "", "import", "--format", "xml"), 2)
	oneLineError(t, "--from with a file format", e.run(t, "", "import", "--from", "sqlite:x"), 2)
	r := e.run(t, "", "import", "--progress", "off")
	wantCode(t, "import of nothing", r, 0)
	if !strings.Contains(r.stderr, "imported 0 tokens") {
		t.Errorf("import of nothing: %q", r.stderr)
	}
}

func genLines(n int, prefix string) string {
	var b strings.Builder
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for i := range n {
		fmt.Fprintf(&b, `{"user_name":"%s%d","client_id":"1000.P","access_token":"%s-%s%d","refresh_token":"%s-r%d","expiry":%q}`+"\n",
			prefix, i, secretMark, prefix, i, secretMark, i, exp)
	}
	return b.String()
}

// TestImportIntoStoreKeepsOtherNamespaces checks that import writes only
// its own namespace.
func TestImportIntoStoreKeepsOtherNamespaces(t *testing.T) {
	e := newAdminEnv(t)
	other := newAdminEnvOn(t, e.tg)
	other.save(t, fullToken("someone", "1000.O", time.Now().Add(time.Hour)))
	wantCode(t, "import", e.run(t, genLines(5, "ns"), "import"), 0)
	if e.count(t) != 5 || other.count(t) != 1 {
		t.Errorf("after import: %d tokens here, %d in the other namespace", e.count(t), other.count(t))
	}
}
