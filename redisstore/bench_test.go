package redisstore_test

// Benchmarks of the Redis store, each against a raw go-redis HGETALL of a
// token hash measured in the same run, so that the figures are ratios that
// survive a shared, noisy machine. They use miniredis unless REDIS_URL (or
// TOKENCACHE_CLUSTER_ADDRS) names a real server; see BENCHMARKS.md for the
// commands and the results. With REDIS_URL=redis://127.0.0.1:6379/0:
//
//	go test -run '^$' -bench . -benchmem ./redisstore/
//	TOKENCACHE_BENCH_RATIOS=1 go test -count=1 -run TestBenchmarkRatios -v ./redisstore/
//	TOKENCACHE_BENCH_100K=1 go test -count=1 -run TestMemoryPerToken -v -timeout 20m ./redisstore/
//	TOKENCACHE_BENCH_100K=1 go test -run '^$' -bench GetTokens100k -benchtime 3x -timeout 20m ./redisstore/
//
// The first gives ns/op of each case in isolation, which a loaded machine
// skews from one sub-benchmark to the next; the ratios and the targets come
// from TestBenchmarkRatios. Every namespace used is deleted afterwards.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/redisstore"
)

// Environment variables that turn on the heavy or slow measurements.
const (
	envRatios = "TOKENCACHE_BENCH_RATIOS" // TestBenchmarkRatios
	envBig    = "TOKENCACHE_BENCH_100K"   // BenchmarkGetTokens100k, TestMemoryPerToken
	envRounds = "TOKENCACHE_BENCH_ROUNDS" // rounds of TestBenchmarkRatios, default 5
)

const (
	lookupTokens    = 1000    // tokens the lookup benchmarks cycle through
	bigTokens       = 100_000 // tokens of the GetTokens and memory measurements
	populateWorkers = 32      // goroutines calling SaveToken while populating
	parallelism     = 4       // goroutines per GOMAXPROCS in the Parallel cases
	maxTokenBytes   = 1024    // target: Redis memory per token, index entries included
)

// Targets, as fractions of the throughput of a raw HGETALL of the same hash.
const (
	targetByID  = 0.80
	targetIndex = 0.45
)

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randString returns n random characters of alphabet.
func randString(n int, alphabet string) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rand.IntN(len(alphabet))]
	}
	return string(b)
}

// app is one OAuth client: the tokens of a fleet share its credentials.
type app struct {
	clientID     string
	clientSecret string
}

func newApp() app {
	return app{
		clientID:     "1000." + randString(30, alnum[:26]+alnum[52:]), // 35 characters, like Zoho's
		clientSecret: randString(42, alnum),
	}
}

// token returns a realistic token for user n: 70-character access and
// refresh tokens, distinct per call, valid for an hour, no grant token.
func (a app) token(n int64) tokencache.Token {
	return tokencache.Token{
		UserName:     "user-" + strconv.FormatInt(n, 10) + "@example.com",
		ClientID:     a.clientID,
		ClientSecret: a.clientSecret,
		AccessToken:  randString(70, alnum),
		RefreshToken: randString(70, alnum),
		Expiry:       time.Now().Add(time.Hour),
		RedirectURL:  "https://app.example.com/oauth/callback",
		APIDomain:    "https://www.zohoapis.com",
	}
}

// populate saves n new tokens for users first … first+n-1 with
// populateWorkers goroutines and returns how long it took.
func populate(tb testing.TB, store *redisstore.Store, a app, first int64, n int) time.Duration {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	start := time.Now()
	for range populateWorkers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n) && ctx.Err() == nil; i = next.Add(1) - 1 {
				t := a.token(first + i)
				if err := store.SaveToken(ctx, &t); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		tb.Fatalf("populating %d tokens: %v", n, firstErr)
	}
	return time.Since(start)
}

