package demo

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/internal/connect"
	"github.com/tokencache/tokencache/internal/keyscan"
	"github.com/tokencache/tokencache/internal/otelsetup"
	"github.com/tokencache/tokencache/oauthtest"
	"github.com/tokencache/tokencache/redisstore"
)

// Options are the demo's settings.
type Options struct {
	F *cli.Factory

	workers            int
	goroutines         int
	baselineGoroutines int
	lifetime           time.Duration
	duration           time.Duration
	window             time.Duration // 0 until defaulted: a third of lifetime
	callInterval       time.Duration
	user               string
	otel               string

	restartRedis bool // restart the embedded Redis without persistence half way

	explicitRedis bool // --redis or its environment variable was given
}

// The demo's OAuth client. Its secret is made up for each run.
const (
	demoClientID    = "tokencache-demo"
	demoRedirectURL = "http://localhost/callback"
)

// demoWorkerWait bounds how long the demo waits for its workers after the
// run's deadline before it stops them.
const demoWorkerWait = 20 * time.Second

// NewCmdDemo returns the demo command; runF replaces Run in tests.
func NewCmdDemo(f *cli.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	o := &Options{F: f}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Show a fleet of worker processes sharing one rotating OAuth token: one refresh per expiry",
		Long: `Demo starts W worker processes (copies of this program), each with C goroutines
that keep calling an API with a token they get from tokencache, over several
short token lifetimes. The tokens live in Redis (an embedded one unless --redis
is given) and come from a local OAuth server that rotates refresh tokens and
rejects a refresh token used twice.

In the same processes and under the same load, C more goroutines per worker do
what a service without tokencache does: each worker keeps its own
golang.org/x/oauth2 ReuseTokenSource, all of them starting from the same
refresh token, against a second OAuth server of their own.

At the end a table compares the two: calls served, failed calls, token expiries,
refreshes, invalid_grant answers and the time taken to get a token. Demo exits
with status 1 if tokencache refreshed more than once per expiry or any of its
calls failed.`,
		Example: `  tokencache demo
  tokencache demo --workers 8 --goroutines 64 --duration 30s
  tokencache demo --redis redis://127.0.0.1:6379/0`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// An explicit --redis (or the environment variable) means a real
			// server; otherwise the demo brings its own.
			o.explicitRedis = cmd.Flags().Changed("redis") || os.Getenv(cli.EnvRedisURL) != ""
			if !cmd.Flags().Changed("baseline-goroutines") {
				o.baselineGoroutines = o.goroutines
			}
			if err := o.validate(); err != nil {
				return err
			}
			if o.restartRedis && o.explicitRedis {
				return cli.UsageErrorf("--restart-redis restarts the embedded Redis: it does not go with --redis")
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return Run(cmd.Context(), o)
		},
	}
	f.Settings.AddStoreFlags(cmd)
	// Without --redis the demo brings its own Redis: help says so.
	rf := cmd.Flags().Lookup("redis")
	_ = rf.Value.Set("")
	rf.DefValue = ""
	rf.Usage = "a real Redis to run on, in a namespace of the run's own (default: an embedded Redis); every --redis form works (env " + cli.EnvRedisURL + ")"
	fl := cmd.Flags()
	fl.IntVar(&o.workers, "workers", 4, "worker processes")
	fl.IntVar(&o.goroutines, "goroutines", 32, "goroutines per worker calling the API through tokencache")
	fl.IntVar(&o.baselineGoroutines, "baseline-goroutines", 32,
		"goroutines per worker calling the API through x/oauth2 ReuseTokenSource; follows --goroutines unless given; 0 skips the comparison")
	fl.DurationVar(&o.lifetime, "token-lifetime", 3*time.Second, "lifetime of the access tokens the OAuth servers issue (whole seconds, as expires_in is)")
	fl.DurationVar(&o.duration, "duration", 15*time.Second, "how long the workers make calls")
	fl.DurationVar(&o.window, "refresh-window", 0,
		"renew a token this long before it expires (default: a third of --token-lifetime; the library's 60 s would make short tokens always due)")
	fl.DurationVar(&o.callInterval, "call-interval", 20*time.Millisecond, "pause between two calls of a goroutine")
	fl.StringVar(&o.user, "user", "demo-user", "user name of the shared token")
	fl.BoolVar(&o.restartRedis, "restart-redis", false,
		"half way through, restart the embedded Redis without persistence, losing every key: without --durable the fleet loses its token; with --durable sqlite:PATH (or another record) it does not")
	fl.StringVar(&o.otel, "otel", otelsetup.None, `telemetry: "none", or "stdout" to print each worker's OpenTelemetry metrics after the table`)
	return cmd
}

