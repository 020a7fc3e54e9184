package faultproxy

import (
	"fmt"
	"time"
)

// kind is what a Fault does.
type kind int

const (
	kindLatency kind = iota + 1
	kindRefuse
	kindReset
	kindStall
)

// Fault is one fault a Proxy can hold under a name. Make one with Latency,
// Refuse, Reset or Stall; the zero Fault does nothing.
type Fault struct {
	kind   kind
	delay  time.Duration
	jitter time.Duration
}

// Latency delays every chunk of bytes, in both directions, by d plus a
// uniformly random extra of at most jitter. Negative durations count as 0.
func Latency(d, jitter time.Duration) Fault {
	return Fault{kind: kindLatency, delay: max(d, 0), jitter: max(jitter, 0)}
}

// Refuse closes the listener, so that new connections are refused by the
// kernel (ECONNREFUSED) while the fault is in force; open connections are
// left alone (combine with Proxy.Cut for a server that went away). When the
// last Refuse is removed the proxy listens again on the same address.
func Refuse() Fault { return Fault{kind: kindRefuse} }

// Reset accepts new connections and resets them at once (ECONNRESET on the
// client's first read or write); open connections are left alone.
func Reset() Fault { return Fault{kind: kindReset} }

// Stall keeps every connection, open or new, up but forwards no byte in
// either direction: what arrives is held and delivered, in order, once the
// last Stall is removed. New connections are accepted meanwhile. A client
// sees a server that hangs.
func Stall() Fault { return Fault{kind: kindStall} }

// String names the fault, such as "latency(50ms±10ms)" or "stall".
func (f Fault) String() string {
	switch f.kind {
	case kindLatency:
		return fmt.Sprintf("latency(%v±%v)", f.delay, f.jitter)
	case kindRefuse:
		return "refuse"
	case kindReset:
		return "reset"
	case kindStall:
		return "stall"
	default:
		return "none"
	}
}

// effect is the combination of every fault in force.
type effect struct {
	delay, jitter        time.Duration
	refuse, reset, stall bool
}

func combine(faults map[string]Fault) effect {
	var e effect
	for _, f := range faults {
		switch f.kind {
		case kindLatency:
			e.delay += f.delay
			e.jitter += f.jitter
		case kindRefuse:
			e.refuse = true
		case kindReset:
			e.reset = true
		case kindStall:
			e.stall = true
		}
	}
	return e
}
