package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/internal/connect"
	"github.com/tokencache/tokencache/internal/demo"
	"github.com/tokencache/tokencache/internal/keyscan"
	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/oauthtest"
	"github.com/tokencache/tokencache/redisstore"
)

// TestMain makes the test binary a demo worker when it is started as one:
// the demo starts its workers as os.Executable() demo-worker, and in a test
// os.Executable() is the test binary. The first argument alone decides, so
// that a demo run by any test starts workers and never another copy of the
// test suite; go test never passes a bare word first.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "demo-worker" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// demoBuffer is a bytes.Buffer safe for concurrent use.
type demoBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *demoBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *demoBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// demoRedisURL returns the URL of the real Redis the test run was given
// (REDIS_URL), or "" on miniredis and on a Cluster, which the demo's
// redis:// URL cannot name.
func demoRedisURL() string {
	if os.Getenv(redistest.EnvClusterAddrs) != "" {
		return ""
	}
	return os.Getenv(redistest.EnvURL)
}

// demoRow returns the numbers of the table row that starts with name.
func demoRow(t *testing.T, out, name string) []string {
	t.Helper()
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, name); ok {
			f := strings.Fields(rest)
			if len(f) != 8 {
				t.Fatalf("row %q has %d columns, want 8", line, len(f))
			}
			return f
		}
	}
	t.Fatalf("no row %q in the output:\n%s", name, out)
	return nil
}

func demoNumber(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(strings.ReplaceAll(s, ",", ""), 64)
	if err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return v
}

func TestDemo(t *testing.T) {
	t.Setenv(cli.EnvRedisURL, "")
	args := []string{"demo", "--workers", "2", "--goroutines", "4", "--duration", "4s", "--token-lifetime", "1s", "--call-interval", "10ms"}
	if u := demoRedisURL(); u != "" {
		args = append(args, "--redis", u, "--namespace", redistest.Namespace(t))
	}
	var stdout, stderr demoBuffer
	start := time.Now()
	code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
	out := stdout.String()
	t.Logf("demo took %v\nstdout:\n%s\nstderr:\n%s", time.Since(start).Round(time.Millisecond), out, stderr.String())
	if code != 0 {
		t.Fatalf("demo exited with %d", code)
	}
	cache := demoRow(t, out, "tokencache (shared through Redis)")
	served, failed, expiries, refreshes := demoNumber(t, cache[0]), demoNumber(t, cache[1]), demoNumber(t, cache[2]), demoNumber(t, cache[3])
	if served == 0 || failed != 0 {
		t.Errorf("tokencache served %v calls and failed %v; want some and none", served, failed)
	}
	// 4 s of 1 s tokens renewed 333 ms early: a renewal every 667 ms or so
	// on a quiet machine; on a loaded one a call may take a second or more,
	// so fewer tokens reach their window. At least one must, and each
	// expiry gets at most one refresh.
	if expiries < 1 || refreshes < 1 || refreshes > expiries {
		t.Errorf("tokencache: %v refreshes for %v expiries; want at least 1, and at most one per expiry", refreshes, expiries)
	}
	if ig := demoNumber(t, cache[4]); ig != 0 {
		t.Errorf("tokencache got %v invalid_grant answers, want 0", ig)
	}
	if per := demoNumber(t, cache[5]); per > 1 {
		t.Errorf("token endpoint requests per expiry = %v, want ≤ 1", per)
	}
	base := demoRow(t, out, "x/oauth2 ReuseTokenSource per worker")
	if demoNumber(t, base[0])+demoNumber(t, base[1]) == 0 {
		t.Errorf("the baseline made no calls: %q", base)
	}
	// Two workers from one rotating refresh token: the second to renew is cut off.
	if demoNumber(t, base[4]) == 0 {
		t.Errorf("the baseline got no invalid_grant: %q", base)
	}
	if !strings.Contains(out, "PASS:") {
		t.Errorf("no PASS verdict in the output")
	}
	if !strings.Contains(stderr.String(), "tokencache:") {
		t.Errorf("no progress line on stderr")
	}
	if u := demoRedisURL(); u != "" && !strings.Contains(stderr.String(), "deleted the") {
		t.Errorf("the demo did not say it deleted its keys")
	}
}

func TestDemoFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"fractional lifetime", []string{"--token-lifetime", "1500ms"}, "whole seconds"},
		{"window too long", []string{"--token-lifetime", "2s", "--refresh-window", "2s"}, "--refresh-window"},
		{"too short", []string{"--token-lifetime", "3s", "--duration", "2s"}, "--duration"},
		{"no workers", []string{"--workers", "0"}, "--workers"},
		{"negative baseline", []string{"--baseline-goroutines", "-1"}, "--baseline-goroutines"},
		{"otel", []string{"--otel", "jaeger"}, "--otel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr demoBuffer
			code := run(context.Background(), append([]string{"demo"}, tc.args...), strings.NewReader(""), &stdout, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 (usage) and a message about %s", code, stderr.String(), tc.want)
			}
		})
	}
}

// TestDemoInterrupted stops the demo early: it returns at once with an
// error, having stopped its workers.
func TestDemoInterrupted(t *testing.T) {
	t.Setenv(cli.EnvRedisURL, "")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(1500*time.Millisecond, cancel)
	var stdout, stderr demoBuffer
	start := time.Now()
	code := run(ctx, []string{"demo", "--workers", "2", "--goroutines", "2", "--duration", "60s", "--token-lifetime", "1s"},
		strings.NewReader(""), &stdout, &stderr)
	if took := time.Since(start); code != 1 || took > 10*time.Second || !strings.Contains(stderr.String(), "interrupted") {
		t.Fatalf("exit %d after %v, stderr:\n%s\nwant 1 within 10s and a word about the interruption", code, took, stderr.String())
	}
}