func (o *Options) validate() error {
	if o.window == 0 {
		o.window = (o.lifetime / 3).Round(time.Millisecond)
	}
	switch {
	case o.workers < 1 || o.workers > 256:
		return cli.UsageErrorf("--workers %d: want 1 to 256", o.workers)
	case o.goroutines < 1 || o.goroutines > 10000:
		return cli.UsageErrorf("--goroutines %d: want 1 to 10000", o.goroutines)
	case o.baselineGoroutines < 0 || o.baselineGoroutines > 10000:
		return cli.UsageErrorf("--baseline-goroutines %d: want 0 to 10000", o.baselineGoroutines)
	case o.lifetime < time.Second || o.lifetime%time.Second != 0:
		return cli.UsageErrorf("--token-lifetime %v: want whole seconds, at least 1s (OAuth's expires_in counts whole seconds)", o.lifetime)
	case o.window < 0 || o.window >= o.lifetime:
		return cli.UsageErrorf("--refresh-window %v: want a positive duration shorter than --token-lifetime %v", o.window, o.lifetime)
	case o.duration < o.lifetime:
		return cli.UsageErrorf("--duration %v: want at least one --token-lifetime (%v), or no token expires", o.duration, o.lifetime)
	case o.callInterval < 0:
		return cli.UsageErrorf("--call-interval %v: want zero or more", o.callInterval)
	case o.user == "":
		return cli.UsageErrorf("--user is empty")
	case o.otel != otelsetup.None && o.otel != otelsetup.Stdout:
		return cli.UsageErrorf("--otel %q: want %s or %s", o.otel, otelsetup.None, otelsetup.Stdout)
	}
	return nil
}

