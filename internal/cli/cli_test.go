package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/connect"
)

func TestExitCode(t *testing.T) {
	_, badURL := connect.Parse(connect.Options{URL: "nope"})
	for _, c := range []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, ExitOK},
		{"plain failure", errors.New("boom"), ExitFailure},
		{"usage", UsageErrorf("--x: bad"), ExitUsage},
		{"wrapped usage", fmt.Errorf("ctx: %w", UsageErrorf("--x: bad")), ExitUsage},
		{"bad URL", badURL, ExitUsage},
		{"not found", &NotFoundError{Msg: "no token"}, ExitNotFound},
		{"store not found", fmt.Errorf("x: %w", tokencache.ErrNotFound), ExitNotFound},
		{"unreachable record", &UnreachableError{Err: errors.New("db down")}, ExitUnreachable},
		{"connection refused mid-command", fmt.Errorf("line 3: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), ExitUnreachable},
		{"connection cut", fmt.Errorf("line 3: %w", io.EOF), ExitUnreachable},
		{"closed client", redis.ErrClosed, ExitUnreachable},
		{"pool timeout", redis.ErrPoolTimeout, ExitUnreachable},
		{"a missing file is no outage", &os.PathError{Op: "open", Path: "x", Err: syscall.ENOENT}, ExitFailure},
		{"interrupted", context.Canceled, ExitFailure},
		{"invalid token", tokencache.ErrInvalidToken, ExitFailure},
	} {
		if got := ExitCode(c.err); got != c.want {
			t.Errorf("%s: ExitCode(%v) = %d, want %d", c.name, c.err, got, c.want)
		}
	}
	if !errors.Is(&NotFoundError{Msg: "x"}, tokencache.ErrNotFound) {
		t.Error("NotFoundError does not match tokencache.ErrNotFound")
	}
}

// command returns a command with the store flags bound to s, parsed from args.
func command(t *testing.T, s *Settings, args ...string) *cobra.Command {
	t.Helper()
	cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	s.AddStoreFlags(cmd)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	return cmd
}

func TestSettingsFromFlagsAndEnvironment(t *testing.T) {
	t.Setenv(EnvRedisURL, "redis://env:6379")
	t.Setenv(EnvNamespace, "envns")
	t.Setenv(EnvRefreshRetention, "48h")
	t.Setenv(EnvDurable, "sqlite:/env.db")

	s := &Settings{}
	if err := s.Resolve(command(t, s)); err != nil {
		t.Fatal(err)
	}
	if s.RedisURL != "redis://env:6379" || s.Namespace != "envns" || s.RefreshRetention != 48*time.Hour || s.Durable != "sqlite:/env.db" {
		t.Errorf("from the environment: %+v", s)
	}
	// A flag beats its variable.
	s = &Settings{}
	if err := s.Resolve(command(t, s, "--redis", "redis://flag:1", "--namespace", "flagns", "--refresh-retention", "0", "--durable", "sqlite:/flag.db")); err != nil {
		t.Fatal(err)
	}
	if s.RedisURL != "redis://flag:1" || s.Namespace != "flagns" || s.RefreshRetention != 0 || s.Durable != "sqlite:/flag.db" {
		t.Errorf("from the flags: %+v", s)
	}
	t.Setenv(EnvRefreshRetention, "soon")
	s = &Settings{}
	if err := s.Resolve(command(t, s)); ExitCode(err) != ExitUsage {
		t.Errorf("a bad %s: %v, want a usage error", EnvRefreshRetention, err)
	}
	t.Setenv(EnvRefreshRetention, "")
	s = &Settings{}
	if err := s.Resolve(command(t, s, "--refresh-retention", "-1h")); ExitCode(err) != ExitUsage {
		t.Errorf("a negative retention: %v, want a usage error", err)
	}
}

func TestIndexKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	text := write("text", "correct horse battery staple\n")
	binary := write("binary", "base64:AAEC/w==\n")
	empty := write("empty", "\n")

	for _, c := range []struct {
		name string
		file string
		env  string
		want string
		code int
	}{
		{"none", "", "", "", ExitOK},
		{"text file, newline dropped", text, "", "correct horse battery staple", ExitOK},
		{"base64 file", binary, "", "\x00\x01\x02\xff", ExitOK},
		{"environment", "", "envkey", "envkey", ExitOK},
		{"environment base64", "", "base64:aGk=", "hi", ExitOK},
		{"both", text, "envkey", "", ExitUsage},
		{"empty file", empty, "", "", ExitUsage},
		{"missing file", filepath.Join(dir, "missing"), "", "", ExitUsage},
		{"bad base64", "", "base64:%%%", "", ExitUsage},
	} {
		t.Setenv(EnvIndexKey, c.env)
		s := &Settings{IndexKeyFile: c.file}
		key, err := s.IndexKey()
		if got := ExitCode(err); got != c.code || string(key) != c.want {
			t.Errorf("%s: key %q, %v (exit %d); want %q, exit %d", c.name, key, err, got, c.want, c.code)
		}
		if err != nil && (c.env != "" && c.env != "base64:%%%" && strings.Contains(err.Error(), c.env)) {
			t.Errorf("%s: the key is in the error %q", c.name, err)
		}
	}
}
