package worker

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/internal/otelsetup"
	"github.com/tokencache/tokencache/oauthtest"
)

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestMetricsAndHealth runs a worker with --metrics-addr: /metrics serves
// the tokencache metrics in the Prometheus format, and /healthz answers 200
// while Redis answers, 503 once it is gone.
func TestMetricsAndHealth(t *testing.T) {
	mr := miniredis.RunT(t)
	srv := oauthtest.Start(t, oauthtest.WithDefaultClient())
	var logs syncBuffer
	f := cli.New(&cli.IOStreams{In: strings.NewReader(""), Out: &logs, ErrOut: &logs})
	f.Settings.RedisURL = "redis://" + mr.Addr()
	f.Settings.Namespace = "worker-metrics"
	addr := make(chan string, 1)
	o := &Options{
		F: f, TokenURL: srv.TokenURL(), User: "alice", ClientID: oauthtest.DefaultClientID, ClientSecret: oauthtest.DefaultClientSecret,
		RedirectURL: oauthtest.DefaultRedirectURL, GrantCode: srv.IssueGrant(oauthtest.DefaultClientID, "alice"),
		Interval: 20 * time.Millisecond, LogEvery: 100, OTel: otelsetup.None, MetricsAddr: "127.0.0.1:0",
		Ready: func(a string) { addr <- a },
	}
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("the worker stopped: %v\n%s", err, logs.b.String())
	case <-time.After(10 * time.Second):
		t.Fatal("the metrics server did not start")
	}
	deadline := time.Now().Add(10 * time.Second)
	for srv.Stats().APICalls < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}

	code, body := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`tokencache_token_requests_total{result="fresh"}`,
		`tokencache_refreshes_total{outcome="ok"} 1`, // the exchange of the grant code
		`tokencache_store_duration_seconds_bucket{operation="find_token",outcome="ok",le=`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}
	if code, body := get(t, base+HealthPath); code != 200 || body != "ok\n" {
		t.Errorf("%s with Redis up: %d %q", HealthPath, code, body)
	}
	mr.Close()
	if code, body := get(t, base+HealthPath); code != http.StatusServiceUnavailable || !strings.Contains(body, "cannot reach Redis") {
		t.Errorf("%s with Redis gone: %d %q", HealthPath, code, body)
	}
}

func TestValidateAPIURL(t *testing.T) {
	for _, c := range []struct {
		token, api, wantAPI string
		ok                  bool
	}{
		{"http://oauth:8080" + oauthtest.TokenPath, "", "http://oauth:8080" + oauthtest.WhoAmIPath, true},
		{"eu", "", "", false}, // a Zoho data centre: its API is the operator's to name
		{"eu", "https://www.zohoapis.eu/crm/v2/users", "https://www.zohoapis.eu/crm/v2/users", true},
		{"https://idp.example.com/token", "", "", false},
	} {
		o := &Options{TokenURL: c.token, APIURL: c.api, User: "u", ClientID: "c", ClientSecret: "s", Interval: time.Second, LogEvery: 1, OTel: otelsetup.None}
		err := o.validate()
		if (err == nil) != c.ok || c.ok && o.APIURL != c.wantAPI {
			t.Errorf("token URL %s, API %q: %v, API URL %q; want ok=%v, %q", c.token, c.api, err, o.APIURL, c.ok, c.wantAPI)
		}
	}
}