// cleanUp deletes the store's tokens when the test ends and checks that no
// key of the namespace is left: a benchmark leaves nothing behind in a
// shared Redis. A survivor fails the test on a real server. On miniredis it
// is only logged, and DeleteTokens repeated: miniredis's SSCAN cursor is an
// offset into the sorted members, so the members DeleteTokens removes shift
// the rest under the cursor and one call deletes only its first batch.
func cleanUp(tb testing.TB, tg *redistest.Target, rdb redis.UniversalClient, store *redisstore.Store) {
	tb.Cleanup(func() {
		ns := store.Namespace()
		before := -1
		for call := 1; ; call++ {
			if err := store.DeleteTokens(context.Background()); err != nil {
				tb.Errorf("DeleteTokens: %v", err)
				return
			}
			left := redistest.Keys(tb, rdb, ns+":")
			if len(left) == 0 {
				return
			}
			msg := fmt.Sprintf("%d keys of namespace %s survived DeleteTokens call %d: %s", len(left), ns, call, countKinds(ns, left))
			if tg.Kind != redistest.Mini {
				tb.Error(msg)
			} else if call == 1 {
				tb.Log(msg + " (miniredis SSCAN; calling DeleteTokens again)")
			}
			if len(left) == before {
				tb.Errorf("DeleteTokens makes no progress: %s", msg)
				return
			}
			before = len(left)
		}
	})
}

// countKinds summarizes keys of namespace ns by kind, such as "3 index u:".
func countKinds(ns string, keys []string) string {
	n := map[string]int{}
	for _, k := range keys {
		n[keyKind(ns, k)]++
	}
	var parts []string
	for _, kind := range slices.Sorted(maps.Keys(n)) {
		parts = append(parts, fmt.Sprintf("%d %s", n[kind], kind))
	}
	return strings.Join(parts, ", ")
}

// op is one operation of a sequential case; i counts its calls.
type op func(ctx context.Context, i int) error

// benchCase is one thing to measure: a sequential op, or a whole
// RunParallel benchmark.
type benchCase struct {
	name     string
	op       op
	parallel func(b *testing.B)
}

// bench returns the benchmark function of c: op in a b.Loop, one call at a
// time, so that ns/op is the latency of one call.
func (c benchCase) bench() func(b *testing.B) {
	if c.parallel != nil {
		return c.parallel
	}
	return func(b *testing.B) {
		ctx := context.Background()
		i := 0
		for b.Loop() {
			if err := c.op(ctx, i); err != nil {
				b.Fatalf("%s: %v", c.name, err)
			}
			i++
		}
	}
}

// paired returns a benchmark that alternates base and c one call at a time
// (swapping which goes first on every iteration) and times every call, so
// that both meet the same machine at the same moment: the noise of a shared
// machine falls on both alike. It reports their mean latencies as
// base-ns/op and case-ns/op.
func paired(base, c benchCase) func(b *testing.B) {
	return func(b *testing.B) {
		ctx := context.Background()
		var baseNs, caseNs time.Duration
		i := 0
		timed := func(c benchCase) time.Duration {
			start := time.Now()
			if err := c.op(ctx, i); err != nil {
				b.Fatalf("%s: %v", c.name, err)
			}
			return time.Since(start)
		}
		for b.Loop() {
			if i%2 == 0 {
				baseNs += timed(base)
				caseNs += timed(c)
			} else {
				caseNs += timed(c)
				baseNs += timed(base)
			}
			i++
		}
		b.ReportMetric(float64(baseNs.Nanoseconds())/float64(i), "base-ns/op")
		b.ReportMetric(float64(caseNs.Nanoseconds())/float64(i), "case-ns/op")
	}
}

// lookupFixture holds lookupTokens saved tokens and the stores that read them.
type lookupFixture struct {
	rdb     redis.UniversalClient
	store   *redisstore.Store // hints on (the default), warmed by the saves
	noHints *redisstore.Store // same namespace, WithHintCacheSize(0)
	tokens  []tokencache.Token
	hashes  []string // store.HashKey of each token
}

func newLookupFixture(tb testing.TB, tg *redistest.Target) *lookupFixture {
	tb.Helper()
	rdb := tg.Client(tb)
	ns := redistest.Namespace(tb)
	f := &lookupFixture{
		rdb:     rdb,
		store:   redisstore.New(rdb, redisstore.WithNamespace(ns)),
		noHints: redisstore.New(rdb, redisstore.WithNamespace(ns), redisstore.WithHintCacheSize(0)),
	}
	cleanUp(tb, tg, rdb, f.store)
	a := newApp()
	ctx := context.Background()
	for i := range lookupTokens {
		t := a.token(int64(i))
		if err := f.store.SaveToken(ctx, &t); err != nil {
			tb.Fatalf("saving token %d: %v", i, err)
		}
		f.tokens = append(f.tokens, t)
		f.hashes = append(f.hashes, f.store.HashKey(t.ID))
	}
	return f
}

