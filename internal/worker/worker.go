// Package worker is the worker command: one replica of a fleet that calls an
// API with a token shared through Redis, and serves its metrics for
// Prometheus and a health probe.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/internal/connect"
	"github.com/tokencache/tokencache/internal/otelsetup"
	"github.com/tokencache/tokencache/lock"
	"github.com/tokencache/tokencache/oauthtest"
	"github.com/tokencache/tokencache/refresher"
)

// Environment variables for the secrets of worker and oauth-server, which
// are better kept out of a command line that every local user can read.
const (
	EnvClientSecret = cli.EnvClientSecret
	EnvGrantCode    = "TOKENCACHE_GRANT_CODE"
	EnvRefreshToken = "TOKENCACHE_REFRESH_TOKEN"
)

// HealthPath is where the worker's metrics server answers health probes.
const HealthPath = "/healthz"

// Options are the settings of worker.
type Options struct {
	F *cli.Factory

	TokenURL     string
	APIURL       string
	User         string
	ClientID     string
	ClientSecret string
	RedirectURL  string
	GrantCode    string
	GrantFile    string
	GrantWait    time.Duration
	RefreshToken string
	Interval     time.Duration
	LogEvery     int
	Window       time.Duration
	BasicAuth    bool
	OTel         string
	MetricsAddr  string

	// Ready, when set, receives the metrics server's address once it listens.
	Ready func(addr string)
}

// NewCmdWorker returns the worker command; runF replaces Run in tests.
func NewCmdWorker(f *cli.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	o := &Options{F: f}
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Call an API with a token shared through Redis, until stopped (one replica of a fleet)",
		Long: `Worker is one replica of a fleet: it calls --api-url every --interval with a
valid access token for --user, which it gets from tokencache (the token in Redis
under --namespace, renewed through --token-url once per expiry across every
replica), and logs one line every --log-every calls. It never logs a secret.

The first replica to start when Redis has no token for the user makes one, once
for the whole fleet: from --grant-code (an authorization code; or the file
--grant-code-file names, waited for up to --grant-wait), or from
--refresh-token. Against "tokencache oauth-server", get a code from its
authorization endpoint or start it with --seed-user and --grant-file.

--metrics-addr serves the OpenTelemetry metrics at /metrics in the Prometheus
format, and /healthz, which answers 200 while Redis answers a PING (for
"tokencache healthcheck --url" and container health checks).

SIGINT or SIGTERM stops it after the call in flight.`,
		Example: `  TOKENCACHE_CLIENT_SECRET=oauthtest-secret tokencache worker \
    --redis redis://redis:6379/0 --token-url http://oauth:8080/oauth/v2/token \
    --client-id oauthtest-client --user alice@example.com --grant-code-file /shared/grant \
    --metrics-addr :9464`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("client-secret") {
				o.ClientSecret = os.Getenv(EnvClientSecret)
			}
			if !cmd.Flags().Changed("grant-code") {
				o.GrantCode = os.Getenv(EnvGrantCode)
			}
			if !cmd.Flags().Changed("refresh-token") {
				o.RefreshToken = os.Getenv(EnvRefreshToken)
			}
			if err := o.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return Run(cmd.Context(), o)
		},
	}
	f.Settings.AddStoreFlags(cmd)
	fl := cmd.Flags()
	fl.StringVar(&o.TokenURL, "token-url", "", `token endpoint URL, or a Zoho data centre: "us", "eu", "in", "au", "cn", "jp", "ca", "sa", "uk" (required)`)
	fl.StringVar(&o.APIURL, "api-url", "", "URL to call with the token (required, except against oauth-server, whose "+oauthtest.WhoAmIPath+" is the default)")
	fl.StringVar(&o.User, "user", "", "user name of the token (required)")
	fl.StringVar(&o.ClientID, "client-id", "", "OAuth client ID (required)")
	fl.StringVar(&o.ClientSecret, "client-secret", "", "OAuth client secret (better: env "+EnvClientSecret+", which keeps it out of the process list)")
	fl.StringVar(&o.RedirectURL, "redirect-url", oauthtest.DefaultRedirectURL, "redirect URL registered for the client, sent with the grant code")
	fl.StringVar(&o.GrantCode, "grant-code", "", "authorization code to make the first token with (env "+EnvGrantCode+")")
	fl.StringVar(&o.GrantFile, "grant-code-file", "", "file holding the authorization code (as oauth-server --grant-file writes it)")
	fl.DurationVar(&o.GrantWait, "grant-wait", time.Minute, "how long to wait for --grant-code-file to appear")
	fl.StringVar(&o.RefreshToken, "refresh-token", "", "refresh token to make the first token with (env "+EnvRefreshToken+")")
	fl.DurationVar(&o.Interval, "interval", time.Second, "time between two calls")
	fl.IntVar(&o.LogEvery, "log-every", 10, "log one line every this many calls")
	fl.DurationVar(&o.Window, "refresh-window", refresher.DefaultRefreshWindow, "renew a token this long before it expires")
	fl.BoolVar(&o.BasicAuth, "basic-auth", false, "authenticate the client to the token endpoint with HTTP Basic instead of the request body")
	fl.StringVar(&o.OTel, "otel", otelsetup.DefaultMode(), `telemetry: "none"; "stdout" (metrics printed when the worker stops); "otlp" (traces to the collector the OTEL_EXPORTER_OTLP_* variables name; the default when they are set)`)
	fl.StringVar(&o.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics at /metrics and a health probe at "+HealthPath+" on this address, such as :9464")
	return cmd
}

