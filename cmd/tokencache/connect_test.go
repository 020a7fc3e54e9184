package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/tokencache/tokencache/internal/redistest"
)

// Every admin command connects the same way; each reports a connection
// failure in one line.
var adminCommands = [][]string{
	{"list"}, {"show", "someid"}, {"revoke", "someid"}, {"purge", "--yes"},
	{"stats"}, {"export"}, {"import", "-"},
}

func TestBadURL(t *testing.T) {
	for _, c := range []struct {
		url, want string
	}{
		{"http://127.0.0.1:6379", "invalid --redis URL: invalid URL scheme: http"},
		{"127.0.0.1:6379", "invalid --redis URL: no scheme"},
		{"redis://user:hunter2pw@host:notaport", `invalid --redis URL: invalid port ":notaport" after host`},
		{"redis://:hunter2pw%zz@127.0.0.1", "invalid --redis URL: malformed %-escape"},
		{"redis://:hunter2pw@127.0.0.1/abc", `invalid --redis URL: invalid database number: "abc"`},
		{"redis://:hunter2pw@127.0.0.1:6379?colour=blue", "invalid --redis URL: unexpected option: colour"},
		{"redis://:hunter2pw@127.0.0.1:6379/1/2", "invalid --redis URL: invalid URL path"},
		{"redis://a b:hunter2pw@127.0.0.1", "invalid --redis URL: "},
	} {
		line := oneLineError(t, c.url, runCLI(t, "", "--redis", c.url, "list"))
		if !strings.HasPrefix(line, "tokencache: "+c.want) {
			t.Errorf("--redis %s: %q, want it to start with %q", c.url, line, "tokencache: "+c.want)
		}
		if strings.Contains(line, "hunter2pw") {
			t.Errorf("--redis %s: the password is in %q", c.url, line)
		}
	}
}

func TestUnreachableRedis(t *testing.T) {
	for _, args := range adminCommands {
		t.Run(args[0], func(t *testing.T) {
			t.Parallel() // each waits out go-redis's retries
			r := runCLI(t, "", append([]string{"--redis", "redis://alice:hunter2pw@127.0.0.1:1/0"}, args...)...)
			line := oneLineError(t, strings.Join(args, " "), r)
			if want := "tokencache: cannot reach Redis at 127.0.0.1:1: connection refused"; line != want {
				t.Errorf("%v: %q, want %q", args, line, want)
			}
		})
	}
}

func TestUnknownHost(t *testing.T) {
	line := oneLineError(t, "unknown host", runCLI(t, "", "--redis", "redis://:hunter2pw@no-such-host.invalid:6379", "list"))
	if !strings.HasPrefix(line, "tokencache: cannot reach Redis at no-such-host.invalid:6379: ") || strings.Contains(line, "hunter2pw") {
		t.Errorf("unknown host: %q", line)
	}
}

// credentialCases runs the credential checks against a server at addr that
// wants password pw for the default user and alicepw for user alice.
func credentialCases(t *testing.T, addr, pw, alicepw string) {
	t.Helper()
	for _, c := range []struct {
		name, url, want string
	}{
		{"no password", "redis://" + addr, "tokencache: Redis at " + addr + " requires a password: give it in the URL, redis://[user]:PASSWORD@" + addr},
		{"wrong password", "redis://:wrong-" + pw + "@" + addr, "tokencache: Redis at " + addr + " refused the credentials of the default user (wrong user name or password)"},
		{"wrong ACL password", "redis://alice:wrong-" + alicepw + "@" + addr, "tokencache: Redis at " + addr + ` refused the credentials of user "alice" (wrong user name or password)`},
		{"unknown ACL user", "redis://mallory:" + alicepw + "@" + addr, "tokencache: Redis at " + addr + ` refused the credentials of user "mallory" (wrong user name or password)`},
	} {
		for _, args := range adminCommands {
			r := runCLI(t, "", append([]string{"--redis", c.url}, args...)...)
			line := oneLineError(t, c.name, r)
			if line != c.want {
				t.Errorf("%s, %v: %q\nwant %q", c.name, args, line, c.want)
			}
			if strings.Contains(line, pw) || strings.Contains(line, alicepw) {
				t.Errorf("%s: a password is in %q", c.name, line)
			}
		}
	}
	for _, u := range []string{"redis://:" + pw + "@" + addr + "/0", "redis://alice:" + alicepw + "@" + addr} {
		r := runCLI(t, "", "--redis", u, "--namespace", redistest.Namespace(t), "stats")
		wantCode(t, "the right credentials", r, 0)
	}
}

func TestWrongPasswordMiniredis(t *testing.T) {
	mr := miniredis.RunT(t)
	mr.RequireAuth("defaultpw")
	mr.RequireUserAuth("alice", "alicepw")
	credentialCases(t, mr.Addr(), "defaultpw", "alicepw")
}

// TestWrongPasswordRealRedis starts a redis-server of its own with a
// password and an ACL user, on a spare port, and kills it at the end.
func TestWrongPasswordRealRedis(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if redistest.Required() {
			t.Fatalf("%s=1 and no redis-server on PATH", redistest.EnvRequire)
		}
		t.Skip("no redis-server on PATH")
	}
	addr := startRedisServer(t, bin, "requirepass defaultpw\nuser alice on >alicepw ~* &* +@all\n")
	credentialCases(t, addr, "defaultpw", "alicepw")
}

