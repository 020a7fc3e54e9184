package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/internal/keyscan"
)

// TestDurableRecord: with --durable, tokens survive a flushed Redis, and
// the commands work on the record while Redis is down.
func TestDurableRecord(t *testing.T) {
	e := newAdminEnv(t)
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "record.db")
	wantCode(t, "import with a record", e.run(t, genLines(3, "dur"), "import", "--durable", dsn), 0)

	// Redis loses everything (a restart without persistence).
	if _, err := keyscan.Delete(context.Background(), e.rdb, e.ns); err != nil {
		t.Fatal(err)
	}
	r := e.run(t, "", "list", "--no-headers")
	wantCode(t, "list without the record", r, 0)
	if r.stdout != "" {
		t.Errorf("Redis alone still has tokens:\n%s", r.stdout)
	}
	t.Setenv(cli.EnvDurable, dsn)
	r = e.run(t, "", "list", "--no-headers")
	wantCode(t, "list with the record (TOKENCACHE_DURABLE)", r, 0)
	if n := strings.Count(r.stdout, "\n"); n != 3 {
		t.Errorf("list with the record shows %d tokens, want 3:\n%s", n, r.stdout)
	}
	// Redis down: a warning, and the record answers.
	r = runCLI(t, "", "list", "--no-headers", "--redis", "redis://127.0.0.1:1", "--namespace", e.ns)
	wantCode(t, "list with Redis down", r, 0)
	if n := strings.Count(r.stdout, "\n"); n != 3 || !strings.Contains(r.stderr, "working on the durable record alone") {
		t.Errorf("list with Redis down: %d tokens, stderr %q", n, r.stderr)
	}
	t.Setenv(cli.EnvDurable, "")
	oneLineError(t, "bad DSN", e.run(t, "", "list", "--durable", "oracle://db"), cli.ExitUsage)
	start := time.Now()
	oneLineError(t, "record unreachable", e.run(t, "", "list", "--durable", "postgres://root@127.0.0.1:7398/none?sslmode=disable&connect_timeout=2"), cli.ExitUnreachable)
	if time.Since(start) > 20*time.Second {
		t.Errorf("an unreachable record took %v", time.Since(start))
	}
}