// rawHGETALL is the baseline: go-redis HGETALL of a token's own hash.
func (f *lookupFixture) rawHGETALL(ctx context.Context, i int) error {
	m, err := f.rdb.HGetAll(ctx, f.hashes[i%len(f.hashes)]).Result()
	if err == nil && len(m) == 0 {
		err = errors.New("empty hash")
	}
	return err
}

// find returns an op that looks up a token with fn. It starts half way
// through the tokens, so that a paired baseline call does not warm the
// very hash it reads next.
func (f *lookupFixture) find(fn func(ctx context.Context, t tokencache.Token) (tokencache.Token, error)) op {
	return func(ctx context.Context, i int) error {
		want := f.tokens[(i+len(f.tokens)/2)%len(f.tokens)]
		got, err := fn(ctx, want)
		if err == nil && got.ID != want.ID {
			err = fmt.Errorf("found token %q, want %q", got.ID, want.ID)
		}
		return err
	}
}

func (f *lookupFixture) byID(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	return f.store.FindTokenByID(ctx, t.ID)
}

func (f *lookupFixture) byUser(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	return f.store.FindToken(ctx, tokencache.Token{UserName: t.UserName, ClientID: t.ClientID})
}

func (f *lookupFixture) byAccessToken(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	return f.store.FindToken(ctx, tokencache.Token{AccessToken: t.AccessToken})
}

func (f *lookupFixture) byUserNoHints(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	return f.noHints.FindToken(ctx, tokencache.Token{UserName: t.UserName, ClientID: t.ClientID})
}

func (f *lookupFixture) byAccessTokenNoHints(ctx context.Context, t tokencache.Token) (tokencache.Token, error) {
	return f.noHints.FindToken(ctx, tokencache.Token{AccessToken: t.AccessToken})
}

// parallel returns a RunParallel benchmark of o with
// parallelism×GOMAXPROCS calls in flight: throughput, not latency.
func parallel(name string, o op) func(b *testing.B) {
	return func(b *testing.B) {
		b.SetParallelism(parallelism)
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			i := rand.IntN(lookupTokens)
			for pb.Next() {
				if err := o(ctx, i); err != nil {
					b.Errorf("%s: %v", name, err)
					return
				}
				i++
			}
		})
	}
}

func (f *lookupFixture) cases() []benchCase {
	return []benchCase{
		{name: "RawHGETALL", op: f.rawHGETALL},
		{name: "FindTokenByID", op: f.find(f.byID)},
		{name: "FindTokenByUser", op: f.find(f.byUser)},
		{name: "FindTokenByAccessToken", op: f.find(f.byAccessToken)},
		{name: "FindTokenByUserNoHints", op: f.find(f.byUserNoHints)},
		{name: "FindTokenByAccessTokenNoHints", op: f.find(f.byAccessTokenNoHints)},
		{name: "Parallel/RawHGETALL", parallel: parallel("HGETALL", f.rawHGETALL)},
		{name: "Parallel/FindTokenByID", parallel: parallel("FindTokenByID", f.find(f.byID))},
	}
}

// BenchmarkLookup measures the lookups and their baseline in one run.
func BenchmarkLookup(b *testing.B) {
	f := newLookupFixture(b, redistest.New(b))
	for _, c := range f.cases() {
		b.Run(c.name, c.bench())
	}
}

// saveFixture holds the tokens that the save benchmarks insert and update.
type saveFixture struct {
	app     app
	inserts *redisstore.Store // its own Store, so that its hints do not crowd out the others'
	store   *redisstore.Store
	byID    tokencache.Token // updated by ID, Version 0
	byUser  tokencache.Token // updated by user name, Version 0
	cas     tokencache.Token // updated by ID with the Version it last saved
	prefix  string           // 60 random characters; tokens add a 10-digit sequence
	seq     atomic.Int64
}

