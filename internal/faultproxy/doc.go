// Package faultproxy is a loopback TCP proxy that injects network faults
// between a client and a server, for fault tests such as the chaos suite.
//
// A Proxy forwards every connection it accepts to one upstream address.
// Faults are named and composable: Set installs a Fault under a name
// (replacing the one of that name), Remove takes it away, Clear restores
// a clean link. Several faults apply at once: latencies add up, and any
// Refuse, Reset or Stall in the set is in force. Cut is an action rather
// than a fault: it resets every connection open at that moment.
//
//	p, err := faultproxy.Start("127.0.0.1:0", "127.0.0.1:6379")
//	defer p.Close()
//	p.Set("slow", faultproxy.Latency(50*time.Millisecond, 10*time.Millisecond))
//	p.Set("down", faultproxy.Refuse()) // new connections are refused
//	p.Cut()                             // and the open ones reset
//	p.Clear()
//
// A Proxy is safe for concurrent use.
package faultproxy