// Run runs the demo.
func Run(ctx context.Context, o *Options) error {
	explicitRedis := o.explicitRedis
	started := time.Now()
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stderr := &lockedWriter{w: o.F.IO.ErrOut}

	// Redis: the embedded one, or the one given, with a namespace of this
	// run's own.
	settings := o.F.Settings
	redisOpts := settings.ConnectOptions()
	redisLabel := "Redis at " + connect.Redact(settings.RedisURL)
	var mr *miniredis.Miniredis
	if !explicitRedis {
		mr = miniredis.NewMiniRedis()
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			return fmt.Errorf("starting the embedded Redis: %w", err)
		}
		defer mr.Close()
		// Locks and notes expire on the wall clock, as in a real Redis.
		mr.ClockTTL(true)
		redisOpts, redisLabel = connect.Options{URL: "redis://" + mr.Addr()}, "embedded Redis (miniredis)"
	}
	rdb, _, err := o.F.OpenRedis(ctx, redisOpts)
	if err != nil {
		return err
	}
	defer rdb.Close()
	ns := demoNamespace(settings.Namespace)
	if explicitRedis {
		defer func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			n, err := keyscan.Delete(dctx, rdb, ns)
			if err != nil {
				fmt.Fprintf(stderr, "demo: deleting the keys of namespace %s: %v\n", ns, err)
				return
			}
			fmt.Fprintf(stderr, "demo: deleted the %d keys of namespace %s\n", n, ns)
		}()
	}
	storeOpts := []redisstore.Option{redisstore.WithNamespace(ns)}
	recordLabel := "no durable record"
	if settings.Durable != "" {
		rec, err := o.F.OpenDurable(ctx, settings.Durable, settings)
		if err != nil {
			return err
		}
		defer rec.Close()
		storeOpts = append(storeOpts, redisstore.WithDurableStore(rec))
		recordLabel = "a durable record (--durable)"
	}
	store := redisstore.New(rdb, storeOpts...)

	// Two OAuth servers with their own counters: one for the fleet that uses
	// tokencache, one for the baseline.
	secret := rand.Text()
	cacheSrv, err := startDemoOAuth(o.lifetime, secret)
	if err != nil {
		return err
	}
	defer cacheSrv.stop()
	baseSrv, err := startDemoOAuth(o.lifetime, secret)
	if err != nil {
		return err
	}
	defer baseSrv.stop()

	// One token for the fleet, in the store; one for the baseline, handed
	// to every worker, as if each had been configured with it.
	issued := cacheSrv.srv.IssueTokens(demoClientID, o.user)
	seed := tokencache.Token{
		UserName: o.user, ClientID: demoClientID, ClientSecret: secret, RedirectURL: demoRedirectURL,
		AccessToken: issued.AccessToken, RefreshToken: issued.RefreshToken, Expiry: issued.Expiry, APIDomain: issued.APIDomain,
	}
	if err := store.SaveToken(ctx, &seed); err != nil {
		return fmt.Errorf("saving the demo token: %w", err)
	}
	baseIssued := baseSrv.srv.IssueTokens(demoClientID, o.user)

	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this program to start the workers: %w", err)
	}
	fmt.Fprintf(stderr, "demo: %s × %d goroutines (+%d for x/oauth2), %v tokens renewed %v before expiry, %v run, %s\n",
		plural(o.workers, "worker process", "worker processes"), o.goroutines, o.baselineGoroutines, o.lifetime, o.window, o.duration, redisLabel)

	begin := time.Now()
	deadline := begin.Add(o.duration)
	fleet := &demoFleet{latest: make([]Report, o.workers), final: make([]bool, o.workers)}
	results := make(chan error, o.workers)
	for i := range o.workers {
		spec := WorkerSpec{
			Worker: i, Redis: redisOpts, Namespace: ns,
			User: o.user, ClientID: demoClientID, ClientSecret: secret,
			TokenURL: cacheSrv.srv.TokenURL(), APIURL: cacheSrv.srv.URL() + oauthtest.WhoAmIPath,
			BaselineTokenURL: baseSrv.srv.TokenURL(), BaselineAPIURL: baseSrv.srv.URL() + oauthtest.WhoAmIPath,
			BaselineAccessToken: baseIssued.AccessToken, BaselineRefreshToken: baseIssued.RefreshToken, BaselineExpiry: baseIssued.Expiry,
			Goroutines: o.goroutines, BaselineGoroutines: o.baselineGoroutines,
			Deadline: deadline, Window: o.window, CallInterval: o.callInterval, ReportInterval: 500 * time.Millisecond,
			OTel: o.otel, Durable: settings.Durable,
		}
		if err := fleet.start(ctx, exe, spec, stderr, results); err != nil {
			cancel()
			for range i {
				<-results
			}
			return err
		}
	}

	// Wait for the workers, showing progress; stop them if they outlive
	// the deadline by far.
	tty := o.F.IO.IsStderrTTY()
	every := 3 * time.Second
	if tty {
		every = 250 * time.Millisecond
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	late := time.NewTimer(time.Until(deadline) + demoWorkerWait)
	defer late.Stop()
	var restart <-chan time.Time // fires once, half way, with --restart-redis
	if o.restartRedis && mr != nil {
		restart = time.After(o.duration / 2)
	}
	restarted := false
	var errs []error
	for pending := o.workers; pending > 0; {
		select {
		case <-restart:
			// A restart without persistence: every key is gone.
			mr.FlushAll()
			mr.Close()
			if err := mr.Restart(); err != nil {
				errs = append(errs, fmt.Errorf("restarting the embedded Redis: %w", err))
				cancel()
			}
			restarted = true
			fmt.Fprintf(stderr, "\ndemo: restarted the embedded Redis without persistence at %v: every key is lost (%s)\n",
				time.Since(begin).Round(100*time.Millisecond), recordLabel)
		case err := <-results:
			pending--
			errs = append(errs, err)
			if err != nil {
				cancel() // one worker failed: stop the others
			}
		case <-tick.C:
			line := fleet.progress(time.Since(begin), o.duration, cacheSrv.srv.Stats(), baseSrv.srv.Stats(), o.baselineGoroutines > 0)
			if tty {
				fmt.Fprintf(stderr, "\r%s\x1b[K", line)
			} else {
				fmt.Fprintln(stderr, line)
			}
		case <-late.C:
			errs = append(errs, fmt.Errorf("the workers were still running %v after the end of the run; stopped them", demoWorkerWait))
			cancel()
		}
	}
	if tty {
		fmt.Fprint(stderr, "\r\x1b[K")
	}
	if parent.Err() != nil {
		return fmt.Errorf("demo interrupted after %v", time.Since(begin).Round(100*time.Millisecond))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}

	if restarted {
		redisLabel += ", restarted half way without persistence, " + recordLabel
	}
	res := demoResult{
		opts: *o, redis: redisLabel, elapsed: time.Since(started),
		cache:      fleet.total(func(r Report) demoCounts { return r.Cache }),
		base:       fleet.total(func(r Report) demoCounts { return r.Baseline }),
		cacheStats: cacheSrv.srv.Stats(), baseStats: baseSrv.srv.Stats(),
	}
	// The seeded tokens count too, also when no call saw them.
	res.cache.add(demoCounts{Tokens: map[string]int64{tokenDigest(issued.AccessToken): issued.Expiry.UnixMilli()}})
	res.base.add(demoCounts{Tokens: map[string]int64{tokenDigest(baseIssued.AccessToken): baseIssued.Expiry.UnixMilli()}})
	res.cacheExpiries = countExpiries(tokenExpiries(res.cache.Tokens), o.lifetime, o.window, deadline)
	res.baseExpiries = countExpiries(tokenExpiries(res.base.Tokens), o.lifetime, o.window, deadline)
	res.print(o.F.IO.Out)
	if o.otel == otelsetup.Stdout {
		fleet.printMetrics(o.F.IO.Out)
	}
	if problems := res.problems(); len(problems) > 0 {
		return fmt.Errorf("demo failed: %s", strings.Join(problems, "; "))
	}
	return nil
}

