package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/internal/sqltest"
	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/sqlstore"
)

// durableBenchTokens is how many tokens each store of TestDurableBenchRatios
// holds; operations cycle through them.
const durableBenchTokens = 500

// timedOp is one call of a measured operation: it does any preparation
// untimed and returns how long the call itself took.
type timedOp func(ctx context.Context, i int) (time.Duration, error)

// untimed wraps a plain call as a timedOp.
func untimed(fn func(ctx context.Context, i int) error) timedOp {
	return func(ctx context.Context, i int) (time.Duration, error) {
		start := time.Now()
		err := fn(ctx, i)
		return time.Since(start), err
	}
}

// interleave returns a benchmark that alternates base and c one call at a
// time, swapping which goes first each iteration, so that the load of a
// shared machine falls on both alike, and reports their mean latencies.
func interleave(base, c timedOp) func(b *testing.B) {
	return func(b *testing.B) {
		ctx := context.Background()
		var baseNs, caseNs time.Duration
		i := 0
		run := func(op timedOp) time.Duration {
			d, err := op(ctx, i)
			if err != nil {
				b.Fatal(err)
			}
			return d
		}
		for b.Loop() {
			if i%2 == 0 {
				baseNs += run(base)
				caseNs += run(c)
			} else {
				caseNs += run(c)
				baseNs += run(base)
			}
			i++
		}
		b.ReportMetric(float64(baseNs.Nanoseconds())/float64(i), "base-ns/op")
		b.ReportMetric(float64(caseNs.Nanoseconds())/float64(i), "case-ns/op")
	}
}

// benchSide is one store under measurement and the tokens it holds.
type benchSide struct {
	store  *redisstore.Store
	plain  *redisstore.Store // same namespace, no record: drops Redis copies
	tokens []tokencache.Token
}

