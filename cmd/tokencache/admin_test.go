package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/internal/view"
	"github.com/tokencache/tokencache/redisstore"
)

// adminEnv is one test's namespace on the test Redis (miniredis, REDIS_URL
// or TOKENCACHE_CLUSTER_ADDRS), and the --redis URL that reaches it.
type adminEnv struct {
	tg    *redistest.Target
	url   string
	ns    string
	rdb   redis.UniversalClient
	store *redisstore.Store
}

func newAdminEnv(t *testing.T) *adminEnv {
	t.Helper()
	tg := redistest.New(t)
	return newAdminEnvOn(t, tg)
}

// newAdminEnvOn makes another namespace on the same target.
func newAdminEnvOn(t *testing.T, tg *redistest.Target) *adminEnv {
	t.Helper()
	e := &adminEnv{tg: tg, url: targetURL(t, tg), ns: redistest.Namespace(t), rdb: tg.Client(t)}
	e.store = redisstore.New(e.rdb, redisstore.WithNamespace(e.ns))
	t.Cleanup(func() {
		ctx := context.Background()
		if err := e.store.DeleteTokens(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, key := range redistest.Keys(t, e.rdb, e.ns+":") {
			e.rdb.Del(ctx, key) // one key per command: cluster-safe
		}
	})
	return e
}

// tokenKeys returns the keys of namespace ns except its layout marker
// ("ns:layout"), which says how the index is laid out and outlives a purge.
func tokenKeys(t *testing.T, rdb redis.UniversalClient, ns string) []string {
	t.Helper()
	return slices.DeleteFunc(redistest.Keys(t, rdb, ns+":"), func(k string) bool { return k == ns+":layout" })
}

// targetURL turns what redistest tells a child process into a --redis URL.
func targetURL(t *testing.T, tg *redistest.Target) string {
	t.Helper()
	for _, kv := range tg.Env() {
		name, value, _ := strings.Cut(kv, "=")
		switch name {
		case redistest.EnvURL:
			return value
		case redistest.EnvClusterAddrs:
			addrs := strings.Split(value, ",")
			q := url.Values{"addr": addrs}
			return "redis://" + addrs[0] + "?" + q.Encode()
		}
	}
	t.Fatalf("redistest target without a URL: %v", tg.Env())
	return ""
}

type runResult struct {
	stdout, stderr string
	code           int
}

// run runs the command args[0] with the env's --redis and --namespace and
// the rest of args.
func (e *adminEnv) run(t *testing.T, stdin string, args ...string) runResult {
	t.Helper()
	return runCLI(t, stdin, withStoreFlags(args, "--redis", e.url, "--namespace", e.ns)...)
}

// withStoreFlags puts flags right after the command name args[0]: the store
// flags belong to the commands that open the store, not to the root.
func withStoreFlags(args []string, flags ...string) []string {
	if len(args) == 0 {
		return flags
	}
	return append(append([]string{args[0]}, flags...), args[1:]...)
}

func runCLI(t *testing.T, stdin string, args ...string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, strings.NewReader(stdin), &stdout, &stderr)
	return runResult{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// secretMark is in every secret the tests store: no output but an export
// with --include-secrets may contain it.
const secretMark = "SECRET"

func (e *adminEnv) save(t *testing.T, tok tokencache.Token) tokencache.Token {
	t.Helper()
	if err := e.store.SaveToken(context.Background(), &tok); err != nil {
		t.Fatalf("SaveToken(%v): %v", tok, err)
	}
	return tok
}

func (e *adminEnv) count(t *testing.T) int {
	t.Helper()
	tokens, err := e.store.GetTokens(context.Background())
	if err != nil {
		t.Fatalf("GetTokens: %v", err)
	}
	return len(tokens)
}

func fullToken(user, client string, expiry time.Time) tokencache.Token {
	return tokencache.Token{
		UserName:     user,
		ClientID:     client,
		ClientSecret: secretMark + "-client-" + user,
		AccessToken:  secretMark + "-access-" + user,
		RefreshToken: secretMark + "-refresh-" + user,
		Expiry:       expiry,
		RedirectURL:  "https://app.example.com/callback",
		APIDomain:    "https://www.zohoapis.eu",
	}
}

func noSecrets(t *testing.T, what string, r runResult) {
	t.Helper()
	if strings.Contains(r.stdout, secretMark) || strings.Contains(r.stderr, secretMark) {
		t.Errorf("%s printed a secret:\nstdout:\n%s\nstderr:\n%s", what, r.stdout, r.stderr)
	}
}

func wantCode(t *testing.T, what string, r runResult, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", what, r.code, code, r.stdout, r.stderr)
	}
}

// oneLineError checks that a failure exited with code, printed exactly one
// line on stderr and nothing on stdout, and returns the line.
func oneLineError(t *testing.T, what string, r runResult, code int) string {
	t.Helper()
	wantCode(t, what, r, code)
	if r.stdout != "" {
		t.Errorf("%s: stdout %q, want nothing", what, r.stdout)
	}
	if !strings.HasPrefix(r.stderr, "tokencache: ") || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("%s: stderr %q, want one line starting with \"tokencache: \"", what, r.stderr)
	}
	return strings.TrimSuffix(r.stderr, "\n")
}

