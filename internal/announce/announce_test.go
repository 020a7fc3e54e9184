package announce_test

import (
	"context"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache/internal/announce"
	"github.com/tokencache/tokencache/internal/redistest"
)

// event is one call of a Handler, as "drop:ID", "all", "up" or "down".
type recorder struct{ ch chan string }

func newRecorder() *recorder       { return &recorder{ch: make(chan string, 100)} }
func (r *recorder) Drop(id string) { r.ch <- "drop:" + id }
func (r *recorder) DropAll()       { r.ch <- "all" }
func (r *recorder) Up()            { r.ch <- "up" }
func (r *recorder) Down()          { r.ch <- "down" }
func (r *recorder) next(t *testing.T) string {
	t.Helper()
	select {
	case e := <-r.ch:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no handler call within 10 s")
		return ""
	}
}

func (r *recorder) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		if got := r.next(t); got != w {
			t.Fatalf("handler call %q, want %q", got, w)
		}
	}
}

// faultConns wraps every connection a client dials, so that a test can cut
// them (as CLIENT KILL does) or make them silent (as a dead peer behind a
// firewall does).
type faultConns struct {
	mu     sync.Mutex
	conns  []*faultConn // guarded by mu
	silent atomic.Bool
}

type faultConn struct {
	net.Conn
	f        *faultConns
	deadline atomic.Int64 // read deadline, Unix ns; 0 none
}

func (c *faultConn) SetDeadline(t time.Time) error {
	c.deadline.Store(unixNano(t))
	return c.Conn.SetDeadline(t)
}

func (c *faultConn) SetReadDeadline(t time.Time) error {
	c.deadline.Store(unixNano(t))
	return c.Conn.SetReadDeadline(t)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// Read, while the connections are silent, delivers nothing until the read
// deadline passes.
func (c *faultConn) Read(p []byte) (int, error) {
	if c.f.silent.Load() {
		d := c.deadline.Load()
		if d == 0 {
			d = time.Now().Add(time.Minute).UnixNano()
		}
		time.Sleep(time.Until(time.Unix(0, d)))
		return 0, os.ErrDeadlineExceeded
	}
	return c.Conn.Read(p)
}

func (f *faultConns) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	fc := &faultConn{Conn: c, f: f}
	f.mu.Lock()
	f.conns = append(f.conns, fc)
	f.mu.Unlock()
	return fc, nil
}

// cut closes every connection dialled so far.
func (f *faultConns) cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		_ = c.Conn.Close()
	}
	f.conns = nil
}

// client returns a client of the test's server whose connections f controls.
func client(t *testing.T, f *faultConns) redis.UniversalClient {
	t.Helper()
	tg := redistest.New(t)
	var c redis.UniversalClient
	switch tg.Kind {
	case redistest.Mini:
		c = redis.NewClient(&redis.Options{Addr: tg.Mini.Addr(), Dialer: f.dial})
	case redistest.Standalone:
		opts, err := redis.ParseURL(os.Getenv(redistest.EnvURL))
		if err != nil {
			t.Fatal(err)
		}
		opts.Dialer = f.dial
		c = redis.NewClient(opts)
	case redistest.Cluster:
		c = redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: strings.Split(os.Getenv(redistest.EnvClusterAddrs), ","), Dialer: f.dial})
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestDeliversIDsAndAll(t *testing.T) {
	f := &faultConns{}
	rdb := client(t, f)
	ns := redistest.Namespace(t)
	rec := newRecorder()
	sub := announce.Subscribe(rdb, ns, rec)
	rec.expect(t, "up")
	ctx := context.Background()
	if err := announce.Publish(ctx, rdb, ns, "id-1"); err != nil {
		t.Fatal(err)
	}
	if err := announce.Publish(ctx, rdb, ns, "id-2", announce.All, "id-3"); err != nil {
		t.Fatal(err)
	}
	// Another namespace's announcements are not ours.
	if err := announce.Publish(ctx, rdb, ns+"x", "other"); err != nil {
		t.Fatal(err)
	}
	if err := announce.Publish(ctx, rdb, ns, "id-4"); err != nil {
		t.Fatal(err)
	}
	// A Cluster client spreads a pipeline's PUBLISH commands over the
	// nodes, so the order between messages is not kept; none is lost.
	want := []string{"all", "drop:id-1", "drop:id-2", "drop:id-3", "drop:id-4"}
	var got []string
	for range want {
		got = append(got, rec.next(t))
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("handler calls %v, want %v in any order", got, want)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, "down")
	if err := sub.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestChannelStartsWithNamespace(t *testing.T) {
	if got := announce.Channel("tokencache"); got != "tokencache:announce" {
		t.Fatalf("Channel = %q, want %q", got, "tokencache:announce")
	}
}

// A cut connection is Down at once, then Up again on a new one, and what is
// published after that arrives.
func TestDownWhenConnectionCut(t *testing.T) {
	f := &faultConns{}
	rdb := client(t, f)
	ns := redistest.Namespace(t)
	rec := newRecorder()
	sub := announce.Subscribe(rdb, ns, rec, announce.WithPingInterval(time.Hour))
	defer sub.Close()
	rec.expect(t, "up")
	start := time.Now()
	f.cut()
	rec.expect(t, "down")
	t.Logf("cut noticed after %v", time.Since(start))
	rec.expect(t, "up")
	if err := announce.Publish(context.Background(), rdb, ns, "after"); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, "drop:after")
}

// A connection that goes silent (nothing arrives, not even the answer to a
// ping) is Down within about two ping intervals.
func TestDownWhenConnectionSilent(t *testing.T) {
	f := &faultConns{}
	rdb := client(t, f)
	ns := redistest.Namespace(t)
	rec := newRecorder()
	const interval = 50 * time.Millisecond
	sub := announce.Subscribe(rdb, ns, rec, announce.WithPingInterval(interval))
	defer sub.Close()
	rec.expect(t, "up")
	start := time.Now()
	f.silent.Store(true)
	rec.expect(t, "down")
	took := time.Since(start)
	if took > 10*interval {
		t.Errorf("silence noticed after %v, want within about 3 intervals of %v", took, interval)
	}
	f.silent.Store(false)
	f.cut()
	rec.expect(t, "up")
}

// A Subscriber of a server that does not answer stays down and keeps
// trying; it is up once the server is back.
func TestUpOnceServerAnswers(t *testing.T) {
	tg := redistest.New(t)
	if tg.Kind != redistest.Mini {
		t.Skip("stops and restarts the server: miniredis only")
	}
	rdb := tg.Client(t)
	ns := redistest.Namespace(t)
	tg.Mini.Close()
	rec := newRecorder()
	sub := announce.Subscribe(rdb, ns, rec, announce.WithPingInterval(20*time.Millisecond))
	defer sub.Close()
	select {
	case e := <-rec.ch:
		t.Fatalf("handler call %q while the server is down", e)
	case <-time.After(200 * time.Millisecond):
	}
	if err := tg.Mini.Restart(); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, "up")
}