// demoNamespace returns a namespace no other run uses, so the demo never
// touches real tokens and two runs on one Redis never meet.
func demoNamespace(base string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	suffix := "-demo-" + hex.EncodeToString(b[:])
	if len(base)+len(suffix) > 64 {
		base = base[:64-len(suffix)]
	}
	return base + suffix
}

// demoOAuth is an oauthtest server on a loopback port.
type demoOAuth struct {
	srv   *oauthtest.Server
	close func() error
}

func startDemoOAuth(lifetime time.Duration, secret string) (*demoOAuth, error) {
	srv, stop, err := oauthtest.Listen("127.0.0.1:0",
		oauthtest.WithClient(demoClientID, secret, demoRedirectURL),
		oauthtest.WithAccessTokenLifetime(lifetime),
		oauthtest.WithRefreshMode(oauthtest.RotateRefreshToken),
	)
	if err != nil {
		return nil, fmt.Errorf("starting the demo OAuth server: %w", err)
	}
	return &demoOAuth{srv: srv, close: stop}, nil
}

func (d *demoOAuth) stop() { _ = d.close() }

// demoFleet is the worker processes' latest reports. It is safe for
// concurrent use.
type demoFleet struct {
	mu     sync.Mutex // guards the fields below
	latest []Report   // by worker
	final  []bool     // by worker: latest is the summary
}

