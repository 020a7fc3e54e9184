package modelcheck

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Mode is what an Injector does when its operation reaches the armed
// command.
type Mode int

// The fault modes. "Before" means the command never reached Redis; "after"
// means Redis executed it and its reply was lost.
const (
	// CancelBefore cancels the operation's context just before the command
	// is sent; the command is not sent.
	CancelBefore Mode = iota
	// CancelAfter lets Redis execute the command, then cancels the
	// operation's context before the reply reaches the caller.
	CancelAfter
	// DropBefore fails the command with a network error without sending it;
	// later commands work (a transient blip).
	DropBefore
	// DropAfter lets Redis execute the command and loses its reply; later
	// commands work.
	DropAfter
	// CloseAfter really closes the connection right after the command was
	// written, so the reply is lost and the client must discard the
	// connection; later commands dial a new one.
	CloseAfter
	// KillBefore fails the command and every later one of the operation
	// without sending them: the process died before the command. The driver
	// then replaces the instance with a fresh one.
	KillBefore
	// KillAfter lets Redis execute the command, then fails its reply and
	// every later command: the process died after the command.
	KillAfter
	numModes
)

// String returns the mode's name, such as "drop-after".
func (m Mode) String() string {
	switch m {
	case CancelBefore:
		return "cancel-before"
	case CancelAfter:
		return "cancel-after"
	case DropBefore:
		return "drop-before"
	case DropAfter:
		return "drop-after"
	case CloseAfter:
		return "close-after"
	case KillBefore:
		return "kill-before"
	case KillAfter:
		return "kill-after"
	default:
		return fmt.Sprintf("mode(%d)", int(m))
	}
}

// kills reports whether the mode stands for a dead process.
func (m Mode) kills() bool { return m == KillBefore || m == KillAfter }

// ErrInjected is the error an Injector gives a command it failed. It is a
// net.Error, like a real broken connection.
var ErrInjected error = injectedError{}

type injectedError struct{}

func (injectedError) Error() string   { return "modelcheck: injected connection failure" }
func (injectedError) Timeout() bool   { return false }
func (injectedError) Temporary() bool { return false }

var _ net.Error = injectedError{}

// Injector is a go-redis hook that counts the commands of one operation and
// injects a fault at the N-th. Commands in a pipeline count one by one; a
// MULTI/EXEC transaction fails as a whole, as Redis would run it. Arm it
// before an operation and Disarm it after; while disarmed it counts nothing
// and lets every command through. It is safe for concurrent use, but it
// counts the commands of all goroutines that share its client together, so
// the driver runs one operation at a time through each instance.
type Injector struct {
	mu            sync.Mutex
	injectorState // guarded by mu
}

// injectorState is what an Injector knows about the current operation.
type injectorState struct {
	armed   bool
	at      int                // the command that faults, counted from 1
	mode    Mode               // what happens there
	cancel  context.CancelFunc // the operation's context, for the cancel modes
	count   int                // commands seen since Arm
	fired   bool               // the fault happened
	latched bool               // a kill fired: everything later fails
	closeOn bool               // CloseAfter: close the connection after the next write
}

// NewInjector returns a disarmed Injector.
func NewInjector() *Injector { return &Injector{} }

// Install adds inj to c. On a ClusterClient the connection wrapper that
// CloseAfter needs goes on every node client, where dialing happens.
func Install(c redis.UniversalClient, inj *Injector) {
	c.AddHook(inj)
	if cc, ok := c.(*redis.ClusterClient); ok {
		cc.OnNewNode(func(node *redis.Client) { node.AddHook(dialOnly{inj}) })
	}
}

// Arm makes the at-th command from now fault with mode. cancel is the
// operation's context's cancel function, used by the cancel modes.
func (inj *Injector) Arm(at int, mode Mode, cancel context.CancelFunc) {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	inj.injectorState = injectorState{armed: true, at: at, mode: mode, cancel: cancel}
}

// Disarm stops injecting and returns how many commands were seen since Arm
// and whether the fault happened.
func (inj *Injector) Disarm() (count int, fired bool) {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	count, fired = inj.count, inj.fired
	inj.injectorState = injectorState{}
	return count, fired
}

// plan is what to do with a command or pipeline: run the first run commands,
// fail the commands from failFrom on with err, and call after once the
// commands ran.
type plan struct {
	run      int
	failFrom int
	err      error
	cancel   context.CancelFunc
	close    bool
}