func TestListTableAndJSONHaveNoSecrets(t *testing.T) {
	e := newAdminEnv(t)
	now := time.Now()
	bob := e.save(t, fullToken("bob@example.com", "1000.B", now.Add(3*time.Minute+30*time.Second)))
	alice := e.save(t, fullToken("alice@example.com", "1000.A", now.Add(-time.Hour)))
	odd := tokencache.Token{UserName: "eve\tnew\nline", ClientID: "1000.E", AccessToken: secretMark + "-access-eve", Expiry: now.Add(time.Hour)}
	odd = e.save(t, odd)
	grant := e.save(t, tokencache.Token{UserName: "zed", ClientID: "1000.Z", GrantToken: secretMark + "-grant"})

	r := e.run(t, "", "list")
	wantCode(t, "list", r, 0)
	noSecrets(t, "list", r)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("list printed %d lines, want a header and 4 tokens:\n%s", len(lines), r.stdout)
	}
	for _, col := range []string{"ID", "USER", "CLIENT", "EXPIRY", "REFRESH", "API DOMAIN", "VERSION"} {
		if !strings.Contains(lines[0], col) {
			t.Errorf("header %q lacks %s", lines[0], col)
		}
	}
	// Sorted by user name: alice, bob, eve, zed.
	for i, want := range []struct {
		tok   tokencache.Token
		parts []string
	}{
		{alice, []string{"alice@example.com", "1000.A", "expired 1h00m ago", "yes", "https://www.zohoapis.eu"}},
		{bob, []string{"bob@example.com", "1000.B", "(in 3m)", "yes"}},
		{odd, []string{`"eve\tnew\nline"`, "1000.E", "(in 59m)", "no"}},
		{grant, []string{"zed", "never", "no"}},
	} {
		line := lines[i+1]
		if !strings.HasPrefix(line, want.tok.ID+" ") {
			t.Errorf("line %d = %q, want token %s (%s)", i+1, line, want.tok.ID, want.tok.UserName)
		}
		for _, p := range want.parts {
			if !strings.Contains(line, p) {
				t.Errorf("line %d = %q, want %q in it", i+1, line, p)
			}
		}
	}
	if want := bob.Expiry.Format(time.RFC3339); !strings.Contains(r.stdout, want) {
		t.Errorf("list lacks bob's expiry %s:\n%s", want, r.stdout)
	}

	r = e.run(t, "", "list", "--json")
	wantCode(t, "list --json", r, 0)
	noSecrets(t, "list --json", r)
	var views []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &views); err != nil {
		t.Fatalf("list --json: %v\n%s", err, r.stdout)
	}
	if len(views) != 4 {
		t.Fatalf("list --json gave %d tokens, want 4", len(views))
	}
	wantOrder := []tokencache.Token{alice, bob, odd, grant}
	for i, v := range views {
		w := wantOrder[i]
		if v["id"] != w.ID || v["user_name"] != w.UserName || v["client_id"] != w.ClientID {
			t.Errorf("token %d = %v, want %s %q", i, v, w.ID, w.UserName)
		}
		for field, secret := range map[string]string{
			"access_token": w.AccessToken, "refresh_token": w.RefreshToken,
			"grant_token": w.GrantToken, "client_secret": w.ClientSecret,
		} {
			want := ""
			if secret != "" {
				want = "[redacted]"
			}
			if v[field] != want {
				t.Errorf("token %d %s = %v, want %q", i, field, v[field], want)
			}
		}
		if v["version"] != float64(1) {
			t.Errorf("token %d version = %v, want 1", i, v["version"])
		}
	}
}

