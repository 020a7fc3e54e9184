package faultproxy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// ErrClosed is returned by the methods of a Proxy that was closed.
var ErrClosed = errors.New("faultproxy: proxy closed")

// dialTimeout bounds the connection to the upstream for each accepted
// connection.
const dialTimeout = 2 * time.Second

// relisten bounds how long a proxy retries to listen on its address again
// after a Refuse was removed.
const (
	relistenTries = 100
	relistenPause = 20 * time.Millisecond
)

// Stats counts what a Proxy has done since Start.
type Stats struct {
	Accepted int64 // connections accepted
	Reset    int64 // connections reset by the Reset fault or by Cut
	Open     int   // connections open now
}

// Proxy forwards loopback TCP connections to an upstream address, with the
// faults in force applied. It is safe for concurrent use. Make one with
// Start and Close it when done.
type Proxy struct {
	addr     string // the listen address, fixed after Start
	upstream string

	mu     sync.Mutex // guards every field below
	ln     net.Listener
	faults map[string]Fault
	eff    effect
	gate   chan struct{} // closed while no Stall is in force
	links  map[*link]struct{}
	stats  Stats
	closed bool

	wg sync.WaitGroup // accept loops and forwarders
}

// link is one proxied connection.
type link struct {
	client, server net.Conn
	done           chan struct{}
	once           sync.Once
}

func (l *link) close(reset bool) {
	l.once.Do(func() {
		if reset {
			if tc, ok := l.client.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // close sends RST instead of FIN
			}
			if tc, ok := l.server.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
		}
		close(l.done)
		_ = l.client.Close()
		if l.server != nil {
			_ = l.server.Close()
		}
	})
}

// Start listens on listenAddr (such as "127.0.0.1:0" for any free port)
// and forwards each connection to upstream. The upstream need not be up:
// a connection the proxy cannot forward is closed.
func Start(listenAddr, upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	gate := make(chan struct{})
	close(gate)
	p := &Proxy{
		addr:     ln.Addr().String(),
		upstream: upstream,
		ln:       ln,
		faults:   make(map[string]Fault),
		gate:     gate,
		links:    make(map[*link]struct{}),
	}
	p.wg.Add(1)
	go p.accept(ln)
	return p, nil
}

// Addr is the address the proxy listens on (host:port).
func (p *Proxy) Addr() string { return p.addr }

// Upstream is the address the proxy forwards to.
func (p *Proxy) Upstream() string { return p.upstream }

// Set puts f in force under name, replacing the fault of that name if any.
func (p *Proxy) Set(name string, f Fault) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	p.faults[name] = f
	return p.applyLocked()
}

// Remove takes away the fault called name; removing a name not in force
// does nothing.
func (p *Proxy) Remove(name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	delete(p.faults, name)
	return p.applyLocked()
}

// Clear takes away every fault: the link is clean again. Connections cut
// meanwhile stay cut.
func (p *Proxy) Clear() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	clear(p.faults)
	return p.applyLocked()
}

// Faults returns the names of the faults in force and what they are.
func (p *Proxy) Faults() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]string, len(p.faults))
	for name, f := range p.faults {
		out[name] = f.String()
	}
	return out
}

// Cut resets every connection open now, in both directions, and returns
// how many it reset. New connections are not affected.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.stats.Reset += int64(len(links))
	p.mu.Unlock()
	for _, l := range links {
		l.close(true)
	}
	return len(links)
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Open = len(p.links)
	return s
}

// Close stops listening, resets every open connection and waits for the
// proxy's goroutines to end. Closing twice returns ErrClosed.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.closed = true
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	if p.eff.stall {
		close(p.gate) // release held forwarders so that they see their link closed
	}
	p.mu.Unlock()
	p.Cut()
	p.wg.Wait()
	return nil
}

// applyLocked recomputes the effect of the faults and acts on a change of
// the listener or of the stall gate.
func (p *Proxy) applyLocked() error {
	old := p.eff
	p.eff = combine(p.faults)
	switch {
	case p.eff.stall && !old.stall:
		p.gate = make(chan struct{})
	case !p.eff.stall && old.stall:
		close(p.gate)
	}
	switch {
	case p.eff.refuse && p.ln != nil:
		_ = p.ln.Close() // the accept loop ends
		p.ln = nil
	case !p.eff.refuse && p.ln == nil:
		ln, err := relistenOn(p.addr)
		if err != nil {
			return err
		}
		p.ln = ln
		p.wg.Add(1)
		go p.accept(ln)
	}
	return nil
}

// relistenOn listens on addr again, retrying for a bounded time while the
// kernel still holds the port.
func relistenOn(addr string) (net.Listener, error) {
	var err error
	for range relistenTries {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln, nil
		}
		time.Sleep(relistenPause)
	}
	return nil, fmt.Errorf("faultproxy: listen again on %s: %w", addr, err)
}

func (p *Proxy) accept(ln net.Listener) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed by Refuse or Close
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = c.Close()
			return
		}
		p.stats.Accepted++
		reset := p.eff.reset
		if reset {
			p.stats.Reset++
		}
		p.wg.Add(1)
		p.mu.Unlock()
		if reset {
			(&link{client: c, done: make(chan struct{})}).close(true)
			p.wg.Done()
			continue
		}
		go p.serve(c)
	}
}

// serve connects c to the upstream and forwards both ways until either
// side closes.
func (p *Proxy) serve(c net.Conn) {
	defer p.wg.Done()
	s, err := net.DialTimeout("tcp", p.upstream, dialTimeout)
	if err != nil {
		_ = c.Close()
		return
	}
	l := &link{client: c, server: s, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		l.close(true)
		return
	}
	p.links[l] = struct{}{}
	p.wg.Add(2)
	p.mu.Unlock()
	go p.forward(l, s, c)
	go p.forward(l, c, s)
	<-l.done
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// forward copies src to dst through the faults until the link closes.
func (p *Proxy) forward(l *link, dst, src net.Conn) {
	defer p.wg.Done()
	defer l.close(false)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.hold(l) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// hold waits while a Stall is in force and for the latency in force. It
// reports false when the link closed meanwhile.
func (p *Proxy) hold(l *link) bool {
	for {
		p.mu.Lock()
		gate, eff := p.gate, p.eff
		p.mu.Unlock()
		select {
		case <-gate:
		case <-l.done:
			return false
		}
		d := eff.delay
		if eff.jitter > 0 {
			d += rand.N(eff.jitter + 1)
		}
		if d <= 0 {
			return true
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-l.done:
			t.Stop()
			return false
		}
		p.mu.Lock()
		stalled := p.eff.stall
		p.mu.Unlock()
		if !stalled {
			return true
		}
	}
}
