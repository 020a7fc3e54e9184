package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/lock"
	"github.com/tokencache/tokencache/oauthtest"
	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/refresher"
)

func init() { register(newWorkerCmd) }

// Environment variables for the secrets of worker and oauth-server, which
// are better kept out of a command line that every local user can read.
const (
	envClientSecret = "TOKENCACHE_CLIENT_SECRET"
	envGrantCode    = "TOKENCACHE_GRANT_CODE"
	envRefreshToken = "TOKENCACHE_REFRESH_TOKEN"
)

type workerOptions struct {
	tokenURL     string
	apiURL       string
	user         string
	clientID     string
	clientSecret string
	redirectURL  string
	grantCode    string
	grantFile    string
	grantWait    time.Duration
	refreshToken string
	interval     time.Duration
	logEvery     int
	window       time.Duration
	basicAuth    bool
	otel         string
}

func newWorkerCmd(a *app) *cobra.Command {
	o := workerOptions{}
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

SIGINT or SIGTERM stops it after the call in flight.`,
		Example: `  TOKENCACHE_CLIENT_SECRET=oauthtest-secret tokencache worker \
    --redis redis://redis:6379/0 --token-url http://oauth:8080/oauth/v2/token \
    --user alice@example.com --grant-code-file /shared/grant`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runWorker(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.tokenURL, "token-url", "", `token endpoint URL, or a Zoho data centre: "us", "eu", "in", "au", "cn", "jp", "ca", "sa", "uk" (required)`)
	f.StringVar(&o.apiURL, "api-url", "", "URL to call with the token (default: the token URL's server + "+oauthtest.WhoAmIPath+", oauth-server's protected resource)")
	f.StringVar(&o.user, "user", "", "user name of the token (required)")
	f.StringVar(&o.clientID, "client-id", oauthtest.DefaultClientID, "OAuth client ID")
	f.StringVar(&o.clientSecret, "client-secret", envOr(envClientSecret, oauthtest.DefaultClientSecret), "OAuth client secret (env "+envClientSecret+", which keeps it out of the process list)")
	f.StringVar(&o.redirectURL, "redirect-url", oauthtest.DefaultRedirectURL, "redirect URL registered for the client, sent with the grant code")
	f.StringVar(&o.grantCode, "grant-code", os.Getenv(envGrantCode), "authorization code to make the first token with (env "+envGrantCode+")")
	f.StringVar(&o.grantFile, "grant-code-file", "", "file holding the authorization code (as oauth-server --grant-file writes it)")
	f.DurationVar(&o.grantWait, "grant-wait", time.Minute, "how long to wait for --grant-code-file to appear")
	f.StringVar(&o.refreshToken, "refresh-token", os.Getenv(envRefreshToken), "refresh token to make the first token with (env "+envRefreshToken+")")
	f.DurationVar(&o.interval, "interval", time.Second, "time between two calls")
	f.IntVar(&o.logEvery, "log-every", 10, "log one line every this many calls")
	f.DurationVar(&o.window, "refresh-window", refresher.DefaultRefreshWindow, "renew a token this long before it expires")
	f.BoolVar(&o.basicAuth, "basic-auth", false, "authenticate the client to the token endpoint with HTTP Basic instead of the request body")
	f.StringVar(&o.otel, "otel", defaultWorkerOTel(), `telemetry: "none"; "stdout" (metrics printed when the worker stops); "otlp" (traces to the collector the OTEL_EXPORTER_OTLP_* variables name; the default when they are set)`)
	return cmd
}

func (o *workerOptions) validate() error {
	if o.tokenURL != "" && !strings.Contains(o.tokenURL, "://") {
		u, err := refresher.ZohoTokenURL(o.tokenURL)
		if err != nil {
			return fmt.Errorf("--token-url: %w", err)
		}
		o.tokenURL = u
	}
	switch {
	case o.tokenURL == "":
		return errors.New("--token-url is required")
	case o.user == "":
		return errors.New("--user is required")
	case o.clientID == "":
		return errors.New("--client-id is empty")
	case o.interval <= 0:
		return fmt.Errorf("--interval %v: want a positive duration", o.interval)
	case o.logEvery < 1:
		return fmt.Errorf("--log-every %d: want 1 or more", o.logEvery)
	case o.window < 0:
		return fmt.Errorf("--refresh-window %v: want zero or more", o.window)
	case o.otel != otelNone && o.otel != otelStdout && o.otel != otelOTLP:
		return fmt.Errorf("--otel %q: want %s, %s or %s", o.otel, otelNone, otelStdout, otelOTLP)
	}
	if o.apiURL == "" {
		u, err := url.Parse(o.tokenURL)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return errors.New("--token-url is not an absolute URL")
		}
		o.apiURL = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: oauthtest.WhoAmIPath}).String()
	}
	return nil
}

// workerRedisClient returns a client for a redis:// or rediss:// URL.
func workerRedisClient(redisURL string) (*redis.Client, error) {
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		// The error may quote the URL, password included: say only what is wrong.
		return nil, errors.New("--redis: not a valid redis:// or rediss:// URL")
	}
	opts.ContextTimeoutEnabled = true
	return redis.NewClient(opts), nil
}

func (a *app) runWorker(ctx context.Context, o workerOptions) error {
	if err := o.validate(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(a.stderr, nil))
	rdb, err := workerRedisClient(a.redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	tel, err := newWorkerTelemetry(ctx, o.otel, a.stdout, rdb)
	if err != nil {
		return err
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tel.flush(fctx); err != nil {
			log.Warn("telemetry", "err", err)
		}
	}()
	store := redisstore.New(rdb, append(tel.storeOptions(), redisstore.WithNamespace(a.namespace))...)
	locker := lock.New(rdb, lock.WithNamespace(a.namespace))
	defer locker.Close()
	var epOpts []refresher.HTTPOption
	if o.basicAuth {
		epOpts = append(epOpts, refresher.WithBasicAuth())
	}
	r := refresher.New(store, locker, refresher.NewHTTPEndpoint(o.tokenURL, epOpts...),
		append(tel.refresherOptions(), refresher.WithRefreshWindow(o.window))...)
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
	log.Info("worker started", "redis", redactRedisURL(a.redisURL), "namespace", a.namespace,
		"user", o.user, "client_id", o.clientID, "api_url", o.apiURL, "interval", o.interval, "otel", o.otel)
	tick := time.NewTicker(o.interval)
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

// worker is the state of runWorker's loop; it is used by one goroutine.
type worker struct {
	opts   workerOptions
	r      *refresher.Refresher
	log    *slog.Logger
	client *http.Client

	query             tokencache.Token // {ID} once a token was found
	calls, ok, failed int64
	lastVersion       int64
	grantCode         string    // read from --grant-code-file
	grantUntil        time.Time // until when to wait for --grant-code-file; zero before the first wait
}

// call makes one call, unless ctx ends first.
func (w *worker) call(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tok, err := w.token(ctx)
	if err == nil {
		err = callAPI(ctx, w.client, w.opts.apiURL, tok.AccessToken)
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return
	}
	w.calls++
	if err != nil {
		w.failed++
		attrs := []any{"calls", w.calls, "failed", w.failed, "err", err}
		switch {
		case errors.Is(err, refresher.ErrInvalidGrant):
			attrs = append(attrs, "hint", "the authorization server rejected the token: the user must authorize again")
		case errors.Is(err, tokencache.ErrNotFound):
			attrs = append(attrs, "hint", "no token for this user in Redis: give --grant-code, --grant-code-file or --refresh-token")
		}
		w.log.Warn("call failed", attrs...)
		return
	}
	w.ok++
	if tok.Version != w.lastVersion && w.lastVersion != 0 {
		w.log.Info("token renewed", "token_id", tok.ID, "version", tok.Version, "expires_in", time.Until(tok.Expiry).Round(time.Second))
	}
	w.lastVersion = tok.Version
	if w.calls%int64(w.opts.logEvery) == 0 || w.calls == 1 {
		w.log.Info("calls", "calls", w.calls, "ok", w.ok, "failed", w.failed,
			"token_id", tok.ID, "version", tok.Version, "expires_in", time.Until(tok.Expiry).Round(time.Second))
	}
}

// token returns a valid token; when Redis has none for the user yet, it
// makes the first one from the grant code or refresh token, once across
// the fleet.
func (w *worker) token(ctx context.Context) (tokencache.Token, error) {
	if w.query.ID != "" {
		tok, err := w.r.Token(ctx, w.query)
		if !errors.Is(err, tokencache.ErrNotFound) {
			return tok, err
		}
		w.query = tokencache.Token{} // deleted: look it up by user again
	}
	q := tokencache.Token{UserName: w.opts.user, ClientID: w.opts.clientID}
	tok, err := w.r.Token(ctx, q)
	if errors.Is(err, tokencache.ErrNotFound) {
		q.ClientSecret, q.RedirectURL = w.opts.clientSecret, w.opts.redirectURL
		q.GrantToken, q.RefreshToken = w.bootstrapCode(ctx), w.opts.refreshToken
		if q.GrantToken == "" && q.RefreshToken == "" {
			return tokencache.Token{}, err
		}
		if q.GrantToken != "" {
			w.log.Info("no token in Redis for the user: making the first one from the grant code", "user", w.opts.user)
		} else {
			w.log.Info("no token in Redis for the user: making the first one from the refresh token", "user", w.opts.user)
		}
		tok, err = w.r.Token(ctx, q)
	}
	if err == nil {
		w.query = tokencache.Token{ID: tok.ID}
	}
	return tok, err
}

// bootstrapCode returns the grant code: --grant-code, or the content of
// --grant-code-file, waiting for the file to appear.
func (w *worker) bootstrapCode(ctx context.Context) string {
	if w.opts.grantCode != "" || w.opts.grantFile == "" {
		return w.opts.grantCode
	}
	if w.grantCode != "" {
		return w.grantCode
	}
	if w.grantUntil.IsZero() {
		w.grantUntil = time.Now().Add(w.opts.grantWait)
	}
	for {
		b, err := os.ReadFile(w.opts.grantFile)
		if code := strings.TrimSpace(string(b)); err == nil && code != "" {
			w.grantCode = code
			return code
		}
		if time.Now().After(w.grantUntil) {
			return ""
		}
		select {
		case <-ctx.Done():
			return "" // the next call waits on
		case <-time.After(500 * time.Millisecond):
		}
	}
}