// TestDemoWorkerStopsWhenStdinCloses starts a worker process as the demo
// does and closes its stdin, as the death of the demo would: the worker
// stops at once and still reports.
func TestDemoWorkerStopsWhenStdinCloses(t *testing.T) {
	t.Parallel()
	tg := redistest.New(t)
	rdb := tg.Client(t)
	url := targetURL(t, tg)
	ns := redistest.Namespace(t)
	t.Cleanup(func() { _, _ = keyscan.Delete(context.Background(), rdb, ns) })
	srv := oauthtest.Start(t, oauthtest.WithDefaultClient(), oauthtest.WithAccessTokenLifetime(time.Hour))
	issued := srv.IssueTokens(oauthtest.DefaultClientID, "u")
	tok := tokencache.Token{UserName: "u", ClientID: oauthtest.DefaultClientID, ClientSecret: oauthtest.DefaultClientSecret,
		AccessToken: issued.AccessToken, RefreshToken: issued.RefreshToken, Expiry: issued.Expiry}
	if err := redisstore.New(rdb, redisstore.WithNamespace(ns)).SaveToken(context.Background(), &tok); err != nil {
		t.Fatal(err)
	}
	base := srv.IssueTokens(oauthtest.DefaultClientID, "u")
	spec := demo.WorkerSpec{
		Redis: connect.Options{URL: url}, Namespace: ns, User: "u", ClientID: oauthtest.DefaultClientID, ClientSecret: oauthtest.DefaultClientSecret,
		TokenURL: srv.TokenURL(), APIURL: srv.URL() + oauthtest.WhoAmIPath,
		BaselineTokenURL: srv.TokenURL(), BaselineAPIURL: srv.URL() + oauthtest.WhoAmIPath,
		BaselineAccessToken: base.AccessToken, BaselineRefreshToken: base.RefreshToken, BaselineExpiry: base.Expiry,
		Goroutines: 2, BaselineGoroutines: 1, Deadline: time.Now().Add(time.Minute),
		Window: time.Second, CallInterval: 10 * time.Millisecond, ReportInterval: 100 * time.Millisecond,
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "demo-worker")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr demoBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	if err := json.NewEncoder(stdin).Encode(spec); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(stdout)
	var rep demo.Report
	for rep.Cache.Served == 0 { // wait for a report with served calls
		if err := dec.Decode(&rep); err != nil {
			t.Fatalf("reading the worker's reports: %v; stderr: %s", err, stderr.String())
		}
	}
	closed := time.Now()
	stdin.Close()
	for rep.Kind != "summary" {
		if err := dec.Decode(&rep); err != nil {
			t.Fatalf("no summary after stdin closed: %v; stderr: %s", err, stderr.String())
		}
	}
	_, _ = io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("worker: %v; stderr: %s", err, stderr.String())
	}
	if took := time.Since(closed); took > 5*time.Second {
		t.Errorf("the worker took %v to stop after its stdin closed", took)
	}
	if rep.Cache.Failed != 0 || rep.Cache.Latency == nil || rep.Cache.Latency.Count == 0 || len(rep.Cache.Tokens) != 1 {
		t.Errorf("summary %+v: want served calls, none failed, one token seen", rep.Cache)
	}
	for _, secret := range []string{issued.AccessToken, issued.RefreshToken, base.AccessToken, base.RefreshToken} {
		if strings.Contains(stderr.String(), secret) {
			t.Errorf("a token appears on the worker's stderr")
		}
	}
}

// TestDemoRestartRedis: a restart of the embedded Redis without
// persistence half way costs the fleet its token, and costs (next to)
// nothing with a durable record. A loaded machine can fail a call or two
// around the restart even with the record (a Redis read that times out),
// so the record's side is held to a bound, not to zero.
func TestDemoRestartRedis(t *testing.T) {
	t.Setenv(cli.EnvRedisURL, "")
	args := []string{"demo", "--workers", "2", "--goroutines", "2", "--baseline-goroutines", "0", "--duration", "4s", "--token-lifetime", "2s", "--restart-redis"}
	failedShare := func(out string) float64 {
		t.Helper()
		row := demoRow(t, out, "tokencache (shared through Redis)")
		served, failed := demoNumber(t, row[0]), demoNumber(t, row[1])
		return failed / max(served+failed, 1)
	}
	var stdout, stderr demoBuffer
	code := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "every key is lost (no durable record)") || failedShare(stdout.String()) < 0.25 {
		t.Errorf("without a record: exit %d, want 1 and most calls after the restart failed\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	var stdout2, stderr2 demoBuffer
	dsn := "sqlite:" + t.TempDir() + "/record.db"
	code = run(context.Background(), append(args, "--durable", dsn), strings.NewReader(""), &stdout2, &stderr2)
	if share := failedShare(stdout2.String()); share > 0.02 || !strings.Contains(stdout2.String(), "restarted half way without persistence, a durable record") {
		t.Errorf("with a record: exit %d, %.1f%% of calls failed, want at most 2%%\nstdout:\n%s\nstderr:\n%s", code, 100*share, stdout2.String(), stderr2.String())
	}
	var out demoBuffer
	if code := run(context.Background(), []string{"demo", "--restart-redis", "--redis", "redis://127.0.0.1:1"}, strings.NewReader(""), &out, &out); code != 2 {
		t.Errorf("--restart-redis with --redis: exit %d, want 2: %s", code, out.String())
	}
}