func newSaveFixture(tb testing.TB, tg *redistest.Target) *saveFixture {
	tb.Helper()
	rdb := tg.Client(tb)
	ns := redistest.Namespace(tb)
	f := &saveFixture{
		app:     newApp(),
		inserts: redisstore.New(rdb, redisstore.WithNamespace(ns)),
		store:   redisstore.New(rdb, redisstore.WithNamespace(ns)),
		prefix:  randString(60, alnum),
	}
	cleanUp(tb, tg, rdb, f.store)
	ctx := context.Background()
	for i, t := range []*tokencache.Token{&f.byID, &f.byUser, &f.cas} {
		*t = f.app.token(int64(i))
		if err := f.store.SaveToken(ctx, t); err != nil {
			tb.Fatalf("saving token %d: %v", i, err)
		}
	}
	return f
}

// secret returns a new 70-character token value, cheaply.
func (f *saveFixture) secret() string {
	return fmt.Sprintf("%s%010d", f.prefix, f.seq.Add(1))
}

// insert saves the token of a new user.
func (f *saveFixture) insert(ctx context.Context, _ int) error {
	t := f.app.token(0)
	t.UserName = "insert-" + strconv.FormatInt(f.seq.Add(1), 10) + "@example.com"
	t.AccessToken, t.RefreshToken = f.secret(), f.secret()
	if err := f.inserts.SaveToken(ctx, &t); err != nil {
		return err
	}
	if t.Version != 1 {
		return fmt.Errorf("new token has version %d", t.Version)
	}
	return nil
}

// update returns an op that saves *t with a new access token; keepID and
// keepVersion choose how the save finds the stored token.
func (f *saveFixture) update(t *tokencache.Token, keepID, keepVersion bool) op {
	id := t.ID
	return func(ctx context.Context, _ int) error {
		t.AccessToken = f.secret()
		if !keepID {
			t.ID = ""
		}
		if !keepVersion {
			t.Version = 0
		}
		if err := f.store.SaveToken(ctx, t); err != nil {
			return err
		}
		if t.ID != id {
			return fmt.Errorf("saved as token %q, want %q", t.ID, id)
		}
		return nil
	}
}

func (f *saveFixture) cases() []benchCase {
	return []benchCase{
		{name: "Insert", op: f.insert},
		{name: "Update", op: f.update(&f.byID, true, false)},
		{name: "UpdateByUser", op: f.update(&f.byUser, false, false)},
		{name: "UpdateCAS", op: f.update(&f.cas, true, true)},
	}
}

// BenchmarkSave measures inserts and updates with the HGETALL baseline in
// one run.
func BenchmarkSave(b *testing.B) {
	tg := redistest.New(b)
	lf := newLookupFixture(b, tg)
	sf := newSaveFixture(b, tg)
	b.Run("RawHGETALL", lf.cases()[0].bench())
	for _, c := range sf.cases() {
		b.Run(c.name, c.bench())
	}
}

// ratioRow is one line of TestBenchmarkRatios: a case and its baseline.
type ratioRow struct {
	c, baseline benchCase
	target      float64 // 0: none
	enforce     bool    // fail below target on a real standalone Redis
}

