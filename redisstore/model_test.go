package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/modelcheck"
	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/redisstore"
)

// Environment variables of TestModel.
const (
	// envSoak runs random seeds for this long (a time.Duration such as
	// "10m") instead of the fixed seed set, and prints the counts.
	envSoak = "TOKENCACHE_SOAK"
	// envSoakWorkers is how many seeds a soak runs at once (default 4).
	envSoakWorkers = "TOKENCACHE_SOAK_WORKERS"
	// envSeed replays one seed (with the fixed set's settings).
	envSeed = "TOKENCACHE_MODEL_SEED"
	// envKnownBroken runs the seeds in knownBroken too.
	envKnownBroken = "TOKENCACHE_MODEL_KNOWN_BROKEN"
	// envSurvey runs seeds 1 to N (with faults in every other one), keeps
	// going after a failure and prints one line per failing seed: a map of
	// the failure classes for whoever fixes them.
	envSurvey = "TOKENCACHE_MODEL_SURVEY"
)

// modelSeed is one run of the fixed set.
type modelSeed struct {
	seed      uint64
	steps     int
	faultRate float64
	until     time.Time // a soak's deadline
}

// modelSeeds is the fixed set CI runs: plain runs, which check the
// sequential semantics and the hint caches of several processes, and runs
// with a fault at every command of a share of the operations.
var modelSeeds = []modelSeed{
	{seed: 1, steps: 150},
	{seed: 2, steps: 150},
	{seed: 3, steps: 150},
	{seed: 11, steps: 60, faultRate: 0.25},
	{seed: 12, steps: 60, faultRate: 0.25},
	{seed: 13, steps: 60, faultRate: 0.25},
	{seed: 14, steps: 60, faultRate: 0.25},
}

// knownBroken lists seeds of the fixed set that are known to fail, with
// what goes wrong; they are skipped unless TOKENCACHE_MODEL_KNOWN_BROKEN is
// set. It is empty: every seed of the set failed on the redisstore from
// before issue 7's protocol (hints returning an older holder of a shared
// value, a 300-year Expiry unreachable, a save sent twice after a cut
// connection, an interrupted save unreachable by its new values, moving off
// a shared value dropping the other holder) and passes with it.
var knownBroken = map[uint64]string{}

// modelOptions are added to every instance's options: model_pending_test.go
// shortens the pending bound there, so that an instance replaced after a
// kill fault does not stall the run for the default bound at every retry.
var modelOptions []redisstore.Option

// TestModel drives redisstore (three instances acting as processes, each
// with its own client and hint cache) and memstore with the same random
// operations and checks every answer; see package modelcheck. It runs on
// miniredis, on REDIS_URL or on TOKENCACHE_CLUSTER_ADDRS.
func TestModel(t *testing.T) {
	if d := os.Getenv(envSoak); d != "" {
		soak(t, d)
		return
	}
	if n := os.Getenv(envSurvey); n != "" {
		survey(t, n)
		return
	}
	seeds := modelSeeds
	if s := os.Getenv(envSeed); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", envSeed, s, err)
		}
		seeds = []modelSeed{{seed: n, steps: 200, faultRate: 0.25}}
		for _, ms := range modelSeeds {
			if ms.seed == n {
				seeds[0] = ms
			}
		}
	}
	for _, ms := range seeds {
		t.Run("seed="+strconv.FormatUint(ms.seed, 10), func(t *testing.T) {
			if why, ok := knownBroken[ms.seed]; ok && os.Getenv(envKnownBroken) == "" && os.Getenv(envSeed) == "" {
				t.Skipf("known to fail before issue 7's store protocol: %s (set %s=1 to run it)", why, envKnownBroken)
			}
			st, err := runModel(t, redistest.New(t), ms)
			t.Logf("seed %d: %s", ms.seed, st)
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// runModel runs one seed in its own namespace and removes the namespace
// afterwards.
func runModel(t *testing.T, tg *redistest.Target, ms modelSeed) (modelcheck.Stats, error) {
	t.Helper()
	ns := redistest.Namespace(t)
	admin := tg.Client(t)
	defer dropNamespace(t, admin, ns)
	newInstance := func(inj *modelcheck.Injector) (tokencache.Store, func()) {
		c := tg.Client(t)
		if inj != nil {
			modelcheck.Install(c, inj)
		}
		opts := append([]redisstore.Option{redisstore.WithNamespace(ns)}, modelOptions...)
		return redisstore.New(c, opts...), func() { _ = c.Close() }
	}
	return modelcheck.Run(modelcheck.Config{
		Seed:      ms.seed,
		Steps:     ms.steps,
		FaultRate: ms.faultRate,
		New:       newInstance,
		Until:     ms.until,
	})
}

// dropNamespace deletes every key of ns, one key per command (Cluster-safe).
func dropNamespace(t *testing.T, c redis.UniversalClient, ns string) {
	t.Helper()
	ctx := context.Background()
	for _, key := range redistest.Keys(t, c, ns+":") {
		_ = c.Del(ctx, key).Err()
	}
}

// soak runs random seeds with faults until the duration d has passed,
// several at once (TOKENCACHE_SOAK_WORKERS, default 4: the store's waits
// for abandoned claims leave the CPU idle), and reports the counts; the
// first failure stops it.
func soak(t *testing.T, d string) {
	dur, err := time.ParseDuration(d)
	if err != nil {
		t.Fatalf("%s=%q: %v", envSoak, d, err)
	}
	workers := 4
	if w := os.Getenv(envSoakWorkers); w != "" {
		if workers, err = strconv.Atoi(w); err != nil || workers < 1 {
			t.Fatalf("%s=%q: want a positive number", envSoakWorkers, w)
		}
	}
	tg := redistest.New(t)
	var (
		mu     sync.Mutex // guards total, seeds, failed
		total  modelcheck.Stats
		seeds  int
		failed error
	)
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				mu.Lock()
				stop := failed != nil
				mu.Unlock()
				if stop {
					return
				}
				ms := modelSeed{seed: rand.Uint64(), steps: 200, faultRate: 0.5, until: deadline}
				st, err := runModel(t, tg, ms)
				mu.Lock()
				total.Add(st)
				seeds++
				if err != nil && failed == nil {
					failed = fmt.Errorf("seed %d: %w", ms.seed, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if failed != nil {
		t.Fatalf("soak on %s: after %d seeds (%s): %v", tg.Kind, seeds, total, failed)
	}
	t.Logf("soak on %s for %v (%d workers): %d seeds, %s", tg.Kind, dur, workers, seeds, total)
}

// survey runs seeds 1 to n and reports each failure's first line.
func survey(t *testing.T, n string) {
	count, err := strconv.Atoi(n)
	if err != nil {
		t.Fatalf("%s=%q: %v", envSurvey, n, err)
	}
	tg := redistest.New(t)
	var total modelcheck.Stats
	failed := 0
	for seed := 1; seed <= count; seed++ {
		ms := modelSeed{seed: uint64(seed), steps: 300}
		if seed%2 == 0 {
			ms.steps, ms.faultRate = 120, 0.3
		}
		st, err := runModel(t, tg, ms)
		total.Add(st)
		var f *modelcheck.Failure
		switch {
		case errors.As(err, &f):
			failed++
			t.Logf("seed %d (faults %v) step %d: %s", seed, ms.faultRate > 0, f.Step, f.Msg)
		case err != nil:
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
	t.Logf("survey on %s: %d of %d seeds failed; %s", tg.Kind, failed, count, total)
	if failed > 0 {
		t.Fail()
	}
}
