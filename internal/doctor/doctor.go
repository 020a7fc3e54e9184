// Package doctor is the doctor command: it checks a live Redis for the
// settings that lose tokens (no persistence, an evicting maxmemory-policy,
// asynchronous replication) and says how to fix each.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/internal/keyscan"
)

// Severity says how bad a finding is.
type Severity string

// Severities. Only Danger makes doctor fail.
const (
	OK      Severity = "ok"
	Warning Severity = "warning" // tokens survive, but a rarer fault can lose some
	Danger  Severity = "danger"  // a restart, eviction or failover loses tokens
)

// Finding is one check's result.
type Finding struct {
	Node     string
	Check    string
	Severity Severity
	Say      string // what was found
	Fix      string // what to do; "" when OK
}

// Options are the settings of doctor.
type Options struct {
	F *cli.Factory
}

// ErrDangers is returned when a setting would lose tokens.
var ErrDangers = errors.New("doctor: this Redis can lose tokens (see the fixes above)")

// NewCmdDoctor returns the doctor command; runF replaces Run in tests.
func NewCmdDoctor(f *cli.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	o := &Options{F: f}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check a live Redis for settings that lose tokens, and say how to fix them",
		Long: `Check the Redis of --redis (every master of a cluster) for what loses tokens:

  persistence   no AOF and no RDB snapshots: a restart loses every token; RDB
                only: a crash loses the saves since the last snapshot; AOF with
                appendfsync everysec: a host crash loses up to a second
  eviction      a maxmemory limit with an evicting maxmemory-policy (allkeys-*
                or volatile-*: every token has a TTL) deletes tokens under
                memory pressure
  replication   replicas acknowledge asynchronously: a failover can roll back a
                refresh the server already rotated, unless saves wait for a
                replica (redisstore.WithReplicaAcks) or a durable record backs
                Redis (--durable)

Each finding is printed with its fix. Exit status 1 when something would lose
tokens (a danger), 0 when there are at most warnings, 4 when Redis cannot be
reached. Settings Redis does not show through INFO are read with CONFIG GET;
a server that refuses CONFIG (a managed service) gets a note instead.`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return Run(cmd.Context(), o)
		},
	}
	f.Settings.AddRedisFlags(cmd)
	return cmd
}

// Run checks and prints the findings.
func Run(ctx context.Context, o *Options) error {
	rdb, ep, err := o.F.Redis(ctx)
	if err != nil {
		return err
	}
	defer rdb.Close()
	var (
		mu       sync.Mutex // guards findings
		findings []Finding
	)
	err = keyscan.EachNode(ctx, rdb, func(ctx context.Context, node redis.UniversalClient) error {
		name := ep.Where
		if c, ok := node.(*redis.Client); ok {
			name = c.Options().Addr
		}
		fs, err := Check(ctx, node, name)
		mu.Lock()
		findings = append(findings, fs...)
		mu.Unlock()
		return err
	})
	if err != nil {
		return err
	}
	return report(o.F.IO.Out, findings)
}

func report(w io.Writer, findings []Finding) error {
	dangers := 0
	for _, f := range findings {
		fmt.Fprintf(w, "%-7s %s %s: %s\n", f.Severity, f.Node, f.Check, f.Say)
		if f.Fix != "" {
			fmt.Fprintf(w, "        fix: %s\n", f.Fix)
		}
		if f.Severity == Danger {
			dangers++
		}
	}
	if dangers > 0 {
		return ErrDangers
	}
	fmt.Fprintln(w, "no setting found that loses tokens")
	return nil
}

