package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
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

	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/internal/redistest"
)

// Every command that talks to Redis connects the same way (package
// connect, through the Factory); each reports a connection failure in one
// line, with exit status 4.
var adminCommands = [][]string{
	{"list"}, {"show", "someid"}, {"show", "--user", "alice", "--client", "c"}, {"revoke", "someid"}, {"purge", "--yes"},
	{"stats"}, {"export"}, {"import", "-"}, {"reindex"}, {"doctor"}, {"healthcheck"},
	{"token", "--user", "alice", "--client", "c", "--token-url", "http://127.0.0.1:1/token"},
	{"worker", "--user", "alice", "--client-id", "c", "--client-secret", "s", "--token-url", "http://127.0.0.1:1/oauth/v2/token"},
	{"demo", "--duration", "3s"},
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
		line := oneLineError(t, c.url, runCLI(t, "", "list", "--redis", c.url), 2)
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
			r := runCLI(t, "", withStoreFlags(args, "--redis", "redis://alice:hunter2pw@127.0.0.1:1/0")...)
			line := oneLineError(t, strings.Join(args, " "), r, 4)
			if want := "tokencache: cannot reach Redis at 127.0.0.1:1: connection refused"; line != want {
				t.Errorf("%v: %q, want %q", args, line, want)
			}
		})
	}
}

func TestUnknownHost(t *testing.T) {
	line := oneLineError(t, "unknown host", runCLI(t, "", "list", "--redis", "redis://:hunter2pw@no-such-host.invalid:6379"), 4)
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
		{"no password", "redis://" + addr, "tokencache: Redis at " + addr + " requires a password: give it in the URL (redis://[user]:PASSWORD@host), in TOKENCACHE_REDIS_PASSWORD or with --redis-password-file"},
		{"wrong password", "redis://:wrong-" + pw + "@" + addr, "tokencache: Redis at " + addr + " refused the credentials of the default user (wrong user name or password)"},
		{"wrong ACL password", "redis://alice:wrong-" + alicepw + "@" + addr, "tokencache: Redis at " + addr + ` refused the credentials of user "alice" (wrong user name or password)`},
		{"unknown ACL user", "redis://mallory:" + alicepw + "@" + addr, "tokencache: Redis at " + addr + ` refused the credentials of user "mallory" (wrong user name or password)`},
	} {
		for _, args := range adminCommands {
			r := runCLI(t, "", withStoreFlags(args, "--redis", c.url)...)
			line := oneLineError(t, c.name, r, 4)
			if line != c.want {
				t.Errorf("%s, %v: %q\nwant %q", c.name, args, line, c.want)
			}
			if strings.Contains(line, pw) || strings.Contains(line, alicepw) {
				t.Errorf("%s: a password is in %q", c.name, line)
			}
		}
	}
	for _, u := range []string{"redis://:" + pw + "@" + addr + "/0", "redis://alice:" + alicepw + "@" + addr} {
		r := runCLI(t, "", "stats", "--redis", u, "--namespace", redistest.Namespace(t))
		wantCode(t, "the right credentials", r, 0)
	}
	// The password from the environment or a file, not the URL.
	t.Setenv(cli.EnvRedisPassword, pw)
	r := runCLI(t, "", "stats", "--redis", "redis://"+addr, "--namespace", redistest.Namespace(t))
	wantCode(t, cli.EnvRedisPassword, r, 0)
	t.Setenv(cli.EnvRedisPassword, "")
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte(alicepw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, "", "stats", "--redis", "redis://alice@"+addr, "--redis-password-file", file, "--namespace", redistest.Namespace(t))
	wantCode(t, "--redis-password-file", r, 0)
	line := oneLineError(t, "password twice", runCLI(t, "", "stats", "--redis", "redis://:"+pw+"@"+addr, "--redis-password-file", file), 2)
	if !strings.Contains(line, "give the Redis password once") || strings.Contains(line, pw) {
		t.Errorf("password twice: %q", line)
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
		line := oneLineError(t, "rediss", runCLI(t, "", "list", "--redis", "rediss://alice:alicepw@"+addr), 4)
		want := "tokencache: TLS handshake with Redis at " + addr + " failed: certificate signed by unknown authority"
		t.Log(line)
		if !strings.HasPrefix(line, want) || strings.Contains(line, "alicepw") {
			t.Errorf("rediss:// to an untrusted server: %q, want it to start with %q", line, want)
		}
	})
	t.Run("plain text to a TLS port", func(t *testing.T) {
		line := oneLineError(t, "redis", runCLI(t, "", "list", "--redis", "redis://alice:alicepw@"+addr), 4)
		t.Log(line)
		if !strings.HasPrefix(line, "tokencache: cannot reach Redis at "+addr+": ") || !strings.Contains(line, "rediss://") || strings.Contains(line, "alicepw") {
			t.Errorf("redis:// to a TLS port: %q", line)
		}
	})
	t.Run("TLS to a plain-text port", func(t *testing.T) {
		plain := miniredis.RunT(t)
		line := oneLineError(t, "rediss", runCLI(t, "", "list", "--redis", "rediss://"+plain.Addr()), 4)
		t.Log(line)
		if !strings.HasPrefix(line, "tokencache: cannot reach Redis at "+plain.Addr()+": ") || !strings.Contains(line, "use redis://") {
			t.Errorf("rediss:// to a plain-text port: %q", line)
		}
	})
	t.Run("trusted certificate", func(t *testing.T) {
		ca := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
			t.Fatal(err)
		}
		_ = pool
		ns := redistest.Namespace(t)
		for _, u := range []string{"rediss://alice:alicepw@" + addr, "redis://alice:alicepw@" + addr} {
			// --tls-ca trusts the CA, and turns TLS on for redis:// too.
			r := runCLI(t, "", "stats", "--redis", u, "--tls-ca", ca, "--namespace", ns)
			wantCode(t, u+" --tls-ca", r, 0)
		}
		line := oneLineError(t, "bad --tls-ca", runCLI(t, "", "list", "--redis", "rediss://"+addr, "--tls-ca", filepath.Join(t.TempDir(), "none.pem")), 2)
		if !strings.Contains(line, "--tls-ca") {
			t.Errorf("bad --tls-ca: %q", line)
		}
		line = oneLineError(t, "cert without key", runCLI(t, "", "list", "--redis", "rediss://"+addr, "--tls-cert", ca), 2)
		if !strings.Contains(line, "--tls-cert and --tls-key go together") {
			t.Errorf("cert without key: %q", line)
		}
	})
}

func TestHelpNeverShowsThePasswordFromTheEnvironment(t *testing.T) {
	t.Setenv(cli.EnvRedisURL, "redis://alice:hunter2pw@127.0.0.1:6379/0")
	r := runCLI(t, "", "list", "--help")
	wantCode(t, "list --help", r, 0)
	if strings.Contains(r.stdout+r.stderr, "hunter2pw") || !strings.Contains(r.stdout, cli.EnvRedisURL) {
		t.Errorf("help shows:\n%s", r.stdout)
	}
}
