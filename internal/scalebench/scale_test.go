package scalebench_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/csv"
	"fmt"
	"io"
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

// Environment of the measurement.
const (
	envScale = "TOKENCACHE_BENCH_SCALE" // 1 runs it
	envSizes = "TOKENCACHE_SCALE_SIZES" // comma-separated token counts
	envPairs = "TOKENCACHE_SCALE_PAIRS" // lookups per rule and size
)

const (
	populateWorkers = 64
	slowMicros      = 2000 // SLOWLOG threshold: commands over 2 ms are reported
	mib             = 1 << 20
)

// population makes token i of a run again from its index alone, so that the
// test can look up any of a million tokens without keeping them in memory.
type population struct {
	seed         uint64
	clientID     string
	clientSecret string
	expiry       time.Time
}

func newPopulation() population {
	seed := rand.Uint64()
	r := rand.New(rand.NewPCG(seed, 0))
	return population{
		seed:         seed,
		clientID:     "1000." + randString(r, 30, alnum[:26]+alnum[52:]),
		clientSecret: randString(r, 42, alnum),
		expiry:       time.Now().Add(3 * time.Hour).Truncate(time.Millisecond),
	}
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randString(r *rand.Rand, n int, alphabet string) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// token is the realistic token of user i: a random 22-character ID as
// SaveToken makes them, 70-character access and refresh tokens, a 35-character
// client ID, redirect URL and API domain, no grant token.
func (p population) token(i int) tokencache.Token {
	r := rand.New(rand.NewPCG(p.seed, uint64(i)+1))
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], r.Uint64())
	binary.LittleEndian.PutUint64(b[8:], r.Uint64())
	return tokencache.Token{
		ID:           base64.RawURLEncoding.EncodeToString(b[:]),
		UserName:     "user-" + strconv.Itoa(i) + "@example.com",
		ClientID:     p.clientID,
		ClientSecret: p.clientSecret,
		AccessToken:  randString(r, 70, alnum),
		RefreshToken: randString(r, 70, alnum),
		Expiry:       p.expiry,
		RedirectURL:  "https://app.example.com/oauth/callback",
		APIDomain:    "https://www.zohoapis.com",
	}
}

// populate saves tokens from .. to-1 with populateWorkers goroutines.
func populate(t *testing.T, store *redisstore.Store, p population, from, to int) time.Duration {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	next.Store(int64(from))
	start := time.Now()
	for range populateWorkers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < to && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				tok := p.token(i)
				if err := store.SaveToken(ctx, &tok); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("token %d: %w", i, err); cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("populating: %v", firstErr)
	}
	return time.Since(start)
}

// nodes returns the masters of the target (the client itself when it is
// not a cluster).
func eachMaster(t *testing.T, rdb redis.UniversalClient, fn func(c redis.UniversalClient)) {
	t.Helper()
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		err := cc.ForEachMaster(context.Background(), func(_ context.Context, c *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			fn(c)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	fn(rdb)
}

func usedMemory(t *testing.T, rdb redis.UniversalClient) int64 {
	t.Helper()
	var total int64
	eachMaster(t, rdb, func(c redis.UniversalClient) {
		info, err := c.Info(context.Background(), "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.SplitSeq(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				total += n
			}
		}
	})
	return total
}

func dbSize(t *testing.T, rdb redis.UniversalClient) int64 {
	t.Helper()
	var total int64
	eachMaster(t, rdb, func(c redis.UniversalClient) {
		n, err := c.DBSize(context.Background()).Result()
		if err != nil {
			t.Fatal(err)
		}
		total += n
	})
	return total
}

// slowlog returns the commands over slowMicros since the last call, as
// "NAME ms" entries, and resets the log.
func slowlog(t *testing.T, rdb redis.UniversalClient) []string {
	t.Helper()
	var out []string
	eachMaster(t, rdb, func(c redis.UniversalClient) {
		ctx := context.Background()
		logs, err := c.SlowLogGet(ctx, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range logs {
			name := "?"
			if len(l.Args) > 0 {
				name = strings.ToUpper(l.Args[0])
			}
			out = append(out, fmt.Sprintf("%s %.1fms", name, float64(l.Duration.Microseconds())/1000))
		}
		_ = c.Do(ctx, "SLOWLOG", "RESET").Err()
	})
	return out
}

// summarize counts slow-log entries ("NAME 1.2ms") by command and gives
// each command's worst.
func summarize(entries []string) string {
	type agg struct {
		n     int
		worst float64
	}
	by := map[string]*agg{}
	var names []string
	for _, e := range entries {
		name, ms, _ := strings.Cut(e, " ")
		v, _ := strconv.ParseFloat(strings.TrimSuffix(ms, "ms"), 64)
		a := by[name]
		if a == nil {
			a = &agg{}
			by[name] = a
			names = append(names, name)
		}
		a.n++
		a.worst = max(a.worst, v)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("%s ×%d (worst %.1f ms)", name, by[name].n, by[name].worst)
	}
	return strings.Join(parts, ", ")
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// peakHeap runs fn while sampling the Go heap every millisecond and returns
// fn's time and the largest heap seen above the heap before it.
func peakHeap(fn func()) (time.Duration, uint64) {
	runtime.GC()
	base := heapObjects()
	peak := base
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				peak = max(peak, heapObjects())
			}
		}
	}()
	start := time.Now()
	fn()
	took := time.Since(start)
	close(stop)
	<-done
	peak = max(peak, heapObjects())
	return took, peak - min(peak, base)
}