// Check inspects one node.
func Check(ctx context.Context, node redis.UniversalClient, name string) ([]Finding, error) {
	info, err := readInfo(ctx, node, "persistence", "memory", "replication")
	if err != nil {
		return nil, err
	}
	config := func(key string) (string, bool) {
		v, err := node.ConfigGet(ctx, key).Result()
		if err != nil {
			return "", false
		}
		s, ok := v[key]
		return s, ok
	}
	var fs []Finding
	add := func(check string, sev Severity, say, fix string) {
		fs = append(fs, Finding{Node: name, Check: check, Severity: sev, Say: say, Fix: fix})
	}

	// Persistence.
	aof := info["aof_enabled"] == "1"
	save, saveKnown := config("save")
	switch {
	case aof:
		fsync, _ := config("appendfsync")
		switch fsync {
		case "always":
			add("persistence", OK, "AOF with appendfsync always", "")
		case "no":
			add("persistence", Warning, "AOF with appendfsync no: a host crash loses what the kernel had not written (up to ~30 s)",
				"CONFIG SET appendfsync everysec (or always), and run the fleet with a durable record (--durable)")
		default:
			add("persistence", Warning, "AOF with appendfsync "+orUnknown(fsync)+": a host crash loses up to a second of saves, and Redis then hands out refresh tokens the server already rotated",
				"run the fleet with a durable record (--durable, redisstore.WithDurableStore), or appendfsync always")
		}
	case saveKnown && strings.TrimSpace(save) == "":
		add("persistence", Danger, "no AOF and no RDB snapshots: a restart loses every token, and every user must log in again",
			"CONFIG SET appendonly yes (and persist it in redis.conf), or run the fleet with a durable record (--durable)")
	case saveKnown:
		add("persistence", Danger, "RDB snapshots only (save "+save+"): a crash loses every refresh since the last snapshot",
			"CONFIG SET appendonly yes (and persist it in redis.conf), or run the fleet with a durable record (--durable)")
	default:
		add("persistence", Warning, "AOF is off and the server refuses CONFIG GET save, so RDB snapshots are unknown",
			"check the provider's persistence settings; enable AOF, or run the fleet with a durable record (--durable)")
	}

	// Eviction.
	policy := info["maxmemory_policy"]
	maxmem, _ := strconv.ParseInt(info["maxmemory"], 10, 64)
	switch {
	case policy == "" || policy == "noeviction":
		add("eviction", OK, "maxmemory-policy "+orUnknown(policy), "")
	case maxmem == 0:
		add("eviction", Warning, "maxmemory-policy "+policy+" evicts tokens once a maxmemory limit is set (none is set now)",
			"CONFIG SET maxmemory-policy noeviction")
	default:
		add("eviction", Danger, fmt.Sprintf("maxmemory %d bytes with maxmemory-policy %s: under memory pressure Redis deletes tokens (all of them have a TTL)", maxmem, policy),
			"CONFIG SET maxmemory-policy noeviction, and give tokencache a Redis (or a database) of its own")
	}

	// Replication.
	switch role := info["role"]; role {
	case "slave", "replica":
		add("replication", Danger, "this node is a replica: writes fail or, when replica-read-only is off, vanish at the next sync",
			"point --redis at the master (or at the Sentinels: redis+sentinel://host:26379/MASTER)")
	case "master":
		replicas, _ := strconv.Atoi(info["connected_slaves"])
		minGood := info["min_slaves_good_slaves"]
		switch {
		case replicas == 0:
			add("replication", OK, "no replicas (a failover cannot roll back saves; a lost host loses everything not persisted)", "")
		case minGood != "":
			add("replication", Warning, fmt.Sprintf("%d replicas, min-replicas-to-write set: writes stop without replicas, but acknowledgements are still asynchronous", replicas),
				"use redisstore.WithReplicaAcks(1, timeout) in the application so a save returns only once a replica has it")
		default:
			add("replication", Warning, fmt.Sprintf("%d replicas acknowledge asynchronously: a failover can roll back a refresh the server already rotated", replicas),
				"use redisstore.WithReplicaAcks(1, timeout) in the application, or a durable record (--durable)")
		}
	}
	return fs, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// readInfo reads INFO sections into a map of field to value.
func readInfo(ctx context.Context, node redis.UniversalClient, sections ...string) (map[string]string, error) {
	m := map[string]string{}
	for _, sec := range sections {
		s, err := node.Info(ctx, sec).Result()
		if err != nil {
			return nil, fmt.Errorf("INFO %s: %w", sec, err)
		}
		for line := range strings.Lines(s) {
			k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
			if ok && !strings.HasPrefix(k, "#") {
				m[k] = v
			}
		}
	}
	return m, nil
}