func randHex(n int) string {
	b := make([]byte, n/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newBenchSide saves durableBenchTokens tokens shaped like the lookup
// benchmarks' (70-character tokens, user name, client ID, secret, URLs)
// through a store on a fresh namespace, with record as its record (nil:
// none).
func newBenchSide(t *testing.T, tg *redistest.Target, record tokencache.Store) *benchSide {
	t.Helper()
	rdb := tg.Client(t)
	ns := redistest.Namespace(t)
	redistest.DropNamespaceAtCleanup(t, rdb, ns)
	opts := []redisstore.Option{redisstore.WithNamespace(ns)}
	if record != nil {
		opts = append(opts, redisstore.WithDurableStore(record))
	}
	s := &benchSide{store: redisstore.New(rdb, opts...), plain: redisstore.New(rdb, redisstore.WithNamespace(ns))}
	client := "1000." + strings.ToUpper(randHex(30))
	for i := range durableBenchTokens {
		tok := tokencache.Token{
			UserName: fmt.Sprintf("user-%d@example.com", i), ClientID: client, ClientSecret: randHex(42),
			RefreshToken: "1000." + randHex(64), AccessToken: "1000." + randHex(64),
			Expiry:      time.Now().Add(time.Hour),
			RedirectURL: "https://app.example.com/oauth/callback", APIDomain: "https://www.zohoapis.com",
		}
		if err := s.store.SaveToken(context.Background(), &tok); err != nil {
			t.Fatal(err)
		}
		s.tokens = append(s.tokens, tok)
	}
	return s
}

func (s *benchSide) findByUser(ctx context.Context, i int) error {
	tok := s.tokens[i%len(s.tokens)]
	_, err := s.store.FindToken(ctx, tokencache.Token{UserName: tok.UserName, ClientID: tok.ClientID})
	return err
}

func (s *benchSide) findByID(ctx context.Context, i int) error {
	_, err := s.store.FindTokenByID(ctx, s.tokens[i%len(s.tokens)].ID)
	return err
}

// saveCAS saves a refreshed token by ID with its Version: the refresher's
// save.
func (s *benchSide) saveCAS(ctx context.Context, i int) error {
	tok := &s.tokens[i%len(s.tokens)]
	tok.AccessToken = "1000." + randHex(64)
	tok.Expiry = time.Now().Add(time.Hour)
	return s.store.SaveToken(ctx, tok)
}

// coldByUser drops the token's copy from Redis (untimed), then finds it by
// user: a read-through from the record.
func (s *benchSide) coldByUser(ctx context.Context, i int) (time.Duration, error) {
	tok := s.tokens[i%len(s.tokens)]
	if err := s.plain.DeleteToken(ctx, tok.ID); err != nil {
		return 0, err
	}
	start := time.Now()
	_, err := s.store.FindToken(ctx, tokencache.Token{UserName: tok.UserName, ClientID: tok.ClientID})
	return time.Since(start), err
}

// TestDurableBenchRatios measures, in one run, what the record costs:
// a Redis hit with a record against redisstore alone (target ≥ 0.9), a save
// with a record on SQLite (and PostgreSQL when TOKENCACHE_POSTGRES_URL is
// set) against a save without, and a read-through from the record after a
// Redis miss against a Redis hit. Each case runs interleaved with its
// baseline call by call; the table has medians over the rounds. The
// command:
//
//	REDIS_URL=redis://127.0.0.1:6379/0 TOKENCACHE_POSTGRES_URL=postgres://root@127.0.0.1:5432/test?sslmode=disable \
//	  TOKENCACHE_BENCH_RATIOS=1 go test -count=1 -run TestDurableBenchRatios -v ./redisstore/
func TestDurableBenchRatios(t *testing.T) {
	if os.Getenv("TOKENCACHE_BENCH_RATIOS") != "1" {
		t.Skip("set TOKENCACHE_BENCH_RATIOS=1 to measure (REDIS_URL=... for the real server)")
	}
	rounds := 3
	tg := redistest.New(t)
	alone := newBenchSide(t, tg, nil)
	records := []struct {
		name string
		tg   sqltest.Target
	}{{"SQLite", sqltest.SQLite()}}
	for _, db := range sqltest.Targets(t) {
		if db.Name == "postgres" {
			records = append(records, struct {
				name string
				tg   sqltest.Target
			}{"PostgreSQL", db})
		}
	}
	type row struct {
		name, baseline string
		base, c        timedOp
		target         float64
	}
	var rows []row
	for i, rec := range records {
		withRecord := newBenchSide(t, tg, sqltest.Open(t, rec.tg, sqlstore.WithCleanupInterval(0)))
		if i == 0 {
			rows = append(rows,
				row{"FindToken by user, record " + rec.name, "redisstore alone", untimed(alone.findByUser), untimed(withRecord.findByUser), 0.9},
				row{"FindTokenByID, record " + rec.name, "redisstore alone", untimed(alone.findByID), untimed(withRecord.findByID), 0.9})
		}
		rows = append(rows,
			row{"SaveToken by ID with Version, record " + rec.name, "redisstore alone", untimed(alone.saveCAS), untimed(withRecord.saveCAS), 0},
			row{"FindToken by user after a Redis miss, record " + rec.name, "Redis hit, same store", untimed(withRecord.findByUser), withRecord.coldByUser, 0})
	}

	type samples struct{ ns, baseNs, ratio []float64 }
	got := make([]samples, len(rows))
	for round := range rounds {
		for i, r := range rows {
			res := testing.Benchmark(interleave(r.base, r.c))
			if res.N == 0 {
				t.Fatalf("%s: the benchmark failed", r.name)
			}
			b, c := res.Extra["base-ns/op"], res.Extra["case-ns/op"]
			got[i].baseNs = append(got[i].baseNs, b)
			got[i].ns = append(got[i].ns, c)
			got[i].ratio = append(got[i].ratio, b/c)
		}
		t.Logf("round %d of %d done", round+1, rounds)
	}

	enforce := tg.Kind == redistest.Standalone
	var out strings.Builder
	fmt.Fprintf(&out, "server: %s, GOMAXPROCS %d, %d rounds, medians; ratio = case ops/s ÷ baseline ops/s\n", tg.Kind, runtime.GOMAXPROCS(0), rounds)
	w := tabwriter.NewWriter(&out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "case\tns/op\tbaseline\tbaseline ns/op\tratio\tmin–max\ttarget\t")
	for i, r := range rows {
		s := got[i]
		target := "—"
		if r.target > 0 {
			target = fmt.Sprintf("≥ %.2f", r.target)
		}
		fmt.Fprintf(w, "%s\t%.0f\t%s\t%.0f\t%.3f\t%.3f–%.3f\t%s\t\n", r.name, median(s.ns), r.baseline, median(s.baseNs),
			median(s.ratio), slices.Min(s.ratio), slices.Max(s.ratio), target)
	}
	_ = w.Flush()
	t.Log("\n" + out.String())
	if !enforce {
		t.Logf("targets not enforced on %s", tg.Kind)
		return
	}
	for i, r := range rows {
		if m := median(got[i].ratio); r.target > 0 && m < r.target {
			t.Errorf("%s: %.3f of %s, target ≥ %.2f", r.name, m, r.baseline, r.target)
		}
	}
}