// TestBenchmarkRatios measures every case against the raw HGETALL
// baseline in the same run and reports, per case, the median over rounds
// of its latency and of the throughput ratio (case ops/s ÷ baseline ops/s).
// A sequential case runs interleaved with the baseline call by call (see
// paired); the RunParallel case runs right after its RunParallel baseline.
// On a real standalone Redis it fails when a ratio misses its target; on
// miniredis it only reports. It is the project's benchmark command:
//
//	REDIS_URL=redis://127.0.0.1:6379/0 TOKENCACHE_BENCH_RATIOS=1 go test -count=1 -run TestBenchmarkRatios -v ./redisstore/
//
// (-count=1 because go test would otherwise replay a cached result.)
func TestBenchmarkRatios(t *testing.T) {
	if os.Getenv(envRatios) != "1" {
		t.Skipf("set %s=1 to measure benchmark ratios (REDIS_URL=... for the real server)", envRatios)
	}
	rounds := 5
	if v := os.Getenv(envRounds); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive integer", envRounds, v)
		}
		rounds = n
	}
	tg := redistest.New(t)
	lf := newLookupFixture(t, tg)
	sf := newSaveFixture(t, tg)
	lookups := lf.cases()
	base, parBase := lookups[0], lookups[6]
	rows := []ratioRow{
		{lookups[1], base, targetByID, true},
		{lookups[2], base, targetIndex, true},
		{lookups[3], base, targetIndex, true},
		{lookups[4], base, targetIndex, false},
		{lookups[5], base, targetIndex, false},
		{lookups[7], parBase, targetByID, false},
	}
	for _, c := range sf.cases() {
		rows = append(rows, ratioRow{c: c, baseline: base})
	}

	bench := func(name string, fn func(b *testing.B)) testing.BenchmarkResult {
		r := testing.Benchmark(fn)
		if r.N == 0 {
			t.Fatalf("%s: the benchmark failed (run it with go test -bench to see why)", name)
		}
		return r
	}
	nsPerOp := func(r testing.BenchmarkResult) float64 { return float64(r.T.Nanoseconds()) / float64(r.N) }
	type samples struct{ ns, baseNs, ratio []float64 }
	got := make([]samples, len(rows))
	for round := range rounds {
		for i, row := range rows {
			var b, c float64
			if row.c.parallel != nil {
				b = nsPerOp(bench(row.baseline.name, row.baseline.bench()))
				c = nsPerOp(bench(row.c.name, row.c.bench()))
			} else {
				r := bench(row.c.name, paired(row.baseline, row.c))
				b, c = r.Extra["base-ns/op"], r.Extra["case-ns/op"]
			}
			got[i].baseNs = append(got[i].baseNs, b)
			got[i].ns = append(got[i].ns, c)
			got[i].ratio = append(got[i].ratio, b/c)
		}
		t.Logf("round %d of %d done", round+1, rounds)
	}

	enforce := tg.Kind == redistest.Standalone
	var out strings.Builder
	fmt.Fprintf(&out, "server: %s, GOMAXPROCS %d, %d rounds, medians; ratio = case ops/s ÷ baseline ops/s\n",
		tg.Kind, runtime.GOMAXPROCS(0), rounds)
	w := tabwriter.NewWriter(&out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "case\tns/op\tops/s\tbaseline ns/op\tratio\tmin–max\ttarget\tverdict\t")
	for i, row := range rows {
		s := got[i]
		ns, bns, ratio := median(s.ns), median(s.baseNs), median(s.ratio)
		verdict, target := "", "—"
		if row.target > 0 {
			target = fmt.Sprintf("≥ %.2f", row.target)
			verdict = "pass"
			if ratio < row.target {
				verdict = "FAIL"
			}
			if !row.enforce || !enforce {
				verdict += " (info)"
			}
		}
		fmt.Fprintf(w, "%s\t%.0f\t%.0f\t%.0f\t%.3f\t%.3f–%.3f\t%s\t%s\t\n",
			row.c.name, ns, 1e9/ns, bns, ratio, slices.Min(s.ratio), slices.Max(s.ratio), target, verdict)
	}
	_ = w.Flush()
	t.Log("\n" + out.String())

	if !enforce {
		t.Logf("targets not enforced on %s: only a real standalone Redis (REDIS_URL) is checked", tg.Kind)
		return
	}
	for i, row := range rows {
		if r := median(got[i].ratio); row.enforce && r < row.target {
			t.Errorf("%s: %.3f× the throughput of a raw HGETALL, target ≥ %.2f×", row.c.name, r, row.target)
		}
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// heapObjects is the Go heap in live and not yet swept objects.
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// peakSampler records the largest heapObjects seen between start and stop.
type peakSampler struct {
	stop, done chan struct{}
	peak       uint64
}

func startPeakSampler(every time.Duration) *peakSampler {
	p := &peakSampler{stop: make(chan struct{}), done: make(chan struct{}), peak: heapObjects()}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
				p.peak = max(p.peak, heapObjects())
			}
		}
	}()
	return p
}

func (p *peakSampler) Stop() uint64 {
	close(p.stop)
	<-p.done
	return max(p.peak, heapObjects())
}

const mib = 1 << 20

