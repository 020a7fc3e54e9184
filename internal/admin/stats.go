package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/internal/keyscan"
	"github.com/tokencache/tokencache/internal/view"
)

// tokenStats counts a namespace's tokens by state, and what they occupy.
type tokenStats struct {
	Namespace           string `json:"namespace"`
	Tokens              int    `json:"tokens"`
	Soon                string `json:"soon"`
	ExpiringSoon        int    `json:"expiring_soon"`
	ExpiredRefreshable  int    `json:"expired_refreshable"`
	WithoutRefreshToken int    `json:"without_refresh_token"`
	NeverExpiring       int    `json:"never_expiring"`
	Keys                int64  `json:"keys"`
	MemoryBytes         *int64 `json:"memory_bytes"` // null when the server cannot tell
	MemoryNote          string `json:"memory_note,omitempty"`
}

// StatsOptions are the settings of stats.
type StatsOptions struct {
	F    *cli.Factory
	JSON bool
	Soon time.Duration
}

// NewCmdStats returns the stats command; runF replaces RunStats in tests.
func NewCmdStats(f *cli.Factory, runF func(context.Context, *StatsOptions) error) *cobra.Command {
	o := &StatsOptions{F: f}
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Count the namespace's tokens and the Redis memory they use",
		Long: `Count the live tokens of the namespace (walked a page at a time, so the
memory does not grow with the store; of the record, with --durable): those whose access token expires
within --soon, those whose access token has expired but that have a refresh
token to renew it, those without a refresh token (they vanish when their
access token expires), and those that never expire.

It also sums MEMORY USAGE over every key whose name starts with the namespace
and a colon (SCAN, on every master of a cluster): the tokens, their index
entries, and the locks and cooldowns of workers using the same namespace. A
namespace that extends this one (NS:more) is counted too. When the server does
not answer MEMORY USAGE, the memory is "n/a" with the reason.`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Soon < 0 {
				return cli.UsageErrorf("--soon must not be negative")
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return RunStats(cmd.Context(), o)
		},
	}
	f.Settings.AddStoreFlags(cmd)
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the numbers as JSON")
	cmd.Flags().DurationVar(&o.Soon, "soon", 5*time.Minute, "how close to expiry an access token counts as expiring soon")
	return cmd
}

// RunStats prints the counts.
func RunStats(ctx context.Context, o *StatsOptions) error {
	return o.F.WithStore(ctx, func(c *cli.Conn) error {
		ns := c.Store.Namespace()
		st := tokenStats{Namespace: ns, Soon: o.Soon.String()}
		now := o.F.Now()
		err := tokencache.WalkStore(ctx, c.Store, func(t tokencache.Token) error {
			st.count(t, now, o.Soon)
			return nil
		})
		if err != nil {
			return err
		}
		usage, err := namespaceMemory(ctx, c.Redis, ns)
		if err != nil {
			return err
		}
		st.Keys = usage.keys
		if usage.note == "" {
			st.MemoryBytes = &usage.bytes
		}
		st.MemoryNote = usage.note
		if o.JSON {
			return writeJSON(o.F.IO.Out, st)
		}
		return st.writeText(o.F.IO.Out, o.Soon)
	})
}

// count adds t to the counts: stats walks the store and keeps no token.
func (st *tokenStats) count(t tokencache.Token, now time.Time, soon time.Duration) {
	st.Tokens++
	switch {
	case t.Expiry.IsZero():
		st.NeverExpiring++
	case !now.Before(t.Expiry):
		if t.RefreshToken != "" {
			st.ExpiredRefreshable++
		}
	case t.ExpiresWithin(now, soon):
		st.ExpiringSoon++
	}
	if t.RefreshToken == "" {
		st.WithoutRefreshToken++
	}
}

func (st tokenStats) writeText(w io.Writer, soon time.Duration) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "namespace:\t%s\n", st.Namespace)
	fmt.Fprintf(tw, "tokens:\t%d\n", st.Tokens)
	fmt.Fprintf(tw, "access token expiring within %s:\t%d\n", soon, st.ExpiringSoon)
	fmt.Fprintf(tw, "access token expired, refreshable:\t%d\n", st.ExpiredRefreshable)
	fmt.Fprintf(tw, "without refresh token:\t%d\n", st.WithoutRefreshToken)
	fmt.Fprintf(tw, "never expiring:\t%d\n", st.NeverExpiring)
	fmt.Fprintf(tw, "redis keys (%s:*):\t%d\n", st.Namespace, st.Keys)
	if st.MemoryBytes != nil {
		per := ""
		if st.Tokens > 0 {
			per = fmt.Sprintf(", %s per token", bytesIEC(*st.MemoryBytes/int64(st.Tokens)))
		}
		fmt.Fprintf(tw, "redis memory:\t%s (%d bytes%s)\n", bytesIEC(*st.MemoryBytes), *st.MemoryBytes, per)
	} else {
		fmt.Fprintf(tw, "redis memory:\tn/a (%s)\n", st.MemoryNote)
	}
	return tw.Flush()
}