// startRedisServer runs redis-server with this extra configuration on a
// spare loopback port, without persistence, and returns its address. The
// server is killed, by its PID, when the test ends.
func startRedisServer(t *testing.T, bin, config string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	l.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "redis.conf")
	full := fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\nsave \"\"\nappendonly no\n%s", port, dir, config)
	if err := os.WriteFile(conf, []byte(full), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, conf)
	log := filepath.Join(dir, "redis.log")
	logFile, err := os.Create(log)
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
			out, _ := os.ReadFile(log)
			t.Fatalf("redis-server on %s did not start: %v\n%s", addr, err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// selfSigned returns a certificate for 127.0.0.1 that is its own CA.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tokencache test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	mr := miniredis.NewMiniRedis()
	if err := mr.StartTLS(&tls.Config{Certificates: []tls.Certificate{cert}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mr.Close)
	mr.RequireUserAuth("alice", "alicepw")
	addr := mr.Addr()

	t.Run("untrusted certificate", func(t *testing.T) {
		line := oneLineError(t, "rediss", runCLI(t, "", "--redis", "rediss://alice:alicepw@"+addr, "list"))
		want := "tokencache: TLS handshake with Redis at " + addr + " failed: certificate signed by unknown authority"
		t.Log(line)
		if !strings.HasPrefix(line, want) || strings.Contains(line, "alicepw") {
			t.Errorf("rediss:// to an untrusted server: %q, want it to start with %q", line, want)
		}
	})
	t.Run("plain text to a TLS port", func(t *testing.T) {
		line := oneLineError(t, "redis", runCLI(t, "", "--redis", "redis://alice:alicepw@"+addr, "list"))
		t.Log(line)
		if !strings.HasPrefix(line, "tokencache: cannot reach Redis at "+addr+": ") || !strings.Contains(line, "rediss://") || strings.Contains(line, "alicepw") {
			t.Errorf("redis:// to a TLS port: %q", line)
		}
	})
	t.Run("TLS to a plain-text port", func(t *testing.T) {
		plain := miniredis.RunT(t)
		line := oneLineError(t, "rediss", runCLI(t, "", "--redis", "rediss://"+plain.Addr(), "list"))
		t.Log(line)
		if !strings.HasPrefix(line, "tokencache: cannot reach Redis at "+plain.Addr()+": ") || !strings.Contains(line, "use redis://") {
			t.Errorf("rediss:// to a plain-text port: %q", line)
		}
	})
	t.Run("trusted certificate", func(t *testing.T) {
		// The command line trusts the system roots; the test adds its CA to
		// the options parseRedisURL made, as SSL_CERT_FILE would.
		ep, err := parseRedisURL("rediss://alice:alicepw@" + addr + "/0")
		if err != nil {
			t.Fatal(err)
		}
		if ep.single == nil || ep.single.TLSConfig == nil || ep.single.Username != "alice" || ep.single.Password != "alicepw" {
			t.Fatalf("rediss:// parsed to %+v", ep.single)
		}
		ep.single.TLSConfig.RootCAs = pool
		rdb := ep.newClient()
		defer rdb.Close()
		if err := rdb.Ping(context.Background()).Err(); err != nil {
			t.Fatalf("PING over TLS: %v", err)
		}
	})
}

func TestParseRedisURL(t *testing.T) {
	ep, err := parseRedisURL("redis://bob:pw@10.0.0.1:6380/3")
	if err != nil {
		t.Fatal(err)
	}
	o := ep.single
	if ep.where != "10.0.0.1:6380" || ep.user != "bob" || ep.tls || o.DB != 3 || o.Password != "pw" ||
		!o.ContextTimeoutEnabled || o.DialTimeout != redisDialTimeout || o.TLSConfig != nil {
		t.Errorf("redis:// parsed to %+v (%+v)", ep, o)
	}
	ep, err = parseRedisURL("redis://127.0.0.1:7001?addr=127.0.0.1:7002&addr=127.0.0.1:7003&dial_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	if ep.cluster == nil || ep.where != "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003" ||
		!ep.cluster.ContextTimeoutEnabled || ep.cluster.DialTimeout != time.Second {
		t.Errorf("cluster URL parsed to %+v", ep)
	}
	if got := scrubPassword("parse redis://u:s%40cret@h and s@cret", "s%40cret"); strings.Contains(got, "cret") {
		t.Errorf("scrubPassword left %q", got)
	}
	if got := urlPassword("redis://u:p:w@h@x:1/0"); got != "p:w@h" {
		t.Errorf("urlPassword = %q", got)
	}
}

func TestHelpMasksThePasswordFromTheEnvironment(t *testing.T) {
	t.Setenv(envRedisURL, "redis://alice:hunter2pw@127.0.0.1:6379/0")
	r := runCLI(t, "", "list", "--help")
	wantCode(t, "list --help", r, 0)
	if strings.Contains(r.stdout+r.stderr, "hunter2pw") || !strings.Contains(r.stdout, `(default "redis://alice:xxxxx@127.0.0.1:6379/0")`) {
		t.Errorf("help shows:\n%s", r.stdout)
	}
	for raw, want := range map[string]string{
		"redis://127.0.0.1:6379/0":      "redis://127.0.0.1:6379/0",
		"rediss://:pw@host:1":           "rediss://:xxxxx@host:1",
		"redis://u:p%zzword@host":       "redis://u:xxxxx@host",
		"unix://u:secretpw@/tmp/r.sock": "unix://u:xxxxx@/tmp/r.sock",
	} {
		if got := urlWithoutPassword(raw); got != want {
			t.Errorf("urlWithoutPassword(%q) = %q, want %q", raw, got, want)
		}
	}
}