func (o *Options) validate() error {
	if o.TokenURL != "" && !strings.Contains(o.TokenURL, "://") {
		u, err := refresher.ZohoTokenURL(o.TokenURL)
		if err != nil {
			return cli.UsageErrorf("--token-url: %s", strings.TrimPrefix(err.Error(), "refresher: "))
		}
		o.TokenURL = u
	}
	switch {
	case o.TokenURL == "":
		return cli.UsageErrorf("--token-url is required")
	case o.User == "":
		return cli.UsageErrorf("--user is required")
	case o.ClientID == "":
		return cli.UsageErrorf("--client-id is required")
	case o.ClientSecret == "":
		return cli.UsageErrorf("the client secret is required: set %s (or --client-secret)", EnvClientSecret)
	case o.Interval <= 0:
		return cli.UsageErrorf("--interval %v: want a positive duration", o.Interval)
	case o.LogEvery < 1:
		return cli.UsageErrorf("--log-every %d: want 1 or more", o.LogEvery)
	case o.Window < 0:
		return cli.UsageErrorf("--refresh-window %v: want zero or more", o.Window)
	case o.OTel != otelsetup.None && o.OTel != otelsetup.Stdout && o.OTel != otelsetup.OTLP:
		return cli.UsageErrorf("--otel %q: want %s, %s or %s", o.OTel, otelsetup.None, otelsetup.Stdout, otelsetup.OTLP)
	case o.OTel == otelsetup.Stdout && o.MetricsAddr != "":
		return cli.UsageErrorf("--otel stdout prints the metrics at the end; use --metrics-addr with --otel none or otlp")
	}
	u, err := url.Parse(o.TokenURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return cli.UsageErrorf("--token-url is not an absolute URL")
	}
	if o.APIURL == "" {
		// Only oauth-server has a known protected resource; a real
		// provider's API is the operator's to name.
		if isZoho(o.TokenURL) || u.Path != oauthtest.TokenPath {
			return cli.UsageErrorf("--api-url is required with --token-url %s (the default only suits tokencache oauth-server)", u.Host)
		}
		o.APIURL = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: oauthtest.WhoAmIPath}).String()
	}
	return nil
}

// isZoho reports whether tokenURL is one of the Zoho data centres'.
func isZoho(tokenURL string) bool {
	for _, dc := range []string{"us", "eu", "in", "au", "cn", "jp", "ca", "sa", "uk"} {
		if u, err := refresher.ZohoTokenURL(dc); err == nil && u == tokenURL {
			return true
		}
	}
	return false
}

// Run runs the worker until ctx ends.
func Run(ctx context.Context, o *Options) error {
	log := slog.New(slog.NewTextHandler(o.F.IO.ErrOut, nil))
	c, err := o.F.OpenStore(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	tel, err := otelsetup.New(ctx, otelsetup.Config{Mode: o.OTel, MetricsOut: o.F.IO.Out, Prometheus: o.MetricsAddr != ""}, c.Redis)
	if err != nil {
		return err
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tel.Flush(fctx); err != nil {
			log.Warn("telemetry", "err", err)
		}
	}()
	if o.MetricsAddr != "" {
		stop, err := serveMetrics(o, c.Endpoint, c, tel.Handler(), log)
		if err != nil {
			return err
		}
		defer stop()
	}
	store := c.NewStore(tel.StoreOptions()...)
	locker := lock.New(c.Redis, lock.WithNamespace(store.Namespace()))
	defer locker.Close()
	var epOpts []refresher.HTTPOption
	if o.BasicAuth {
		epOpts = append(epOpts, refresher.WithBasicAuth())
	}
	r := refresher.New(store, locker, refresher.NewHTTPEndpoint(o.TokenURL, epOpts...),
		append(tel.RefresherOptions(), refresher.WithRefreshWindow(o.Window))...)
	defer func() {
		// Let a refresh in flight reach the store: the server has retired
		// the old refresh token once it answered.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := r.Shutdown(sctx); err != nil {
			log.Warn("shutdown", "err", err)
		}
	}()

	w := &worker{opts: o, r: r, log: log, client: &http.Client{Timeout: 30 * time.Second}}
	log.Info("worker started", "redis", connect.Redact(o.F.Settings.RedisURL), "namespace", store.Namespace(),
		"user", o.User, "client_id", o.ClientID, "api_url", o.APIURL, "interval", o.Interval, "otel", o.OTel, "metrics_addr", o.MetricsAddr)
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	for {
		w.call(ctx)
		select {
		case <-ctx.Done():
			log.Info("worker stopped", "calls", w.calls, "ok", w.ok, "failed", w.failed)
			return nil
		case <-tick.C:
		}
	}
}

// serveMetrics serves /metrics and /healthz on o.MetricsAddr until stop.
func serveMetrics(o *Options, ep *connect.Endpoint, c *cli.Conn, metrics http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", o.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: %v", o.MetricsAddr, err) // %v: a listener's error is no Redis outage
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics)
	mux.HandleFunc(HealthPath, func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ep.Ping(ctx, c.Redis); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, err)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics server", "err", err)
		}
	}()
	if o.Ready != nil {
		o.Ready(ln.Addr().String())
	}
	return func() { _ = hs.Close() }, nil
}