func TestListEmptyNamespace(t *testing.T) {
	e := newAdminEnv(t)
	r := e.run(t, "", "list")
	wantCode(t, "list", r, 0)
	if r.stdout != "" || !strings.Contains(r.stderr, "no tokens in namespace "+e.ns) {
		t.Errorf("list of an empty namespace: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	r = e.run(t, "", "list", "--json")
	wantCode(t, "list --json", r, 0)
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("list --json of an empty namespace = %q, want []", r.stdout)
	}
}

func TestShow(t *testing.T) {
	e := newAdminEnv(t)
	tok := e.save(t, fullToken("alice@example.com", "1000.A", time.Now().Add(time.Hour)))

	r := e.run(t, "", "show", tok.ID)
	wantCode(t, "show", r, 0)
	noSecrets(t, "show", r)
	for _, want := range []string{
		"id:", tok.ID, "user_name:", "alice@example.com", "client_id:", "1000.A",
		"access_token:", "[redacted]", "expiry:", "(in 59m)", "api_domain:", "https://www.zohoapis.eu", "version:",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(line, "grant_token:") && strings.TrimSpace(strings.TrimPrefix(line, "grant_token:")) != "" {
			t.Errorf("show: %q, want an empty grant token", line)
		}
	}

	r = e.run(t, "", "show", "--json", tok.ID)
	wantCode(t, "show --json", r, 0)
	noSecrets(t, "show --json", r)
	var v view.Token
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("show --json: %v\n%s", err, r.stdout)
	}
	stored, err := e.store.FindTokenByID(context.Background(), tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := view.Of(stored)
	if v.Expiry == nil || !v.Expiry.Equal(*want.Expiry) {
		t.Fatalf("show --json expiry %v, want %v", v.Expiry, want.Expiry)
	}
	v.Expiry = want.Expiry
	if v != want {
		t.Errorf("show --json = %+v\nwant %+v", v, want)
	}
	if v.AccessToken != "[redacted]" || v.GrantToken != "" {
		t.Errorf("show --json secrets: access %q, grant %q", v.AccessToken, v.GrantToken)
	}

	line := oneLineError(t, "show missing", e.run(t, "", "show", "nosuchid"), 3)
	if want := "tokencache: no token with ID nosuchid in namespace " + e.ns; line != want {
		t.Errorf("show missing: %q, want %q", line, want)
	}
	line = oneLineError(t, "show bad ID", e.run(t, "", "show", secretMark+" pasted by mistake"), 2)
	if !strings.Contains(line, "invalid token ID") || strings.Contains(line, secretMark) {
		t.Errorf("show bad ID: %q", line)
	}
}

func TestRevokeWorkersSeeItGone(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	tok := e.save(t, fullToken("alice@example.com", "1000.A", time.Now().Add(time.Hour)))
	other := e.save(t, fullToken("bob@example.com", "1000.A", time.Now().Add(time.Hour)))

	// A worker with its own client and store, which has looked the token up
	// (and so remembers index hints).
	worker := redisstore.New(e.tg.Client(t), redisstore.WithNamespace(e.ns))
	query := tokencache.Token{UserName: tok.UserName, ClientID: tok.ClientID}
	if _, err := worker.FindToken(ctx, query); err != nil {
		t.Fatalf("worker FindToken before revoke: %v", err)
	}

	r := e.run(t, "", "revoke", tok.ID)
	wantCode(t, "revoke", r, 0)
	noSecrets(t, "revoke", r)
	if want := "revoked token " + tok.ID + " (user alice@example.com, client 1000.A) in namespace " + e.ns + "\n"; r.stdout != want {
		t.Errorf("revoke said %q, want %q", r.stdout, want)
	}
	if _, err := e.store.FindTokenByID(ctx, tok.ID); !errors.Is(err, tokencache.ErrNotFound) {
		t.Errorf("FindTokenByID after revoke: %v, want ErrNotFound", err)
	}
	for _, q := range []tokencache.Token{query, {AccessToken: tok.AccessToken}, {RefreshToken: tok.RefreshToken, ClientID: tok.ClientID}} {
		if _, err := worker.FindToken(ctx, q); !errors.Is(err, tokencache.ErrNotFound) {
			t.Errorf("worker FindToken by %s after revoke: %v, want ErrNotFound", tokencache.RuleOf(q), err)
		}
	}
	if _, err := worker.FindTokenByID(ctx, other.ID); err != nil {
		t.Errorf("the other token is gone too: %v", err)
	}

	line := oneLineError(t, "revoke again", e.run(t, "", "revoke", tok.ID), 3)
	if want := "tokencache: no token with ID " + tok.ID + " in namespace " + e.ns; line != want {
		t.Errorf("revoke again: %q, want %q", line, want)
	}
	r = e.run(t, "", "revoke", "--ignore-missing", tok.ID)
	wantCode(t, "revoke --ignore-missing", r, 0)
	if !strings.Contains(r.stdout, "nothing to revoke") {
		t.Errorf("revoke --ignore-missing said %q", r.stdout)
	}
	oneLineError(t, "revoke bad ID", e.run(t, "", "revoke", "--ignore-missing", "no/such"), 2)
	oneLineError(t, "revoke without ID", e.run(t, "", "revoke"), 2)
}

func TestPurge(t *testing.T) {
	e := newAdminEnv(t)
	other := newAdminEnvOn(t, e.tg)
	fill := func() {
		for _, u := range []string{"a", "b", "c"} {
			e.save(t, fullToken(u, "1000.P", time.Now().Add(time.Hour)))
		}
	}
	fill()
	other.save(t, fullToken("a", "1000.P", time.Now().Add(time.Hour)))
	question := "Delete all 3 tokens in namespace " + e.ns + "? [y/N] "

	for _, answer := range []string{"n\n", "", "no\n", "yess\n", "\n", "n"} {
		r := e.run(t, answer, "purge")
		if !strings.HasPrefix(r.stderr, question) {
			t.Errorf("purge with answer %q asked %q, want %q", answer, r.stderr, question)
		}
		if ended := strings.HasSuffix(answer, "\n"); !ended && !strings.HasPrefix(r.stderr, question+"\n") {
			t.Errorf("purge with unfinished answer %q: the question's line is not ended: %q", answer, r.stderr)
		}
		wantCode(t, "purge answered "+answer, r, 1)
		if !strings.Contains(r.stderr, "purge cancelled: nothing was deleted") {
			t.Errorf("purge answered %q: stderr %q", answer, r.stderr)
		}
		if n := e.count(t); n != 3 {
			t.Fatalf("purge answered %q left %d tokens, want 3", answer, n)
		}
	}

	for _, answer := range []string{"y\n", " YES \n", "y"} {
		r := e.run(t, answer, "purge")
		wantCode(t, "purge answered "+answer, r, 0)
		if want := question + map[bool]string{true: "", false: "\n"}[strings.HasSuffix(answer, "\n")]; r.stderr != want {
			t.Errorf("purge answered %q: stderr %q, want %q", answer, r.stderr, want)
		}
		if want := "deleted 3 tokens from namespace " + e.ns + "\n"; r.stdout != want {
			t.Errorf("purge said %q, want %q", r.stdout, want)
		}
		if n := e.count(t); n != 0 {
			t.Errorf("purge answered %q left %d tokens", answer, n)
		}
		if keys := tokenKeys(t, e.rdb, e.ns); len(keys) != 0 {
			t.Errorf("purge left keys %v", keys)
		}
		fill()
	}

	r := e.run(t, "", "purge", "--yes")
	wantCode(t, "purge --yes", r, 0)
	if r.stderr != "" || e.count(t) != 0 {
		t.Errorf("purge --yes: stderr %q, %d tokens left", r.stderr, e.count(t))
	}
	r = e.run(t, "", "purge")
	wantCode(t, "purge of an empty namespace", r, 0)
	if !strings.Contains(r.stdout, "nothing to delete") {
		t.Errorf("purge of an empty namespace said %q", r.stdout)
	}
	if n := other.count(t); n != 1 {
		t.Errorf("the other namespace has %d tokens after the purges, want 1", n)
	}
}

func TestStats(t *testing.T) {
	e := newAdminEnv(t)
	now := time.Now()
	soonWithRefresh := fullToken("soon-refresh", "1000.S", now.Add(2*time.Minute))
	laterNoRefresh := fullToken("later-norefresh", "1000.S", now.Add(time.Hour))
	laterNoRefresh.RefreshToken = ""
	expiredRefreshable := fullToken("expired-refresh", "1000.S", now.Add(-time.Hour))
	never := fullToken("never", "1000.S", time.Time{})
	soonNoRefresh := fullToken("soon-norefresh", "1000.S", now.Add(3*time.Minute))
	soonNoRefresh.RefreshToken = ""
	for _, tok := range []tokencache.Token{soonWithRefresh, laterNoRefresh, expiredRefreshable, never, soonNoRefresh} {
		e.save(t, tok)
	}
	// Another namespace whose name extends this one's with a dash is not
	// counted (the glob is escaped and ends with a colon).
	e.save(t, fullToken("x", "1000.S", now.Add(time.Hour)))
	sibling := redisstore.New(e.rdb, redisstore.WithNamespace(e.ns+"-sibling"))
	t.Cleanup(func() { _ = sibling.DeleteTokens(context.Background()) })
	sib := fullToken("y", "1000.S", now.Add(time.Hour))
	if err := sibling.SaveToken(context.Background(), &sib); err != nil {
		t.Fatal(err)
	}

	statsOf := func(args ...string) statsJSON {
		t.Helper()
		r := e.run(t, "", append([]string{"stats", "--json"}, args...)...)
		wantCode(t, "stats --json", r, 0)
		var st statsJSON
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			t.Fatalf("stats --json: %v\n%s", err, r.stdout)
		}
		return st
	}
	st := statsOf()
	keys := int64(len(redistest.Keys(t, e.rdb, e.ns+":")))
	want := statsJSON{
		Namespace: e.ns, Tokens: 6, Soon: "5m0s", ExpiringSoon: 2, ExpiredRefreshable: 1,
		WithoutRefreshToken: 2, NeverExpiring: 1, Keys: keys,
	}
	got := st
	got.MemoryBytes, got.MemoryNote = nil, ""
	if got != want {
		t.Errorf("stats = %+v\nwant    %+v", got, want)
	}
	switch {
	case e.tg.Kind != redistest.Mini && (st.MemoryBytes == nil || *st.MemoryBytes <= 0):
		t.Errorf("stats on %s: memory %v (%s), want > 0", e.tg.Kind, st.MemoryBytes, st.MemoryNote)
	case st.MemoryBytes == nil && st.MemoryNote == "":
		t.Errorf("stats on %s: no memory and no reason", e.tg.Kind)
	case st.MemoryBytes != nil && *st.MemoryBytes <= 0:
		t.Errorf("stats on %s: memory %d", e.tg.Kind, *st.MemoryBytes)
	}

	if st := statsOf("--soon", "2h"); st.ExpiringSoon != 4 || st.Soon != "2h0m0s" {
		t.Errorf("stats --soon 2h: expiring soon %d (%s), want 4", st.ExpiringSoon, st.Soon)
	}

	r := e.run(t, "", "stats")
	wantCode(t, "stats", r, 0)
	noSecrets(t, "stats", r)
	for _, want := range []string{"namespace:", e.ns, "tokens:", "access token expiring within 5m0s:", "expired, refreshable:", "without refresh token:", "redis keys", "redis memory:"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stats lacks %q:\n%s", want, r.stdout)
		}
	}
	if st.MemoryBytes == nil && !strings.Contains(r.stdout, "n/a (") {
		t.Errorf("stats without memory should say n/a and why:\n%s", r.stdout)
	}
	oneLineError(t, "stats --soon -1m", e.run(t, "", "stats", "--soon", "-1m"), 2)
}