// BenchmarkGetTokens100k times GetTokens over 100,000 tokens and samples
// the Go heap every millisecond while it runs. It also reports how long
// populating (populateWorkers goroutines calling SaveToken) and the final
// DeleteTokens took. Heavy: it runs only with TOKENCACHE_BENCH_100K=1, and
// only on a real Redis.
func BenchmarkGetTokens100k(b *testing.B) {
	if os.Getenv(envBig) != "1" {
		b.Skipf("set %s=1 to run the 100,000-token benchmark", envBig)
	}
	tg := redistest.New(b)
	if tg.Kind == redistest.Mini {
		// redistest turns on miniredis's ClockTTL, which sorts every key on
		// every command: 100,000 tokens would take hours.
		b.Skipf("needs a real Redis (%s or %s): miniredis with ClockTTL is O(keys) per command", redistest.EnvURL, redistest.EnvClusterAddrs)
	}
	rdb := tg.Client(b)
	store := redisstore.New(rdb, redisstore.WithNamespace(redistest.Namespace(b)))
	ctx := context.Background()
	deleted := false
	b.Cleanup(func() {
		if !deleted {
			_ = store.DeleteTokens(context.Background())
		}
	})
	// b.Loop runs this body once per -count, so each count populates its
	// own namespace once.
	took := populate(b, store, newApp(), 0, bigTokens)

	var n int
	var before, peak, result uint64
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		h0 := heapObjects()
		ps := startPeakSampler(time.Millisecond)
		b.StartTimer()
		toks, err := store.GetTokens(ctx)
		b.StopTimer()
		p := ps.Stop()
		if err != nil {
			b.Fatalf("GetTokens: %v", err)
		}
		n = len(toks)
		runtime.GC()
		h1 := heapObjects()
		r := h1 - min(h1, h0)
		runtime.KeepAlive(toks)
		before, peak, result = max(before, h0), max(peak, p), max(result, r)
		b.StartTimer()
	}
	if n != bigTokens {
		b.Errorf("GetTokens returned %d tokens, want %d", n, bigTokens)
	}
	b.ReportMetric(float64(n), "tokens")
	b.ReportMetric(float64(peak)/mib, "peak-heap-MiB")
	b.ReportMetric(float64(peak-min(peak, before))/mib, "peak-delta-MiB")
	b.ReportMetric(float64(result)/mib, "result-MiB")
	b.ReportMetric(took.Seconds(), "populate-s")

	start := time.Now()
	if err := store.DeleteTokens(ctx); err != nil {
		b.Fatalf("DeleteTokens: %v", err)
	}
	deleted = true
	b.ReportMetric(time.Since(start).Seconds(), "delete-s")
	if left := redistest.Keys(b, rdb, store.Namespace()+":"); len(left) > 0 {
		b.Errorf("%d keys of the namespace survived DeleteTokens: %s", len(left), countKinds(store.Namespace(), left))
	}
}

// keyKind names what a key of namespace ns holds, for the memory breakdown.
func keyKind(ns, key string) string {
	rest := strings.TrimPrefix(key, ns+":")
	if rest == "ids" {
		return "ids set"
	}
	switch kind, _, _ := strings.Cut(rest, ":"); kind {
	case "t":
		return "hash t:"
	case "u", "g", "r", "a":
		return "index " + kind + ":"
	default:
		return "other"
	}
}

// usedMemory is INFO memory's used_memory.
func usedMemory(tb testing.TB, rdb redis.UniversalClient) int64 {
	tb.Helper()
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		tb.Fatalf("INFO memory: %v", err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				tb.Fatalf("INFO memory: used_memory %q: %v", v, err)
			}
			return n
		}
	}
	tb.Fatalf("INFO memory has no used_memory")
	return 0
}

