// Package redistest gives tests a Redis to talk to: an embedded miniredis by
// default, the real Redis at REDIS_URL, or the Redis Cluster at
// TOKENCACHE_CLUSTER_ADDRS. With TOKENCACHE_REQUIRE_REDIS=1 a real server
// that does not answer fails the test instead of skipping it, and so does
// the lack of one: CI never passes on miniredis by accident.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Environment variables that choose the server.
const (
	EnvURL          = "REDIS_URL"
	EnvClusterAddrs = "TOKENCACHE_CLUSTER_ADDRS"
	EnvRequire      = "TOKENCACHE_REQUIRE_REDIS"
)

// Kind names the server a Target talks to.
type Kind string

// The kinds of server.
const (
	Mini       Kind = "miniredis"
	Standalone Kind = "redis"
	Cluster    Kind = "cluster"
)

// Target is the server a test talks to.
type Target struct {
	Kind Kind
	// Mini is the embedded server when Kind is Mini, else nil. Tests use it
	// to move time forward (FastForward) or to stop the server.
	Mini      *miniredis.Miniredis
	newClient func() redis.UniversalClient
	env       []string // what makes a child process's New find this server
}

// ExpireOnWallClock makes keys expire by themselves as time passes, as in a
// real Redis, which tests of locks need: miniredis otherwise expires keys
// only when told to (FastForward). It returns tg. It costs miniredis speed
// on every command, so tests that do not need it leave it off. Real servers
// always behave so.
func (tg *Target) ExpireOnWallClock() *Target {
	if tg.Mini != nil {
		tg.Mini.ClockTTL(true)
	}
	return tg
}

// Env returns the environment entries that make New, in a child process,
// talk to the same server: a test that starts helper processes appends
// them to the child's environment.
func (tg *Target) Env() []string { return append([]string(nil), tg.env...) }

// Required reports whether TOKENCACHE_REQUIRE_REDIS asks for a real server.
func Required() bool { return os.Getenv(EnvRequire) == "1" }

// New returns the target for this test run. On miniredis every call starts
// a fresh server; real servers are shared, so tests isolate themselves with
// Namespace.
func New(t testing.TB) *Target {
	t.Helper()
	if addrs := os.Getenv(EnvClusterAddrs); addrs != "" {
		list := strings.Split(addrs, ",")
		tg := &Target{Kind: Cluster, env: []string{EnvClusterAddrs + "=" + addrs}, newClient: func() redis.UniversalClient {
			return redis.NewClusterClient(&redis.ClusterOptions{Addrs: list, ContextTimeoutEnabled: true})
		}}
		tg.ping(t, addrs)
		return tg
	}
	if url := os.Getenv(EnvURL); url != "" {
		opts, err := redis.ParseURL(url)
		if err != nil {
			t.Fatalf("redistest: %s: %v", EnvURL, err)
		}
		opts.ContextTimeoutEnabled = true
		tg := &Target{Kind: Standalone, env: []string{EnvURL + "=" + url}, newClient: func() redis.UniversalClient {
			o := *opts
			return redis.NewClient(&o)
		}}
		tg.ping(t, opts.Addr)
		return tg
	}
	if Required() {
		t.Fatalf("redistest: %s=1 but neither %s nor %s names a server", EnvRequire, EnvURL, EnvClusterAddrs)
	}
	mr := miniredis.RunT(t)
	return &Target{Kind: Mini, Mini: mr, env: []string{EnvURL + "=redis://" + mr.Addr()}, newClient: func() redis.UniversalClient {
		return redis.NewClient(&redis.Options{Addr: mr.Addr(), ContextTimeoutEnabled: true})
	}}
}

// ping skips the test, or fails it when a real server is required, unless
// the server answers.
func (tg *Target) ping(t testing.TB, where string) {
	t.Helper()
	c := tg.newClient()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		if Required() {
			t.Fatalf("redistest: %s Redis at %s does not answer: %v", tg.Kind, where, err)
		}
		t.Skipf("redistest: %s Redis at %s does not answer (%v); set %s=1 to make this a failure", tg.Kind, where, err, EnvRequire)
	}
}

// Client returns a new client of the target, closed when the test ends.
func (tg *Target) Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	c := tg.newClient()
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Namespace returns a namespace no other test uses, so that tests sharing a
// real server never see each other's keys.
func Namespace(t testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "tctest-" + hex.EncodeToString(b[:])
}

// Keys returns every key whose name starts with prefix, on every master of
// a cluster. It uses SCAN, and is for assertions in tests only.
func Keys(t testing.TB, c redis.UniversalClient, prefix string) []string {
	t.Helper()
	ctx := context.Background()
	var (
		mu   sync.Mutex // guards keys: ForEachMaster scans the masters in parallel
		keys []string
	)
	scan := func(ctx context.Context, node redis.Cmdable) error {
		iter := node.Scan(ctx, 0, escapeGlob(prefix)+"*", 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys = append(keys, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	if cc, ok := c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return scan(ctx, node)
		})
	} else {
		err = scan(ctx, c)
	}
	if err != nil {
		t.Fatalf("redistest: scanning %q: %v", prefix, err)
	}
	return keys
}

// escapeGlob escapes the characters SCAN MATCH would interpret.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\', '^', '-':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// DropNamespaceAtCleanup deletes, when the test ends, every key whose name
// starts with ns+":" — a namespace from Namespace is the test's own, so this
// removes only what the test made, including what a store cannot reach
// (index entries a test orphaned on purpose, locks, cooldowns).
func DropNamespaceAtCleanup(t testing.TB, c redis.UniversalClient, ns string) {
	t.Helper()
	t.Cleanup(func() {
		ctx := context.Background()
		for _, key := range Keys(t, c, ns+":") {
			_ = c.Del(ctx, key).Err() // one key per command: cluster-safe
		}
	})
}