// rule is one way of finding a token.
type rule struct {
	name  string
	query func(tokencache.Token) tokencache.Token
}

var rules = []rule{
	{"id", func(t tokencache.Token) tokencache.Token { return tokencache.Token{ID: t.ID} }},
	{"user", func(t tokencache.Token) tokencache.Token {
		return tokencache.Token{UserName: t.UserName, ClientID: t.ClientID}
	}},
	{"refresh", func(t tokencache.Token) tokencache.Token {
		return tokencache.Token{RefreshToken: t.RefreshToken, ClientID: t.ClientID}
	}},
	{"access", func(t tokencache.Token) tokencache.Token { return tokencache.Token{AccessToken: t.AccessToken} }},
}

// workingSet is how many distinct tokens a reader process serves in the
// main lookup measurement: the default hint cache's size.
const workingSet = redisstore.DefaultHintCacheSize

// warmUp looks up tokens 0 … ws-1 once by r.
func warmUp(t *testing.T, store *redisstore.Store, p population, ws int, r rule) {
	t.Helper()
	for i := range ws {
		tok := p.token(i)
		if got, err := store.FindToken(context.Background(), r.query(tok)); err != nil || got.ID != tok.ID {
			t.Fatalf("warm-up: FindToken by %s: %v", r.name, err)
		}
	}
}

// lookupResult is the median latency of FindToken by one rule and of the
// raw HGETALL interleaved with it.
type lookupResult struct {
	caseNs, baseNs float64
}

func (r lookupResult) ratio() float64 { return r.baseNs / r.caseNs }

// lookups times FindToken by r on random tokens of the n, interleaved call
// by call with a raw HGETALL of another random token's hash, in rounds, and
// returns the medians over the rounds of the mean latency of each.
func lookups(t *testing.T, rdb redis.UniversalClient, store *redisstore.Store, p population, n, pairs int, r rule) lookupResult {
	t.Helper()
	ctx := context.Background()
	const rounds = 5
	var caseNs, baseNs []float64
	for range rounds {
		var caseT, baseT time.Duration
		per := max(pairs/rounds, 1)
		for k := range per {
			for j := range 2 {
				tok := p.token(rand.IntN(n))
				start := time.Now()
				if (k+j)%2 == 0 {
					m, err := rdb.HGetAll(ctx, store.HashKey(tok.ID)).Result()
					baseT += time.Since(start)
					if err != nil || len(m) == 0 {
						t.Fatalf("HGETALL: %d fields, %v", len(m), err)
					}
				} else {
					got, err := store.FindToken(ctx, r.query(tok))
					caseT += time.Since(start)
					if err != nil || got.ID != tok.ID {
						t.Fatalf("FindToken by %s: %v", r.name, err)
					}
				}
			}
		}
		caseNs = append(caseNs, float64(caseT.Nanoseconds())/float64(per))
		baseNs = append(baseNs, float64(baseT.Nanoseconds())/float64(per))
	}
	return lookupResult{median(caseNs), median(baseNs)}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// row is the result at one size.
type row struct {
	n             int
	populate      time.Duration
	bytesPerToken float64
	keysPerToken  float64
	warm, full    []lookupResult // by rules: on the working set after a warm-up; on random tokens of all n
	walkTime      time.Duration
	walkHeap      uint64
	walked        int
	getTime       time.Duration
	getHeap       uint64
	deleteTime    time.Duration
	deleteHeap    uint64
	slow          []string
	breakdown     string
}

// breakdownMax is the largest size whose keys are all sized one by one.
const breakdownMax = 10000

// breakdown sums MEMORY USAGE over every key by its kind (what follows the
// namespace up to the next ':' or '{'), per token. MEMORY USAGE leaves out
// the keyspace's own entry for each key (about 50 bytes with a TTL), which
// used_memory counts.
func breakdown(t *testing.T, rdb redis.UniversalClient, n int) string {
	t.Helper()
	ctx := context.Background()
	sum := map[string]int64{}
	count := map[string]int{}
	ns := redisstore.DefaultNamespace + ":"
	eachMaster(t, rdb, func(c redis.UniversalClient) {
		iter := c.Scan(ctx, 0, "", 1000).Iterator()
		for iter.Next(ctx) {
			k := iter.Val()
			kind := strings.TrimPrefix(k, ns)
			if i := strings.IndexAny(kind, ":{"); i >= 0 {
				kind = kind[:i]
			}
			b, err := c.MemoryUsage(ctx, k).Result()
			if err != nil {
				t.Fatalf("MEMORY USAGE: %v", err)
			}
			sum[kind] += b
			count[kind]++
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
	})
	kinds := slices.Sorted(maps.Keys(sum))
	parts := make([]string, len(kinds))
	var total int64
	for i, k := range kinds {
		total += sum[k]
		parts[i] = fmt.Sprintf("%s: %d keys, %.0f B", k, count[k], float64(sum[k])/float64(n))
	}
	return fmt.Sprintf("%s; total %.0f B", strings.Join(parts, "; "), float64(total)/float64(n))
}

func sizes(t *testing.T) []int {
	t.Helper()
	v := os.Getenv(envSizes)
	if v == "" {
		v = "1000,10000,100000,1000000"
	}
	var out []int
	for f := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want positive integers", envSizes, v)
		}
		out = append(out, n)
	}
	return out
}