// bytesIEC writes n in binary units: 512 B, 1.5 KiB, 3.2 MiB.
func bytesIEC(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n)/unit, 0
	for f >= unit && i < 3 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGT"[i])
}

// memoryUsage is what namespaceMemory found.
type memoryUsage struct {
	keys  int64
	bytes int64
	note  string // why bytes is unknown; "" when it is known
}

// memoryScanBatch is how many keys SCAN asks for at a time, and how many
// MEMORY USAGE commands go in one pipeline.
const memoryScanBatch = 1000

// namespaceMemory counts the keys whose names start with ns+":" and sums
// their MEMORY USAGE. It SCANs (never KEYS) every master of a cluster, and
// asks each node about its own keys in pipelines. A server that refuses
// MEMORY USAGE (an ACL, or a server without it) gives the key count and a
// note instead of the bytes; a network failure is an error.
func namespaceMemory(ctx context.Context, rdb redis.UniversalClient, ns string) (memoryUsage, error) {
	var (
		mu  sync.Mutex // guards total: a cluster's masters are scanned in parallel
		tot memoryUsage
	)
	scan := func(ctx context.Context, node redis.UniversalClient) error {
		u, err := nodeMemory(ctx, node, ns)
		mu.Lock()
		defer mu.Unlock()
		tot.keys += u.keys
		tot.bytes += u.bytes
		if tot.note == "" {
			tot.note = u.note
		}
		return err
	}
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return scan(ctx, node)
		})
	} else {
		err = scan(ctx, rdb)
	}
	if err != nil {
		return memoryUsage{}, fmt.Errorf("measuring the memory of namespace %s: %w", ns, err)
	}
	return tot, nil
}

// memoryForm is how a server is asked for a key's size: SAMPLES 0 makes
// Redis measure every element of a hash or set instead of estimating from
// five; a server that rejects the option is asked without it.
type memoryForm int

const (
	memoryUnknown memoryForm = iota
	memoryAllSamples
	memoryDefault
	memoryUnsupported
)

func nodeMemory(ctx context.Context, node redis.UniversalClient, ns string) (memoryUsage, error) {
	var (
		u    memoryUsage
		form = memoryUnknown
	)
	iter := node.Scan(ctx, 0, keyscan.Pattern(ns), keyscan.Batch).Iterator()
	batch := make([]string, 0, memoryScanBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		defer func() { batch = batch[:0] }()
		u.keys += int64(len(batch))
		if form == memoryUnknown {
			f, note, err := probeMemoryForm(ctx, node, batch[0])
			if err != nil {
				return err
			}
			form, u.note = f, note
		}
		if form == memoryUnsupported {
			return nil
		}
		cmds := make([]*redis.IntCmd, len(batch))
		_, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, key := range batch {
				if form == memoryAllSamples {
					cmds[i] = p.MemoryUsage(ctx, key, 0)
				} else {
					cmds[i] = p.MemoryUsage(ctx, key)
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		for _, c := range cmds {
			n, err := c.Result()
			switch {
			case errors.Is(err, redis.Nil): // expired or deleted since SCAN found it
			case err != nil:
				return err
			default:
				u.bytes += n
			}
		}
		return nil
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == memoryScanBatch {
			if err := flush(); err != nil {
				return u, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return u, err
	}
	return u, flush()
}

// probeMemoryForm finds how the server answers MEMORY USAGE for key. A
// network failure is an error; a server error means the form is refused.
func probeMemoryForm(ctx context.Context, node redis.UniversalClient, key string) (memoryForm, string, error) {
	err := node.MemoryUsage(ctx, key, 0).Err()
	if err == nil || errors.Is(err, redis.Nil) {
		return memoryAllSamples, "", nil
	}
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return memoryUnknown, "", err
	}
	err = node.MemoryUsage(ctx, key).Err()
	if err == nil || errors.Is(err, redis.Nil) {
		return memoryDefault, "", nil
	}
	if !errors.As(err, &rerr) {
		return memoryUnknown, "", err
	}
	return memoryUnsupported, "the server refused MEMORY USAGE: " + singleLine(rerr.Error()), nil
}

// singleLine folds a message onto one line.
func singleLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// writeJSON writes v indented.
func writeJSON(w io.Writer, v any) error { return view.WriteJSON(w, v) }
