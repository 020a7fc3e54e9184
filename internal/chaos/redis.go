package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Persistence of a Redis the suite starts.
type Persistence int

const (
	// NoPersistence: no RDB snapshots, no AOF; a restart comes back empty.
	NoPersistence Persistence = iota
	// AOFEverySec: appendonly with appendfsync everysec.
	AOFEverySec
)

// aofDir is the directory, under the Redis data directory, of the AOF
// files (Redis 7's appenddirname).
const aofDir = "appendonlydir"

// redisProc is one redis-server process started by the suite.
type redisProc struct {
	bin     string
	port    int
	dir     string
	persist Persistence
	cmd     *exec.Cmd
	exited  chan struct{}
}

// startRedis runs redis-server on 127.0.0.1:port with its data in dir and
// waits until it answers PING.
func startRedis(bin string, port int, dir string, p Persistence) (*redisProc, error) {
	r := &redisProc{bin: bin, port: port, dir: dir, persist: p}
	return r, r.start()
}

func (r *redisProc) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

func (r *redisProc) start() error {
	args := []string{
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--dir", r.dir, "--save", "", "--daemonize", "no",
		"--logfile", filepath.Join(r.dir, "redis.log"),
	}
	if r.persist == AOFEverySec {
		args = append(args, "--appendonly", "yes", "--appendfsync", "everysec", "--appenddirname", aofDir)
	} else {
		args = append(args, "--appendonly", "no")
	}
	cmd := exec.Command(r.bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("chaos: start redis-server: %w", err)
	}
	r.cmd = cmd
	r.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) {
		_ = c.Wait()
		close(done)
	}(cmd, r.exited)
	return r.waitReady(10 * time.Second)
}

func (r *redisProc) waitReady(bound time.Duration) error {
	rdb := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer func() { _ = rdb.Close() }()
	deadline := time.Now().Add(bound)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-r.exited:
			return fmt.Errorf("chaos: redis-server on port %d exited (see %s)", r.port, filepath.Join(r.dir, "redis.log"))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chaos: redis-server on port %d not ready after %v: %w", r.port, bound, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill SIGKILLs the process (a crash: nothing is saved) and waits for it.
func (r *redisProc) kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	select {
	case <-r.exited:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
	}
}

// snapshotAOF copies the AOF directory to dst, as a host would have it on
// disk at this moment.
func (r *redisProc) snapshotAOF(dst string) error {
	return copyDir(filepath.Join(r.dir, aofDir), dst)
}

// restoreAOF replaces the AOF directory by the copy in src. The process
// must not be running.
func (r *redisProc) restoreAOF(src string) error {
	dir := filepath.Join(r.dir, aofDir)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return copyDir(src, dir)
}

func copyDir(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// freePort returns the first port of [from, to] nobody listens on.
func freePort(from, to int, taken map[int]bool) (int, error) {
	for p := from; p <= to; p++ {
		if taken[p] {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		_ = ln.Close()
		taken[p] = true
		return p, nil
	}
	return 0, errors.New("chaos: no free port in the range")
}
