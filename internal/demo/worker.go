package demo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/oauth2"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/internal/connect"
	"github.com/tokencache/tokencache/internal/otelsetup"
	"github.com/tokencache/tokencache/internal/worker"
	"github.com/tokencache/tokencache/lock"
	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/refresher"
	"github.com/tokencache/tokencache/sqlstore"
)

// WorkerSpec is what the demo tells each worker process, as one JSON
// line on the worker's stdin. It travels on stdin rather than on the
// command line because it holds secrets (the client secret, the baseline's
// tokens, perhaps a Redis password) that any local user could read from a
// process's arguments. The worker then keeps reading stdin: end of file
// means the demo is gone, and the worker stops, so that a demo killed with
// SIGKILL leaves no worker behind.
type WorkerSpec struct {
	Worker    int             `json:"worker"`
	Redis     connect.Options `json:"redis"`
	Namespace string          `json:"namespace"`

	User         string `json:"user"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`

	// The OAuth server of the tokencache side; the token to use is in the
	// store.
	TokenURL string `json:"token_url"`
	APIURL   string `json:"api_url"`

	// The OAuth server of the baseline side, and the token every worker's
	// baseline starts from.
	BaselineTokenURL     string    `json:"baseline_token_url"`
	BaselineAPIURL       string    `json:"baseline_api_url"`
	BaselineAccessToken  string    `json:"baseline_access_token"`
	BaselineRefreshToken string    `json:"baseline_refresh_token"`
	BaselineExpiry       time.Time `json:"baseline_expiry"`

	Goroutines         int           `json:"goroutines"`
	BaselineGoroutines int           `json:"baseline_goroutines"`
	Deadline           time.Time     `json:"deadline"` // no call starts after it
	Window             time.Duration `json:"window"`
	CallInterval       time.Duration `json:"call_interval"`
	ReportInterval     time.Duration `json:"report_interval"`
	OTel               string        `json:"otel"`              // otelsetup.None or otelsetup.Stdout
	Durable            string        `json:"durable,omitempty"` // the record's DSN, or ""
}

// demoCallTimeout bounds one call (token and request) of a demo worker.
const demoCallTimeout = 10 * time.Second

// WorkerOptions are the settings of demo-worker: none but its streams; the
// rest arrives on stdin.
type WorkerOptions struct{ F *cli.Factory }

// NewCmdDemoWorker returns the hidden demo-worker command that the demo
// starts as its worker processes.
func NewCmdDemoWorker(f *cli.Factory, runF func(context.Context, *WorkerOptions) error) *cobra.Command {
	o := &WorkerOptions{F: f}
	return &cobra.Command{
		Use:    "demo-worker",
		Short:  "One worker process of the demo (started by tokencache demo; reads its settings from stdin)",
		Hidden: true,
		Args:   cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return RunWorker(cmd.Context(), o)
		},
	}
}