// start starts a worker process for spec; its result (nil once it exited
// with status 0 after its summary) arrives on results.
func (f *demoFleet) start(ctx context.Context, exe string, spec WorkerSpec, stderr io.Writer, results chan<- error) error {
	cmd := exec.CommandContext(ctx, exe, "demo-worker")
	cmd.Stderr = stderr
	// On ctx's end, ask the worker to stop (it still reports), then kill it.
	cmd.Cancel = func() error {
		if runtime.GOOS == "windows" {
			return cmd.Process.Kill()
		}
		return cmd.Process.Signal(os.Interrupt)
	}
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting worker %d: %w", spec.Worker, err)
	}
	go func() {
		// stdin stays open while the worker runs: its end tells the worker
		// that the demo is gone.
		defer stdin.Close()
		werr := json.NewEncoder(stdin).Encode(spec)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		var bad int
		for sc.Scan() {
			var rep Report
			if err := json.Unmarshal(sc.Bytes(), &rep); err != nil {
				if bad++; bad == 1 {
					werr = errors.Join(werr, fmt.Errorf("it wrote what is not a report: %w", err))
				}
				continue
			}
			f.update(spec.Worker, rep)
		}
		if bad > 1 {
			werr = errors.Join(werr, fmt.Errorf("and %d more lines that are not reports", bad-1))
		}
		werr = errors.Join(werr, sc.Err(), cmd.Wait())
		f.mu.Lock()
		final := f.final[spec.Worker]
		f.mu.Unlock()
		switch {
		case werr != nil:
			results <- fmt.Errorf("worker %d: %w", spec.Worker, werr)
		case !final:
			results <- fmt.Errorf("worker %d exited without its summary", spec.Worker)
		default:
			results <- nil
		}
	}()
	return nil
}

func (f *demoFleet) update(worker int, rep Report) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.final[worker] {
		return
	}
	f.latest[worker] = rep
	f.final[worker] = rep.Kind == "summary"
}

// total adds up one side of every worker's latest report.
func (f *demoFleet) total(side func(Report) demoCounts) demoCounts {
	f.mu.Lock()
	defer f.mu.Unlock()
	var sum demoCounts
	for _, r := range f.latest {
		sum.add(side(r))
	}
	return sum
}

func (f *demoFleet) progress(elapsed, duration time.Duration, cacheStats, baseStats oauthtest.Stats, baseline bool) string {
	cache := f.total(func(r Report) demoCounts { return r.Cache })
	line := fmt.Sprintf("demo %4.1fs/%v  tokencache: %s calls, %s failed, %d refreshes",
		min(elapsed, duration).Seconds(), duration, formatCount(cache.Calls), formatCount(cache.Failed), cacheStats.Refreshes)
	if baseline {
		base := f.total(func(r Report) demoCounts { return r.Baseline })
		line += fmt.Sprintf("  x/oauth2: %s calls, %s failed, %d refreshes",
			formatCount(base.Calls), formatCount(base.Failed), baseStats.Refreshes)
	}
	return line
}

// printMetrics prints the OpenTelemetry metrics each worker sent.
func (f *demoFleet) printMetrics(w io.Writer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range f.latest {
		fmt.Fprintf(w, "\nOpenTelemetry metrics of worker %d (tokencache side):\n", i)
		for line := range strings.Lines(r.Metrics) {
			fmt.Fprint(w, "  ", line)
		}
	}
}

// demoResult is what a run measured.
type demoResult struct {
	opts                        Options
	redis                       string
	elapsed                     time.Duration
	cache, base                 demoCounts
	cacheStats, baseStats       oauthtest.Stats
	cacheExpiries, baseExpiries int
}

