package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/internal/keyscan"
	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/oauthtest"
)

// workerRedis returns a redis:// URL of the test's Redis and a fresh
// namespace whose keys are deleted when the test ends.
func workerRedis(t *testing.T) (url, ns string) {
	t.Helper()
	tg := redistest.New(t)
	url = targetURL(t, tg) // any --redis form: the worker connects like every command
	ns = redistest.Namespace(t)
	rdb := tg.Client(t)
	t.Cleanup(func() { _, _ = keyscan.Delete(context.Background(), rdb, ns) })
	return url, ns
}

// TestWorkerReplicas runs two replicas that start at once with the same
// grant code: the code is exchanged once, the token is renewed once per
// expiry, every call succeeds, and both stop cleanly when ctx ends.
func TestWorkerReplicas(t *testing.T) {
	url, ns := workerRedis(t)
	// 2 s tokens renewed 800 ms ahead for 4 s: three renewals, and a call
	// made just short of the window still reaches the server in time on a
	// loaded machine.
	srv := oauthtest.Start(t, oauthtest.WithDefaultClient(), oauthtest.WithAccessTokenLifetime(2*time.Second))
	code := srv.IssueGrant(oauthtest.DefaultClientID, "alice@example.com")
	t.Setenv(cli.EnvClientSecret, oauthtest.DefaultClientSecret)
	args := []string{"worker", "--redis", url, "--namespace", ns, "--token-url", srv.TokenURL(),
		"--client-id", oauthtest.DefaultClientID, "--user", "alice@example.com", "--grant-code", code, "--interval", "50ms", "--refresh-window", "800ms", "--log-every", "5"}

	ctx, cancel := context.WithCancel(context.Background())
	var logs [2]demoBuffer
	codes := make(chan int, 2)
	for i := range 2 {
		go func() { codes <- run(ctx, args, strings.NewReader(""), &logs[i], &logs[i]) }()
	}
	time.Sleep(4 * time.Second)
	cancel()
	for range 2 {
		select {
		case c := <-codes:
			if c != 0 {
				t.Errorf("a worker exited with %d", c)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a worker did not stop within 5s of ctx's end")
		}
	}
	st := srv.Stats()
	if st.Exchanges != 1 || st.InvalidGrants != 0 || st.Unauthorized != 0 || st.APICalls < 40 || st.Refreshes < 2 || st.Refreshes > 4 {
		t.Errorf("server stats %+v; want 1 exchange, 2 to 4 refreshes, 40+ API calls, no invalid_grant, no 401", st)
	}
	for i := range logs {
		out := logs[i].String()
		if !strings.Contains(out, "worker stopped") || !strings.Contains(out, "failed=0") {
			t.Errorf("worker %d log lacks a clean stop:\n%s", i, out)
		}
		if strings.Contains(out, code) || strings.Contains(out, oauthtest.DefaultClientSecret) {
			t.Errorf("worker %d logged a secret:\n%s", i, out)
		}
	}
}

// TestWorkerGrantFile starts a worker before the grant file exists; it
// makes its first token once the file appears.
func TestWorkerGrantFile(t *testing.T) {
	t.Parallel()
	url, ns := workerRedis(t)
	srv := oauthtest.Start(t, oauthtest.WithDefaultClient())
	file := filepath.Join(t.TempDir(), "grant")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs demoBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"worker", "--redis", url, "--namespace", ns, "--token-url", srv.TokenURL(),
			"--client-id", oauthtest.DefaultClientID, "--client-secret", oauthtest.DefaultClientSecret, "--user", "bob", "--grant-code-file", file, "--interval", "50ms"}, strings.NewReader(""), &logs, &logs)
	}()
	time.Sleep(300 * time.Millisecond)
	if err := os.WriteFile(file, []byte(srv.IssueGrant(oauthtest.DefaultClientID, "bob")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.Stats().APICalls < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if c := <-done; c != 0 {
		t.Errorf("worker exited with %d", c)
	}
	if st := srv.Stats(); st.Exchanges != 1 || st.APICalls < 3 || st.Unauthorized != 0 {
		t.Errorf("server stats %+v; want 1 exchange and calls\nlog:\n%s", st, logs.String())
	}
}

func TestWorkerFlags(t *testing.T) {
	t.Setenv(cli.EnvClientSecret, "")
	creds := []string{"--client-id", "c", "--client-secret", "s"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no token URL", append([]string{"--user", "u"}, creds...), "--token-url"},
		{"no user", append([]string{"--token-url", "http://127.0.0.1:1/token"}, creds...), "--user"},
		{"no client ID", []string{"--token-url", "eu", "--user", "u", "--client-secret", "s"}, "--client-id is required"},
		{"no client secret", []string{"--token-url", "eu", "--user", "u", "--client-id", "c"}, cli.EnvClientSecret},
		{"unknown data centre", append([]string{"--token-url", "mars", "--user", "u"}, creds...), "data centre"},
		{"Zoho without an API", append([]string{"--token-url", "us", "--user", "u"}, creds...), "--api-url is required"},
		{"bad interval", append([]string{"--token-url", "http://127.0.0.1:1/oauth/v2/token", "--user", "u", "--interval", "0s"}, creds...), "--interval"},
		{"bad otel", append([]string{"--token-url", "http://127.0.0.1:1/oauth/v2/token", "--user", "u", "--otel", "jaeger"}, creds...), "--otel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out demoBuffer
			code := run(context.Background(), append([]string{"worker"}, tc.args...), strings.NewReader(""), &out, &out)
			if code != 2 || !strings.Contains(out.String(), tc.want) {
				t.Errorf("exit %d, output %q; want 2 (usage) and a message about %s", code, out.String(), tc.want)
			}
		})
	}
}

// TestWorkerBadRedisURLHidesPassword: a URL that does not parse is
// reported without its content.
func TestWorkerBadRedisURLHidesPassword(t *testing.T) {
	t.Parallel()
	var out demoBuffer
	code := run(context.Background(), []string{"worker", "--redis", "redis://u:hunter2@host:notaport/0", "--token-url", "eu",
		"--api-url", "https://www.zohoapis.eu/crm/v2/users", "--user", "u", "--client-id", "c", "--client-secret", "s"},
		strings.NewReader(""), &out, &out)
	if code != 2 || strings.Contains(out.String(), "hunter2") {
		t.Errorf("exit %d, output %q; want 2 without the password", code, out.String())
	}
}
