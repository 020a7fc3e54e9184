package chaos

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// proc is one worker process.
type proc struct {
	n      int // its number in the scenario, for the log file name
	cmd    *exec.Cmd
	pid    int
	victim string
	exited chan struct{}
	ready  chan struct{}
}

// fleet runs the worker processes of a scenario and collects their reports.
type fleet struct {
	bin    string // the program to run with the argument "worker"
	dir    string // for the workers' stderr logs
	base   WorkerConfig
	col    *collector
	mu     sync.Mutex // guards procs and next
	procs  []*proc
	next   int
	readWG sync.WaitGroup
}

// collector merges the workers' reports.
type collector struct {
	mu     sync.Mutex // guards every field
	calls  int64
	fails  int64
	ok     map[bucketKey]int
	bad    map[bucketKey]int
	held   map[bucketKey]int
	errs   map[string]int
	deaths []dying
}

func newCollector() *collector {
	return &collector{ok: map[bucketKey]int{}, bad: map[bucketKey]int{}, held: map[bucketKey]int{}, errs: map[string]int{}}
}

func (c *collector) add(r report) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls += r.Calls
	c.fails += r.Fails
	for _, b := range r.OK {
		c.ok[bucketKey{b.User, b.Bucket}] += b.N
	}
	for _, b := range r.Bad {
		c.bad[bucketKey{b.User, b.Bucket}] += b.N
	}
	for _, b := range r.Held {
		c.held[bucketKey{b.User, b.Bucket}] += b.N
	}
	for k, n := range r.Errs {
		c.errs[k] += n
	}
	if r.Dying != nil {
		c.deaths = append(c.deaths, *r.Dying)
	}
}

// start runs one more worker, with victim mode victim, and waits (bounded)
// until it is ready.
func (f *fleet) start(victim string) (*proc, error) {
	cfg := f.base
	cfg.Victim = victim
	f.mu.Lock()
	n := f.next
	f.next++
	f.mu.Unlock()
	cfg.Trace = filepath.Join(f.dir, fmt.Sprintf("trace-%d.log", n))
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(f.dir, fmt.Sprintf("worker-%d.log", n)))
	if err != nil {
		return nil, err
	}
	defer func() { _ = logf.Close() }() // the child holds its own descriptor
	cmd := exec.Command(f.bin, "worker")
	cmd.Env = append(os.Environ(), WorkerEnv+"="+string(b))
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("chaos: start worker: %w", err)
	}
	p := &proc{n: n, cmd: cmd, pid: cmd.Process.Pid, victim: victim, exited: make(chan struct{}), ready: make(chan struct{})}
	f.mu.Lock()
	f.procs = append(f.procs, p)
	f.mu.Unlock()
	f.readWG.Add(1)
	go func() {
		defer f.readWG.Done()
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		readyOnce := sync.OnceFunc(func() { close(p.ready) })
		for sc.Scan() {
			var r report
			if json.Unmarshal(sc.Bytes(), &r) != nil {
				continue
			}
			if r.Ready {
				readyOnce()
			}
			f.col.add(r)
		}
		_ = cmd.Wait()
		close(p.exited)
	}()
	select {
	case <-p.ready:
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("chaos: worker %d exited at start (see %s)", n, logf.Name())
	case <-time.After(20 * time.Second):
		f.kill(p)
		return nil, fmt.Errorf("chaos: worker %d not ready after 20s", n)
	}
}

// alive returns the workers still running.
func (f *fleet) alive() []*proc {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*proc
	for _, p := range f.procs {
		select {
		case <-p.exited:
		default:
			out = append(out, p)
		}
	}
	return out
}

// byPID returns the running worker with that PID, if any.
func (f *fleet) byPID(pid int) *proc {
	for _, p := range f.alive() {
		if p.pid == pid {
			return p
		}
	}
	return nil
}

func (f *fleet) signal(p *proc, sig syscall.Signal) {
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Signal(sig)
	}
}

// kill SIGKILLs p and waits (bounded) for it to be reaped.
func (f *fleet) kill(p *proc) {
	f.signal(p, syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
	}
}

// stop ends every worker: SIGCONT (in case one is stopped), SIGTERM, and
// SIGKILL for those not gone within bound. It waits for their last reports.
func (f *fleet) stop(bound time.Duration) {
	procs := f.alive()
	for _, p := range procs {
		f.signal(p, syscall.SIGCONT)
		f.signal(p, syscall.SIGTERM)
	}
	deadline := time.After(bound)
	expired := false
	for _, p := range procs {
		if !expired {
			select {
			case <-p.exited:
				continue
			case <-deadline:
				expired = true
			}
		}
		f.kill(p)
	}
	f.readWG.Wait()
}