func perExpiry(n int64, expiries int) string {
	if expiries == 0 {
		return "-"
	}
	v := float64(n) / float64(expiries)
	if v >= 100 {
		return formatCount(int64(math.Round(v)))
	}
	return fmt.Sprintf("%.2f", v)
}

func (r *demoResult) print(w io.Writer) {
	o := r.opts
	fmt.Fprintf(w, "\ntokencache demo: %s × %d goroutines, %v access tokens renewed %v before expiry, %v of calls every %v, %s\n\n",
		plural(o.workers, "worker process", "worker processes"), o.goroutines, o.lifetime, o.window, o.duration, o.callInterval, r.redis)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tcalls served\tfailed calls\ttoken expiries\trefreshes\tinvalid_grant\trequests/expiry\ttoken p50\ttoken p99\t")
	row := func(name string, c demoCounts, st oauthtest.Stats, expiries int) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t\n", name,
			formatCount(c.Served), formatCount(c.Failed), expiries, st.Refreshes, formatCount(st.InvalidGrants),
			perExpiry(st.Requests, expiries), formatLatency(c.Latency.quantile(0.50)), formatLatency(c.Latency.quantile(0.99)))
	}
	row("tokencache (shared through Redis)", r.cache, r.cacheStats, r.cacheExpiries)
	if o.baselineGoroutines > 0 {
		row("x/oauth2 ReuseTokenSource per worker", r.base, r.baseStats, r.baseExpiries)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, `
  calls served    calls of the protected resource answered 200; failed: any other answer, or no token
  token expiries  access tokens that reached their refresh window (%v before expiry) while still
                  the newest: the renewals the run needed; a fleet should refresh at most once for each
  refreshes       refresh_token grants the side's OAuth server granted; invalid_grant: those it refused;
                  requests/expiry: every request to its token endpoint, granted or not, per expiry
  token p50/p99   time to get a token, successful calls only: refresher.Token reads Redis on every
                  call; ReuseTokenSource.Token answers from its process's memory
`, o.window)
	if o.baselineGoroutines > 0 && o.workers > 1 && r.base.Calls > 0 {
		fmt.Fprintf(w, `
  x/oauth2: the %d workers started from the same refresh token and renewed it each on their own.
  The server rotates refresh tokens, so the first worker to renew cut the others off: %s of
  their %s calls failed, after %s requests to the token endpoint.
`, o.workers, formatCount(r.base.Failed), formatCount(r.base.Calls), formatCount(r.baseStats.Requests))
	}
	verdict := "PASS: one refresh per expiry across the fleet, no failed call"
	if p := r.problems(); len(p) > 0 {
		verdict = "FAIL: " + strings.Join(p, "; ")
	}
	fmt.Fprintf(w, "\n%s (%v wall time)\n", verdict, r.elapsed.Round(100*time.Millisecond))
}

// problems lists why the run failed; nil when tokencache made at most one
// refresh per expiry and no call failed.
func (r *demoResult) problems() []string {
	var p []string
	if r.cache.Failed > 0 {
		msg := fmt.Sprintf("%d tokencache calls failed", r.cache.Failed)
		if r.cache.FirstError != "" {
			msg += " (first: " + r.cache.FirstError + ")"
		}
		p = append(p, msg)
	}
	if n := r.cacheStats.Requests; n > int64(r.cacheExpiries) {
		p = append(p, fmt.Sprintf("tokencache sent %d refresh requests for %d token expiries", n, r.cacheExpiries))
	}
	if n := r.cacheStats.InvalidGrants; n > 0 {
		p = append(p, fmt.Sprintf("the OAuth server refused %d tokencache refreshes (%d reused a rotated refresh token)", n, r.cacheStats.Reuses))
	}
	if r.cache.Calls == 0 {
		p = append(p, "no tokencache call was made")
	}
	return p
}

// plural returns "1 worker process" or "4 worker processes".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// lockedWriter serializes writes to w, which the workers' stderr and the
// progress line share.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
