package faultproxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// echoServer answers every line with the same line, until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(c, c)
				_ = c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func startProxy(t *testing.T) *Proxy {
	t.Helper()
	p, err := Start("127.0.0.1:0", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

type client struct {
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &client{c: c, r: bufio.NewReader(c)}
}

// roundTrip sends a line and returns the echo, or an error after timeout.
func (c *client) roundTrip(line string, timeout time.Duration) (string, error) {
	_ = c.c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c.c, line+"\n"); err != nil {
		return "", err
	}
	got, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return got[:len(got)-1], nil
}

func mustRoundTrip(t *testing.T, c *client, line string) {
	t.Helper()
	got, err := c.roundTrip(line, 2*time.Second)
	if err != nil {
		t.Fatalf("round trip %q: %v", line, err)
	}
	if got != line {
		t.Fatalf("echo = %q, want %q", got, line)
	}
}

func TestForwards(t *testing.T) {
	p := startProxy(t)
	c := dial(t, p.Addr())
	mustRoundTrip(t, c, "hello")
	mustRoundTrip(t, c, "again")
	if got := p.Stats(); got.Accepted != 1 || got.Open != 1 {
		t.Fatalf("stats = %+v, want 1 accepted, 1 open", got)
	}
}

func TestLatency(t *testing.T) {
	p := startProxy(t)
	c := dial(t, p.Addr())
	if err := p.Set("slow", Latency(60*time.Millisecond, 0)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	mustRoundTrip(t, c, "x")
	// Both directions are delayed: at least two delays.
	if d := time.Since(start); d < 120*time.Millisecond {
		t.Fatalf("round trip took %v, want >= 120ms", d)
	}
	if err := p.Remove("slow"); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	mustRoundTrip(t, c, "y")
	if d := time.Since(start); d >= 100*time.Millisecond {
		t.Fatalf("round trip after Remove took %v, want < 100ms", d)
	}
}

func TestStallHoldsThenDelivers(t *testing.T) {
	p := startProxy(t)
	old := dial(t, p.Addr())
	mustRoundTrip(t, old, "before")
	if err := p.Set("hang", Stall()); err != nil {
		t.Fatal(err)
	}
	if _, err := old.roundTrip("held", 200*time.Millisecond); !isTimeout(err) {
		t.Fatalf("round trip during stall: err = %v, want a timeout", err)
	}
	// A new connection is accepted but hangs too.
	fresh := dial(t, p.Addr())
	if _, err := fresh.roundTrip("new", 200*time.Millisecond); !isTimeout(err) {
		t.Fatalf("new connection during stall: err = %v, want a timeout", err)
	}
	if err := p.Clear(); err != nil {
		t.Fatal(err)
	}
	// The held bytes arrive in order once the stall ends.
	_ = old.c.SetDeadline(time.Now().Add(2 * time.Second))
	if got, err := old.r.ReadString('\n'); err != nil || got != "held\n" {
		t.Fatalf("after stall read %q, %v; want the held line", got, err)
	}
	_ = fresh.c.SetDeadline(time.Now().Add(2 * time.Second))
	if got, err := fresh.r.ReadString('\n'); err != nil || got != "new\n" {
		t.Fatalf("after stall read %q, %v; want the held line", got, err)
	}
	mustRoundTrip(t, old, "after")
}

func TestRefuseThenRestore(t *testing.T) {
	p := startProxy(t)
	open := dial(t, p.Addr())
	if err := p.Set("down", Refuse()); err != nil {
		t.Fatal(err)
	}
	_, err := net.DialTimeout("tcp", p.Addr(), time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial while refusing: err = %v, want ECONNREFUSED", err)
	}
	// Refuse leaves open connections alone.
	mustRoundTrip(t, open, "still")
	if err := p.Remove("down"); err != nil {
		t.Fatal(err)
	}
	mustRoundTrip(t, dial(t, p.Addr()), "back")
}

func TestResetNewConnections(t *testing.T) {
	p := startProxy(t)
	open := dial(t, p.Addr())
	mustRoundTrip(t, open, "accepted") // the proxy has accepted it before Reset is set
	if err := p.Set("rst", Reset()); err != nil {
		t.Fatal(err)
	}
	// The reset may already reach the client's connect (a reset by peer
	// at dial) or only its first round trip: either is a reset.
	if nc, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c := &client{c: nc, r: bufio.NewReader(nc)}
		t.Cleanup(func() { _ = nc.Close() })
		if _, err := c.roundTrip("x", time.Second); err == nil {
			t.Fatal("round trip on a reset connection succeeded")
		}
	}
	mustRoundTrip(t, open, "unaffected")
	if err := p.Clear(); err != nil {
		t.Fatal(err)
	}
	mustRoundTrip(t, dial(t, p.Addr()), "clean")
}

func TestCutResetsOpenConnections(t *testing.T) {
	p := startProxy(t)
	a, b := dial(t, p.Addr()), dial(t, p.Addr())
	mustRoundTrip(t, a, "a")
	mustRoundTrip(t, b, "b")
	if n := p.Cut(); n != 2 {
		t.Fatalf("Cut reset %d connections, want 2", n)
	}
	for _, c := range []*client{a, b} {
		_, err := c.roundTrip("x", time.Second)
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) && !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("round trip after Cut: err = %v, want a reset", err)
		}
	}
	mustRoundTrip(t, dial(t, p.Addr()), "new")
}

func TestFaultsCompose(t *testing.T) {
	p := startProxy(t)
	c := dial(t, p.Addr())
	for name, f := range map[string]Fault{"a": Latency(20*time.Millisecond, 0), "b": Latency(20*time.Millisecond, 0), "s": Stall()} {
		if err := p.Set(name, f); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(p.Faults()); got != 3 {
		t.Fatalf("%d faults in force, want 3", got)
	}
	if _, err := c.roundTrip("x", 150*time.Millisecond); !isTimeout(err) {
		t.Fatalf("with a stall among the faults: err = %v, want a timeout", err)
	}
	// Removing the stall leaves both latencies: 2 × 40 ms per round trip.
	if err := p.Remove("s"); err != nil {
		t.Fatal(err)
	}
	_ = c.c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	mustRoundTrip(t, c, "y")
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Fatalf("round trip with two latencies took %v, want >= 80ms", d)
	}
}

func TestClose(t *testing.T) {
	p, err := Start("127.0.0.1:0", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p.Addr())
	if err := p.Set("s", Stall()); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c.c, "held\n"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not return while a connection was stalled")
	}
	if err := p.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
	if err := p.Set("x", Stall()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Set after Close: %v, want ErrClosed", err)
	}
}

func TestUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	p, err := Start("127.0.0.1:0", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	c := dial(t, p.Addr())
	if _, err := c.roundTrip("x", time.Second); err == nil || isTimeout(err) {
		t.Fatalf("round trip with the upstream down: err = %v, want the connection closed", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