// statsJSON is what stats --json prints.
type statsJSON struct {
	Namespace           string `json:"namespace"`
	Tokens              int    `json:"tokens"`
	Soon                string `json:"soon"`
	ExpiringSoon        int    `json:"expiring_soon"`
	ExpiredRefreshable  int    `json:"expired_refreshable"`
	WithoutRefreshToken int    `json:"without_refresh_token"`
	NeverExpiring       int    `json:"never_expiring"`
	Keys                int64  `json:"keys"`
	MemoryBytes         *int64 `json:"memory_bytes"`
	MemoryNote          string `json:"memory_note,omitempty"`
}

func TestInvalidNamespace(t *testing.T) {
	e := newAdminEnv(t)
	for _, ns := range []string{"has space", "{braces}", strings.Repeat("n", 65)} {
		line := oneLineError(t, "namespace "+ns, runCLI(t, "", "list", "--redis", e.url, "--namespace", ns), 2)
		if !strings.HasPrefix(line, "tokencache: invalid store settings: ") {
			t.Errorf("--namespace %q: %q", ns, line)
		}
	}
}

func TestEnvironmentChoosesRedisAndNamespace(t *testing.T) {
	e := newAdminEnv(t)
	tok := e.save(t, fullToken("env", "1000.E", time.Now().Add(time.Hour)))
	t.Setenv(cli.EnvRedisURL, e.url)
	t.Setenv(cli.EnvNamespace, e.ns)
	r := runCLI(t, "", "show", tok.ID)
	wantCode(t, "show with the environment", r, 0)
	if !strings.Contains(r.stdout, tok.ID) {
		t.Errorf("show with the environment:\n%s", r.stdout)
	}
}