// decide counts n commands (a pipeline, or 1) and returns the plan for them.
// atomic marks a MULTI/EXEC transaction, which runs whole or not at all.
func (inj *Injector) decide(ctx context.Context, n int, atomic bool) plan {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	all := plan{run: n, failFrom: n}
	if !inj.armed {
		return all
	}
	first := inj.count + 1
	inj.count += n
	if inj.latched {
		return plan{run: 0, failFrom: 0, err: ErrInjected}
	}
	if inj.fired || inj.at < first || inj.at > inj.count {
		return all
	}
	inj.fired = true
	j := inj.at - first // index of the faulting command in this batch
	if atomic {
		j = 0
	}
	switch inj.mode {
	case CancelBefore:
		return plan{run: j, failFrom: j, cancel: inj.cancel, err: context.Canceled}
	case CancelAfter:
		return plan{run: n, failFrom: j, cancel: inj.cancel, err: context.Canceled}
	case DropBefore:
		return plan{run: j, failFrom: j, err: ErrInjected}
	case DropAfter:
		return plan{run: n, failFrom: j, err: ErrInjected}
	case CloseAfter:
		inj.closeOn = true
		return plan{run: n, failFrom: n, close: true}
	case KillBefore:
		inj.latched = true
		return plan{run: j, failFrom: j, err: ErrInjected}
	case KillAfter:
		inj.latched = true
		return plan{run: n, failFrom: j, err: ErrInjected}
	}
	return all
}

// takeClose reports, once, whether the next write must close its
// connection.
func (inj *Injector) takeClose() bool {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	c := inj.closeOn
	inj.closeOn = false
	return c
}

// DialHook wraps each new connection so that CloseAfter can close it.
func (inj *Injector) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &faultConn{Conn: c, inj: inj}, nil
	}
}

// ProcessHook applies the plan to a single command.
func (inj *Injector) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if setupCommand(cmd) {
			return next(ctx, cmd)
		}
		p := inj.decide(ctx, 1, false)
		if p.run == 0 {
			if p.cancel != nil {
				p.cancel()
			}
			if p.err == context.Canceled && ctx.Err() == nil {
				// The command runs on a context the caller's cancel does not
				// reach (detached work): it goes ahead.
				return next(ctx, cmd)
			}
			cmd.SetErr(faultErr(ctx, p.err))
			return cmd.Err()
		}
		err := next(ctx, cmd)
		if p.cancel != nil {
			p.cancel()
		}
		if p.failFrom == 0 && (p.err != context.Canceled || ctx.Err() != nil) {
			cmd.SetErr(faultErr(ctx, p.err))
			return cmd.Err()
		}
		return err
	}
}

// ProcessPipelineHook applies the plan to a pipeline or a transaction.
func (inj *Injector) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		setup := true
		for _, c := range cmds {
			setup = setup && setupCommand(c)
		}
		if setup {
			return next(ctx, cmds)
		}
		atomic := len(cmds) > 0 && strings.EqualFold(cmds[0].Name(), "multi")
		p := inj.decide(ctx, len(cmds), atomic)
		var err error
		if p.run > 0 {
			err = next(ctx, cmds[:p.run])
		}
		if p.cancel != nil {
			p.cancel()
			if ctx.Err() == nil {
				// Detached work is not cancelled: run the rest as well.
				if p.run < len(cmds) {
					err = next(ctx, cmds[p.run:])
				}
				return err
			}
		}
		if p.err == nil || p.failFrom >= len(cmds) {
			return err
		}
		ferr := faultErr(ctx, p.err)
		for _, c := range cmds[p.failFrom:] {
			c.SetErr(ferr)
		}
		return ferr
	}
}

// setupCommand reports whether cmd is one that go-redis sends on its own to
// set up a new connection (HELLO, AUTH, SELECT, READONLY, CLIENT ...). They
// are not the operation's commands, and whether they happen depends on the
// connection pool, so they are neither counted nor faulted.
func setupCommand(cmd redis.Cmder) bool {
	switch strings.ToLower(cmd.Name()) {
	case "hello", "auth", "select", "readonly", "client":
		return true
	}
	return false
}

// faultErr is the error a faulted command reports: the context's own error
// for the cancel modes, so that errors.Is(err, context.Canceled) holds.
func faultErr(ctx context.Context, err error) error {
	if err == context.Canceled && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// faultConn is a connection that the Injector can close right after a
// write, so that the command reached Redis and its reply cannot be read.
type faultConn struct {
	net.Conn
	inj *Injector
}

func (c *faultConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err == nil && c.inj.takeClose() {
		c.closeOnceRun()
	}
	return n, err
}

// closeOnceRun closes the connection once Redis has run what was just
// written, as CloseAfter promises: a plain close races the server, which
// may still be reading the command when the caller's next one, on a new
// connection, is already done. It half-closes, reads (and so loses) the
// replies until the server closes its side or a second has passed, then
// closes.
func (c *faultConn) closeOnceRun() {
	if hc, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		_ = hc.CloseWrite()
		_ = c.Conn.SetReadDeadline(time.Now().Add(time.Second))
		var buf [4096]byte
		for {
			if _, err := c.Conn.Read(buf[:]); err != nil {
				break
			}
		}
	}
	_ = c.Conn.Close()
}

// dialOnly is the part of an Injector that goes on a Cluster's node
// clients: it wraps their connections and passes commands through, since
// the cluster client's own hook counts them.
type dialOnly struct{ inj *Injector }

func (d dialOnly) DialHook(next redis.DialHook) redis.DialHook { return d.inj.DialHook(next) }
func (dialOnly) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return next
}
func (dialOnly) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