// TestScale populates, at each size, that many tokens in the default
// namespace of an empty private Redis, and measures memory per token,
// FindToken by every rule against a raw HGETALL, a Walk (export) and
// GetTokens with their heap, DeleteTokens, and SLOWLOG. It refuses a server
// that holds any key: run it through make bench-scale, which starts its own.
func TestScale(t *testing.T) {
	if os.Getenv(envScale) != "1" {
		t.Skipf("set %s=1 (make bench-scale) to run the scale measurement", envScale)
	}
	tg := redistest.New(t)
	if tg.Kind == redistest.Mini {
		t.Skip("needs a real, private Redis: make bench-scale starts one")
	}
	rdb := tg.Client(t)
	if n := dbSize(t, rdb); n != 0 {
		t.Fatalf("the server holds %d keys: this measurement needs an empty, private Redis (make bench-scale starts one)", n)
	}
	pairs := 2000
	if v := os.Getenv(envPairs); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 10 {
			t.Fatalf("%s=%q: want an integer ≥ 10", envPairs, v)
		}
		pairs = n
	}
	ctx := context.Background()
	eachMaster(t, rdb, func(c redis.UniversalClient) {
		_ = c.ConfigSet(ctx, "slowlog-log-slower-than", strconv.Itoa(slowMicros)).Err()
		_ = c.ConfigSet(ctx, "slowlog-max-len", "100000").Err()
		_ = c.Do(ctx, "SLOWLOG", "RESET").Err()
	})
	var rows []row
	for _, n := range sizes(t) {
		p := newPopulation()
		base := usedMemory(t, rdb)
		writer := redisstore.New(rdb)
		r := row{n: n}
		r.populate = populate(t, writer, p, 0, n)
		r.bytesPerToken = float64(usedMemory(t, rdb)-base) / float64(n)
		r.keysPerToken = float64(dbSize(t, rdb)) / float64(n)
		if n <= breakdownMax {
			r.breakdown = breakdown(t, rdb, n)
			t.Logf("%d tokens: MEMORY USAGE per token by kind of key: %s", n, r.breakdown)
		}
		_ = slowlog(t, rdb) // populating is not the question
		t.Logf("%d tokens: populated in %v, %.0f bytes and %.2f keys per token", n, r.populate.Round(time.Millisecond), r.bytesPerToken, r.keysPerToken)

		// A reader process with default options. Its working set is the
		// workingSet tokens it serves (all of them when there are fewer),
		// each looked up once before the clock starts; then the worst case,
		// random tokens of all n.
		// Each rule gets a reader of its own, as a process that finds its
		// tokens one way: the hint cache then holds that rule's hints.
		ws := min(n, workingSet)
		for _, ru := range rules {
			reader := redisstore.New(rdb)
			warmUp(t, reader, p, ws, ru)
			r.warm = append(r.warm, lookups(t, rdb, reader, p, ws, pairs, ru))
			r.full = append(r.full, lookups(t, rdb, reader, p, n, pairs, ru))
		}

		// Export: a walk that writes every token as a CSV row to nowhere.
		r.walkTime, r.walkHeap = peakHeap(func() {
			w := csv.NewWriter(io.Discard)
			err := writer.Walk(ctx, func(tok tokencache.Token) error {
				r.walked++
				return w.Write([]string{tok.ID, tok.UserName, tok.ClientID, tok.ClientSecret, tok.RefreshToken,
					tok.AccessToken, tok.GrantToken, strconv.FormatInt(tok.Expiry.UnixMilli(), 10), tok.RedirectURL, tok.APIDomain})
			})
			w.Flush()
			if err != nil {
				t.Fatalf("Walk: %v", err)
			}
		})
		if r.walked < n {
			t.Errorf("Walk visited %d of %d tokens", r.walked, n)
		}
		if n <= 100000 {
			var got int
			r.getTime, r.getHeap = peakHeap(func() {
				toks, err := writer.GetTokens(ctx)
				if err != nil {
					t.Fatalf("GetTokens: %v", err)
				}
				got = len(toks)
			})
			if got != n {
				t.Errorf("GetTokens returned %d of %d tokens", got, n)
			}
		}
		r.deleteTime, r.deleteHeap = peakHeap(func() {
			if err := writer.DeleteTokens(ctx); err != nil {
				t.Fatalf("DeleteTokens: %v", err)
			}
		})
		if left := dbSize(t, rdb); left != 0 {
			t.Errorf("%d keys survived DeleteTokens of %d tokens", left, n)
		}
		r.slow = slowlog(t, rdb)
		rows = append(rows, r)
		t.Logf("%d tokens: walk %v (%.1f MiB heap), DeleteTokens %v, commands over %d ms: %s", n, r.walkTime.Round(time.Millisecond),
			float64(r.walkHeap)/mib, r.deleteTime.Round(time.Millisecond), slowMicros/1000, summarize(r.slow))
	}
	report(t, tg.Kind, rows)
}

