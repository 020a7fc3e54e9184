// Command chaosrun runs the chaos suite of the refresh protocol (package
// internal/chaos) and prints its table; with the argument "worker" it is
// one worker process of the fleet (the suite starts those itself).
//
//	go build -o /tmp/chaosrun ./internal/chaos/chaosrun
//	/tmp/chaosrun [-short] [-only baseline,cuts] [-gate all]
//
// It exits 1 when a scenario in the gate list (-gate, default
// $CHAOS_GATE) fails its gates, 2 on a usage error.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tokencache/tokencache/internal/chaos"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		if err := chaos.RunWorker(os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	os.Exit(run())
}

func run() int {
	cfg := chaos.DefaultConfig()
	short := flag.Bool("short", false, "the CI version: fewer faults per scenario, shorter phases, no reported-only scenarios")
	only := flag.String("only", "", "comma-separated scenarios to run (default: all)")
	gate := flag.String("gate", os.Getenv("CHAOS_GATE"), "comma-separated scenarios whose gates are enforced, \"all\" or \"none\" (default $CHAOS_GATE)")
	redisServer := flag.String("redis-server", "redis-server", "the redis-server binary")
	flag.IntVar(&cfg.Workers, "workers", cfg.Workers, "worker processes")
	flag.IntVar(&cfg.Goroutines, "goroutines", cfg.Goroutines, "callers per worker")
	flag.IntVar(&cfg.Users, "users", cfg.Users, "users")
	flag.IntVar(&cfg.PortFrom, "port-from", cfg.PortFrom, "first loopback port the suite may use")
	flag.IntVar(&cfg.PortTo, "port-to", cfg.PortTo, "last loopback port the suite may use")
	quiet := flag.Bool("q", false, "no progress lines")
	settle := flag.Duration("settle", 0, "time after the faults before the fleet stops (default 12s, 4s with -short)")
	flag.Parse()

	gates, err := chaos.ParseGates(*gate)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if cfg.RedisServer, err = exec.LookPath(*redisServer); err != nil {
		fmt.Fprintln(os.Stderr, "chaosrun: redis-server not found:", err)
		return 2
	}
	if cfg.Bin, err = os.Executable(); err != nil {
		fmt.Fprintln(os.Stderr, "chaosrun:", err)
		return 2
	}
	cfg.Short = *short
	if cfg.Short {
		cfg.Warmup, cfg.Settle = 2*time.Second, 4*time.Second
	}
	if *settle > 0 {
		cfg.Settle = *settle
	}
	if !*quiet {
		cfg.Log = os.Stderr
	}
	selected, unknown := map[string]bool{}, map[string]bool{}
	for _, n := range strings.Split(*only, ",") {
		if n = strings.TrimSpace(n); n != "" {
			selected[n], unknown[n] = true, true
		}
	}
	for _, s := range chaos.Scenarios() {
		delete(unknown, s.Name)
	}
	for n := range unknown {
		fmt.Fprintf(os.Stderr, "chaosrun: unknown scenario %q\n", n)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var results []chaos.Result
	for _, s := range chaos.Scenarios() {
		if len(selected) > 0 && !selected[s.Name] || len(selected) == 0 && cfg.Short && s.Full {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(os.Stderr, "== %s: %s\n", s.Name, s.Title)
		results = append(results, chaos.Run(ctx, cfg, s))
	}
	fmt.Printf("\nfleet: %d workers × %d callers, %d users, %v tokens, %v window, %v lock TTL, OAuth latency %v–%v, short=%v\n\n",
		cfg.Workers, cfg.Goroutines, cfg.Users, cfg.Lifetime, cfg.Window, cfg.LockTTL, cfg.LatencyMin, cfg.LatencyMax, cfg.Short)
	chaos.WriteTable(os.Stdout, results, gates)
	failed := false
	for _, r := range results {
		if len(gates.Check(r)) > 0 {
			failed = true
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "chaosrun: interrupted")
		return 1
	}
	if failed {
		fmt.Println("\nchaos: FAIL (a gated scenario failed its gate)")
		return 1
	}
	fmt.Println("\nchaos: ok")
	return 0
}