// TestMemoryPerToken stores 100,000 tokens and measures what Redis spends
// per token: the sum of MEMORY USAGE over the namespace's keys (hash, index
// entries, share of the ID set), and the growth of used_memory, which also
// counts the expires table and the key dictionaries. It needs a real
// standalone Redis (miniredis has no MEMORY USAGE) and
// TOKENCACHE_BENCH_100K=1.
func TestMemoryPerToken(t *testing.T) {
	if os.Getenv(envBig) != "1" {
		t.Skipf("set %s=1 and REDIS_URL to measure Redis memory per token", envBig)
	}
	if os.Getenv(redistest.EnvURL) == "" || os.Getenv(redistest.EnvClusterAddrs) != "" {
		t.Skipf("needs a real standalone Redis at %s: miniredis has no MEMORY USAGE", redistest.EnvURL)
	}
	tg := redistest.New(t)
	rdb := tg.Client(t)
	ns := redistest.Namespace(t)
	store := redisstore.New(rdb, redisstore.WithNamespace(ns))
	ctx := context.Background()
	deleted := false
	t.Cleanup(func() {
		if !deleted {
			_ = store.DeleteTokens(context.Background())
		}
	})

	memBefore := usedMemory(t, rdb)
	took := populate(t, store, newApp(), 0, bigTokens)
	memAfter := usedMemory(t, rdb)
	t.Logf("populated %d tokens with %d goroutines in %v (%.0f saves/s)",
		bigTokens, populateWorkers, took.Round(time.Millisecond), bigTokens/took.Seconds())

	keys := redistest.Keys(t, rdb, ns+":")
	type tally struct{ keys, bytes int64 }
	byKind := map[string]*tally{}
	var total int64
	var sampleHash string
	for batch := range slices.Chunk(keys, 1000) {
		cmds := make([]*redis.IntCmd, len(batch))
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range batch {
				cmds[i] = p.MemoryUsage(ctx, k, 0)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("MEMORY USAGE: %v", err)
		}
		for i, k := range batch {
			kind := keyKind(ns, k)
			if byKind[kind] == nil {
				byKind[kind] = &tally{}
			}
			byKind[kind].keys++
			byKind[kind].bytes += cmds[i].Val()
			total += cmds[i].Val()
			if kind == "hash t:" && sampleHash == "" {
				sampleHash = k
			}
		}
	}

	var out strings.Builder
	w := tabwriter.NewWriter(&out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "keys\tkind\tMEMORY USAGE bytes\tbytes/key\tbytes/token\t")
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		c := byKind[k]
		fmt.Fprintf(w, "%d\t%s\t%d\t%.0f\t%.1f\t\n", c.keys, k, c.bytes, float64(c.bytes)/float64(c.keys), float64(c.bytes)/bigTokens)
	}
	fmt.Fprintf(w, "%d\ttotal\t%d\t\t%.1f\t\n", len(keys), total, float64(total)/bigTokens)
	_ = w.Flush()
	t.Log("\n" + out.String())

	perToken := float64(total) / bigTokens
	perTokenInfo := float64(memAfter-memBefore) / bigTokens
	t.Logf("MEMORY USAGE (SAMPLES 0) per token: %.1f bytes (target ≤ %d)", perToken, maxTokenBytes)
	t.Logf("INFO used_memory growth per token: %.1f bytes (%d → %d; includes the expires table and dictionaries, and anything else the server did meanwhile)",
		perTokenInfo, memBefore, memAfter)

	for _, k := range []string{"hash t:", "index u:", "index r:", "index a:"} {
		if c := byKind[k]; c == nil || c.keys != bigTokens {
			t.Errorf("%s keys: %v, want %d", k, c, bigTokens)
		}
	}
	if sampleHash != "" {
		enc, err := rdb.ObjectEncoding(ctx, sampleHash).Result()
		if err != nil {
			t.Fatalf("OBJECT ENCODING: %v", err)
		}
		fields, _ := rdb.HLen(ctx, sampleHash).Result()
		t.Logf("token hash encoding: %s, %d fields", enc, fields)
		if enc != "listpack" {
			t.Errorf("token hash encoding is %q, want listpack", enc)
		}
	}
	if perToken > maxTokenBytes {
		t.Errorf("MEMORY USAGE per token is %.1f bytes, target ≤ %d", perToken, maxTokenBytes)
	}

	start := time.Now()
	if err := store.DeleteTokens(ctx); err != nil {
		t.Fatalf("DeleteTokens: %v", err)
	}
	deleted = true
	t.Logf("DeleteTokens of %d tokens took %v; used_memory now %d", bigTokens, time.Since(start).Round(time.Millisecond), usedMemory(t, rdb))
	if left := redistest.Keys(t, rdb, ns+":"); len(left) > 0 {
		t.Errorf("%d keys of the namespace survived DeleteTokens: %s", len(left), countKinds(ns, left))
	}
}