func report(t *testing.T, kind redistest.Kind, rows []row) {
	var out strings.Builder
	fmt.Fprintf(&out, "server: %s, GOMAXPROCS %d; lookups: mean ns of FindToken on random tokens of a working set of min(n, %d) (then: of all n), default options, interleaved call by call with a raw HGETALL of a random token of the same set (ratio = HGETALL ns ÷ FindToken ns), medians of 5 rounds\n",
		kind, runtime.GOMAXPROCS(0), workingSet)
	w := tabwriter.NewWriter(&out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(w, "tokens\tpopulate\tbytes/token\tkeys/token\t")
	for _, ru := range rules {
		fmt.Fprintf(w, "%s ns (ratio)\t", ru.name)
	}
	for _, ru := range rules {
		fmt.Fprintf(w, "%s, all n\t", ru.name)
	}
	fmt.Fprintln(w, "walk\twalk heap MiB\tGetTokens\tGetTokens heap MiB\tDeleteTokens\tDeleteTokens heap MiB\tslow (>2ms)\t")
	for _, r := range rows {
		fmt.Fprintf(w, "%d\t%v\t%.0f\t%.2f\t", r.n, r.populate.Round(time.Millisecond), r.bytesPerToken, r.keysPerToken)
		for _, l := range r.warm {
			fmt.Fprintf(w, "%.0f (%.2f)\t", l.caseNs, l.ratio())
		}
		for _, l := range r.full {
			fmt.Fprintf(w, "%.0f (%.2f)\t", l.caseNs, l.ratio())
		}
		get := "—\t—"
		if r.getTime > 0 {
			get = fmt.Sprintf("%v\t%.1f", r.getTime.Round(time.Millisecond), float64(r.getHeap)/mib)
		}
		fmt.Fprintf(w, "%v\t%.1f\t%s\t%v\t%.1f\t%d\t\n", r.walkTime.Round(time.Millisecond), float64(r.walkHeap)/mib, get,
			r.deleteTime.Round(time.Millisecond), float64(r.deleteHeap)/mib, len(r.slow))
	}
	_ = w.Flush()
	if len(rows) > 1 {
		first, last := rows[0], rows[len(rows)-1]
		fmt.Fprintf(&out, "flatness, FindToken ns at %d ÷ at %d (ratio to HGETALL at %d ÷ at %d):", last.n, first.n, first.n, last.n)
		for i, ru := range rules {
			fmt.Fprintf(&out, " %s %.2f (%.2f) / all n %.2f (%.2f);", ru.name,
				last.warm[i].caseNs/first.warm[i].caseNs, first.warm[i].ratio()/last.warm[i].ratio(),
				last.full[i].caseNs/first.full[i].caseNs, first.full[i].ratio()/last.full[i].ratio())
		}
		out.WriteString("\n")
	}
	for _, r := range rows {
		if len(r.slow) > 0 {
			fmt.Fprintf(&out, "commands over %d ms at %d tokens (lookups, walk, GetTokens, DeleteTokens): %s\n", slowMicros/1000, r.n, summarize(r.slow))
		}
	}
	t.Log("\n" + out.String())
}