// RunWorker runs one demo worker process.
func RunWorker(ctx context.Context, o *WorkerOptions) error {
	in := bufio.NewReader(o.F.IO.In)
	line, err := in.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("demo-worker: reading the settings from stdin: %w", err)
	}
	var spec WorkerSpec
	if err := json.Unmarshal(line, &spec); err != nil {
		return fmt.Errorf("demo-worker: the settings on stdin are not valid JSON: %w", err)
	}
	if spec.Goroutines < 0 || spec.BaselineGoroutines < 0 || spec.Window < 0 || spec.CallInterval < 0 || spec.ReportInterval <= 0 {
		return errors.New("demo-worker: the settings on stdin have a negative count or duration")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		// The demo holds stdin open while it runs.
		_, _ = io.Copy(io.Discard, in)
		cancel()
	}()

	rdb, _, err := connect.Open(ctx, spec.Redis)
	if err != nil {
		return fmt.Errorf("demo-worker: %w", err)
	}
	defer rdb.Close()
	if spec.OTel == "" {
		spec.OTel = otelsetup.None
	}
	var metrics bytes.Buffer
	tel, err := otelsetup.New(ctx, otelsetup.Config{Mode: spec.OTel, MetricsOut: &metrics}, rdb)
	if err != nil {
		return fmt.Errorf("demo-worker: %w", err)
	}
	storeOpts := append(tel.StoreOptions(), redisstore.WithNamespace(spec.Namespace))
	if spec.Durable != "" {
		rec, err := sqlstore.Open(ctx, spec.Durable)
		if err != nil {
			return fmt.Errorf("demo-worker: the durable record: %w", err)
		}
		defer rec.Close()
		storeOpts = append(storeOpts, redisstore.WithDurableStore(rec))
	}
	store := redisstore.New(rdb, storeOpts...)
	locker := lock.New(rdb, lock.WithNamespace(spec.Namespace))
	defer locker.Close()
	r := refresher.New(store, locker, refresher.NewHTTPEndpoint(spec.TokenURL),
		append(tel.RefresherOptions(), refresher.WithRefreshWindow(spec.Window))...)
	defer r.Close()

	w := &demoWorker{spec: spec, out: json.NewEncoder(o.F.IO.Out)}
	cache := &demoSide{keepErrors: true, lat: newLatencyHist(), tokens: map[string]int64{}}
	base := &demoSide{lat: newLatencyHist(), tokens: map[string]int64{}}
	w.cache, w.base = cache, base

	query := tokencache.Token{UserName: spec.User, ClientID: spec.ClientID}
	cacheToken := func(ctx context.Context) (string, time.Time, error) {
		t, err := r.Token(ctx, query)
		return t.AccessToken, t.Expiry, err
	}
	baseSource := newDemoBaselineSource(ctx, spec)
	baseToken := func(context.Context) (string, time.Time, error) {
		t, err := baseSource.Token()
		if err != nil {
			return "", time.Time{}, err
		}
		return t.AccessToken, t.Expiry, nil
	}

	var wg sync.WaitGroup
	cacheClient, baseClient := demoHTTPClient(spec.Goroutines), demoHTTPClient(spec.BaselineGoroutines)
	for range spec.Goroutines {
		wg.Go(func() { cache.loop(ctx, spec, cacheClient, spec.APIURL, cacheToken) })
	}
	for range spec.BaselineGoroutines {
		wg.Go(func() { base.loop(ctx, spec, baseClient, spec.BaselineAPIURL, baseToken) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	tick := time.NewTicker(spec.ReportInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if err := w.report("progress"); err != nil {
				cancel() // the demo stopped reading: stop
			}
		case <-done:
			if err := tel.Flush(context.WithoutCancel(ctx)); err != nil {
				fmt.Fprintf(o.F.IO.ErrOut, "demo-worker %d: telemetry: %v\n", spec.Worker, err)
			}
			w.metrics = metrics.String()
			return w.report("summary")
		}
	}
}

type demoWorker struct {
	spec        WorkerSpec
	cache, base *demoSide
	metrics     string // the telemetry's metrics as text, for the summary

	mu  sync.Mutex // guards out
	out *json.Encoder
}

func (w *demoWorker) report(kind string) error {
	rep := Report{Kind: kind, Worker: w.spec.Worker, Cache: w.cache.counts(kind == "summary"), Baseline: w.base.counts(kind == "summary")}
	if kind == "summary" {
		rep.Metrics = w.metrics
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.Encode(rep)
}

// demoSide is one side of a worker, tokencache or the baseline: its
// goroutines' loops and what they counted. It is safe for concurrent use.
type demoSide struct {
	keepErrors bool // its errors are safe to report: tokencache's never carry a secret

	calls, served, failed, tokenErrors, invalidGrant, unauthorized atomic.Int64

	mu       sync.Mutex // guards the fields below
	firstErr string
	lat      *latencyHist
	tokens   map[string]int64 // digest of each access token handed out -> expiry (Unix ms)
}

func (s *demoSide) counts(full bool) demoCounts {
	c := demoCounts{
		Calls: s.calls.Load(), Served: s.served.Load(), Failed: s.failed.Load(),
		TokenErrors: s.tokenErrors.Load(), InvalidGrant: s.invalidGrant.Load(), Unauthorized: s.unauthorized.Load(),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c.FirstError = s.firstErr
	if full {
		c.Latency = &latencyHist{Buckets: make(map[int]int64, len(s.lat.Buckets))}
		c.Latency.merge(s.lat)
		c.Tokens = make(map[string]int64, len(s.tokens))
		for k, v := range s.tokens {
			c.Tokens[k] = v
		}
	}
	return c
}

func (s *demoSide) fail(err error) {
	s.failed.Add(1)
	if !s.keepErrors {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.firstErr == "" {
		s.firstErr = err.Error()
	}
}

// loop makes calls until the deadline: a token, then a request to the
// protected resource with it, then a pause. A call that ctx's end
// interrupts is not counted.
func (s *demoSide) loop(ctx context.Context, spec WorkerSpec, client *http.Client, apiURL string,
	token func(context.Context) (string, time.Time, error)) {
	var last string // the access token this goroutine last recorded
	// Start at a random point of the first interval, so that the
	// goroutines do not call in lockstep.
	pause := time.NewTimer(rand.N(spec.CallInterval + 1))
	defer pause.Stop()
	for time.Now().Before(spec.Deadline) {
		select {
		case <-ctx.Done():
			return
		case <-pause.C:
		}
		if !time.Now().Before(spec.Deadline) {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, demoCallTimeout)
		s.call(cctx, client, apiURL, token, &last)
		cancel()
		if ctx.Err() != nil {
			return
		}
		pause.Reset(spec.CallInterval)
	}
}

func (s *demoSide) call(ctx context.Context, client *http.Client, apiURL string,
	token func(context.Context) (string, time.Time, error), last *string) {
	start := time.Now()
	access, expiry, err := token(ctx)
	took := time.Since(start)
	if err == nil {
		s.mu.Lock()
		s.lat.record(took)
		if access != *last {
			s.tokens[tokenDigest(access)] = expiry.UnixMilli()
		}
		s.mu.Unlock()
		*last = access
		err = worker.CallAPI(ctx, client, apiURL, access)
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return // the worker was stopped: interrupted, not failed
	}
	s.calls.Add(1)
	var re *oauth2.RetrieveError
	switch {
	case err == nil:
		s.served.Add(1)
		return
	case errors.Is(err, worker.ErrUnauthorized):
		s.unauthorized.Add(1)
	case access == "":
		s.tokenErrors.Add(1)
		if errors.Is(err, refresher.ErrInvalidGrant) || errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			s.invalidGrant.Add(1)
		}
	}
	s.fail(err)
}

// demoHTTPClient returns a client for the protected resource that keeps a
// connection per goroutine: http.DefaultTransport keeps two, and thousands
// of calls a second would each open a new one.
func demoHTTPClient(goroutines int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = goroutines + 2
	return &http.Client{Transport: tr, Timeout: demoCallTimeout}
}

// newDemoBaselineSource returns what a worker without tokencache uses: an
// x/oauth2 ReuseTokenSource, shared by the worker's goroutines and nobody
// else, over a source that refreshes with the refresh token it holds. It
// renews the token the same time before expiry as tokencache does (x/oauth2's
// own default of 10 s would renew 3 s tokens on every call), and sends the
// client credentials in the body, as tokencache does, instead of letting
// x/oauth2 guess, which would repeat a failed request in the other style.
func newDemoBaselineSource(ctx context.Context, spec WorkerSpec) oauth2.TokenSource {
	cfg := &oauth2.Config{
		ClientID:     spec.ClientID,
		ClientSecret: spec.ClientSecret,
		Endpoint:     oauth2.Endpoint{TokenURL: spec.BaselineTokenURL, AuthStyle: oauth2.AuthStyleInParams},
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Timeout: demoCallTimeout})
	first := &oauth2.Token{
		AccessToken: spec.BaselineAccessToken, RefreshToken: spec.BaselineRefreshToken,
		TokenType: "Bearer", Expiry: spec.BaselineExpiry,
	}
	return oauth2.ReuseTokenSourceWithExpiry(first, &demoRefreshSource{ctx: ctx, cfg: cfg, refresh: spec.BaselineRefreshToken}, spec.Window)
}

// demoRefreshSource makes one refresh_token grant per Token call and keeps
// the rotated refresh token. ReuseTokenSource calls it under its own lock.
type demoRefreshSource struct {
	ctx context.Context // oauth2.TokenSource has no context of its own
	cfg *oauth2.Config

	mu      sync.Mutex
	refresh string // guarded by mu
}

func (s *demoRefreshSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A source over a token without an access token always refreshes.
	t, err := s.cfg.TokenSource(s.ctx, &oauth2.Token{RefreshToken: s.refresh}).Token()
	if err != nil {
		return nil, err
	}
	if t.RefreshToken != "" {
		s.refresh = t.RefreshToken
	}
	return t, nil
}
