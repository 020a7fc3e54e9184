// Package sqltest gives tests the databases to run sqlstore against: SQLite
// in a temporary file always, PostgreSQL at TOKENCACHE_POSTGRES_URL and
// MySQL or MariaDB at TOKENCACHE_MYSQL_URL when they are set. With
// TOKENCACHE_REQUIRE_DB=1 an unset URL or a server that does not answer
// fails the test instead of skipping it, so CI never passes on SQLite
// alone by accident.
package sqltest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokencache/tokencache/sqlstore"
)

// Environment variables that name the servers.
const (
	EnvPostgres = "TOKENCACHE_POSTGRES_URL"
	EnvMySQL    = "TOKENCACHE_MYSQL_URL"
	EnvRequire  = "TOKENCACHE_REQUIRE_DB"
)

// Required reports whether TOKENCACHE_REQUIRE_DB asks for the real servers.
func Required() bool { return os.Getenv(EnvRequire) == "1" }

// Target is one database to test against.
type Target struct {
	Name string // "sqlite", "postgres" or "mysql"
	// dsn returns the DSN for one test: for SQLite a fresh file in the
	// test's temporary directory, for servers the shared URL.
	dsn func(t testing.TB) string
}

// DSN returns the data source name a test opens; each call for SQLite is a
// new, empty database file.
func (tg Target) DSN(t testing.TB) string { return tg.dsn(t) }

// Targets returns SQLite and every server whose URL is set. A server that
// is not set is skipped with a log line, or fails t under
// TOKENCACHE_REQUIRE_DB=1.
func Targets(t testing.TB) []Target {
	t.Helper()
	out := []Target{SQLite()}
	for _, s := range []struct{ name, env string }{{"postgres", EnvPostgres}, {"mysql", EnvMySQL}} {
		url := os.Getenv(s.env)
		if url == "" {
			if Required() {
				t.Fatalf("%s is not set and %s=1", s.env, EnvRequire)
			}
			t.Logf("%s not set: not testing on %s", s.env, s.name)
			continue
		}
		out = append(out, Target{Name: s.name, dsn: func(testing.TB) string { return url }})
	}
	return out
}

// SQLite is the target every run has.
func SQLite() Target {
	return Target{Name: "sqlite", dsn: func(t testing.TB) string {
		return "sqlite:" + filepath.Join(t.TempDir(), "tokens.db")
	}}
}

// Table returns a table name no other test uses.
func Table(t testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "tt_" + hex.EncodeToString(b[:])
}

// Open opens a Store on a fresh table of tg and drops the table when the
// test ends. A server that does not answer skips the test, or fails it
// under TOKENCACHE_REQUIRE_DB=1.
func Open(t testing.TB, tg Target, opts ...sqlstore.Option) *sqlstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts = append([]sqlstore.Option{sqlstore.WithTable(Table(t))}, opts...)
	s, err := sqlstore.Open(ctx, tg.DSN(t), opts...)
	if err != nil {
		if tg.Name != "sqlite" && !Required() {
			t.Skipf("%s does not answer: %v", tg.Name, err)
		}
		t.Fatalf("sqlstore.Open on %s: %v", tg.Name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.DropTable(ctx); err != nil {
			t.Errorf("dropping the test table: %v", err)
		}
		_ = s.Close()
	})
	return s
}
