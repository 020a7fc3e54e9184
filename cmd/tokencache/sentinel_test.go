package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/internal/redistest"
)

// Loopback ports of the servers these tests start (this package's range).
const (
	sentinelMasterPort = 7300
	sentinelPort       = 7301
	doctorPortBase     = 7310
)

// redisServerBin returns the redis-server binary, or skips the test (fails
// it with TOKENCACHE_REQUIRE_REDIS=1).
func redisServerBin(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if redistest.Required() {
			t.Fatalf("%s=1 and no redis-server on PATH", redistest.EnvRequire)
		}
		t.Skip("no redis-server on PATH")
	}
	return bin
}

// startRedisOn runs redis-server on a loopback port with this configuration
// (plus args, such as --sentinel) and kills it, by its PID, when the test
// ends.
func startRedisOn(t *testing.T, bin string, port int, config string, args ...string) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
		c.Close()
		t.Skipf("port %d is taken", port)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "redis.conf")
	full := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\n%s", port, dir, config)
	if err := os.WriteFile(conf, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{conf}, args...)...)
	logPath := filepath.Join(dir, "redis.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logFile.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logPath)
			t.Fatalf("redis-server on %s did not start: %v\n%s", addr, err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSentinelURLs runs the commands through a Sentinel: a master and one
// Sentinel monitoring it, started here. Both URL forms reach the master;
// a master name the Sentinel does not know is one line and exit 4.
func TestSentinelURLs(t *testing.T) {
	bin := redisServerBin(t)
	master := startRedisOn(t, bin, sentinelMasterPort, "save \"\"\nappendonly no\n")
	sentinel := startRedisOn(t, bin, sentinelPort,
		fmt.Sprintf("sentinel monitor tcmaster %s 1\nsentinel down-after-milliseconds tcmaster 5000\n", strings.Replace(master, ":", " ", 1)),
		"--sentinel")
	ns := redistest.Namespace(t)
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	line := fmt.Sprintf(`{"id":"sent1","user_name":"s","client_id":"c","access_token":"%s-a","refresh_token":"%s-r","expiry":%q}`, secretMark, secretMark, exp)

	common := "redis+sentinel://" + sentinel + "/tcmaster"
	goredis := "redis://" + sentinel + "?master_name=tcmaster"
	r := runCLI(t, line+"\n", "import", "--redis", common, "--namespace", ns)
	wantCode(t, "import through the Sentinel", r, 0)
	for _, u := range []string{common, goredis, "redis://" + master} {
		r := runCLI(t, "", "show", "sent1", "--redis", u, "--namespace", ns)
		wantCode(t, "show through "+u, r, 0)
	}
	wantCode(t, "purge", runCLI(t, "", "purge", "--yes", "--redis", goredis, "--namespace", ns), 0)

	r = runCLI(t, "", "list", "--redis", "redis+sentinel://"+sentinel+"/nosuchmaster")
	line = oneLineError(t, "unknown master", r, cli.ExitUnreachable)
	if !strings.Contains(line, "master nosuchmaster of Sentinels "+sentinel) {
		t.Errorf("unknown master: %q", line)
	}
}

// TestDoctor checks live servers set up to lose tokens, and one that is not.
func TestDoctor(t *testing.T) {
	bin := redisServerBin(t)
	for i, c := range []struct {
		name, config string
		code         int
		want         []string
	}{
		{"no persistence", "save \"\"\nappendonly no\n", cli.ExitFailure,
			[]string{"danger", "no AOF and no RDB snapshots", "fix: CONFIG SET appendonly yes"}},
		{"RDB only and allkeys-lru", "save 900 1\nappendonly no\nmaxmemory 100mb\nmaxmemory-policy allkeys-lru\n", cli.ExitFailure,
			[]string{"RDB snapshots only", "maxmemory-policy allkeys-lru", "fix: CONFIG SET maxmemory-policy noeviction"}},
		{"AOF always, noeviction", "save \"\"\nappendonly yes\nappendfsync always\nmaxmemory-policy noeviction\n", cli.ExitOK,
			[]string{"ok", "AOF with appendfsync always", "no setting found that loses tokens"}},
		{"AOF everysec", "save \"\"\nappendonly yes\nappendfsync everysec\n", cli.ExitOK,
			[]string{"warning", "up to a second", "--durable"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr := startRedisOn(t, bin, doctorPortBase+i, c.config)
			r := runCLI(t, "", "doctor", "--redis", "redis://"+addr)
			wantCode(t, "doctor", r, c.code)
			for _, w := range c.want {
				if !strings.Contains(r.stdout+r.stderr, w) {
					t.Errorf("doctor output lacks %q:\n%s%s", w, r.stdout, r.stderr)
				}
			}
		})
	}
}
