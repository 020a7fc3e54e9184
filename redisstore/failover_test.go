package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/redistest"
	"github.com/tokencache/tokencache/redisstore"
)

// Environment of the failover test, as scripts/redis-failover.sh writes it
// to DIR/env.
const (
	envSentinelAddrs  = "TOKENCACHE_SENTINEL_ADDRS"
	envSentinelMaster = "TOKENCACHE_SENTINEL_MASTER"
	envFailoverDir    = "TOKENCACHE_FAILOVER_DIR"
)

// TestReplicaAcksWithoutReplicas: a write that no replica can acknowledge
// happens, and the save says it may not survive a failover.
func TestReplicaAcksWithoutReplicas(t *testing.T) {
	tg := redistest.New(t)
	rdb := tg.Client(t)
	s := newStore(t, rdb, redisstore.WithReplicaAcks(1, 50*time.Millisecond))
	tok := tokencache.Token{UserName: "u", ClientID: "c", AccessToken: "a"}
	err := s.SaveToken(ctx, &tok)
	if !errors.Is(err, redisstore.ErrReplicaAcks) {
		t.Fatalf("SaveToken with no replica to acknowledge = %v, want ErrReplicaAcks", err)
	}
	if errors.Is(err, tokencache.ErrNotFound) || errors.Is(err, tokencache.ErrConflict) {
		t.Fatalf("ack error also reads as %v", err)
	}
	if got, err := s.FindTokenByID(ctx, tok.ID); err != nil || got.AccessToken != "a" || got.Version != tok.Version {
		t.Fatalf("the unacknowledged save did not happen: %v, %v", got, err)
	}
	if err := s.DeleteToken(ctx, tok.ID); !errors.Is(err, redisstore.ErrReplicaAcks) {
		t.Fatalf("DeleteToken with no replica = %v, want ErrReplicaAcks", err)
	}
	if _, err := s.FindTokenByID(ctx, tok.ID); !errors.Is(err, tokencache.ErrNotFound) {
		t.Fatalf("the unacknowledged delete did not happen: %v", err)
	}
}

// failoverEnv returns the Sentinel setup of scripts/redis-failover.sh, or
// skips the test.
func failoverEnv(t *testing.T) (addrs []string, master, dir string) {
	a, m := os.Getenv(envSentinelAddrs), os.Getenv(envSentinelMaster)
	if a == "" || m == "" {
		t.Skipf("set %s and %s (scripts/redis-failover.sh start DIR writes them to DIR/env)", envSentinelAddrs, envSentinelMaster)
	}
	return strings.Split(a, ","), m, os.Getenv(envFailoverDir)
}

// TestFailover runs saves through a Sentinel-managed client, SIGKILLs the
// master in the middle and counts acknowledged saves that the promoted
// replica lacks: none with WithReplicaAcks, and whatever asynchronous
// replication loses without (printed, not asserted).
func TestFailover(t *testing.T) {
	addrs, master, dir := failoverEnv(t)
	for _, tc := range []struct {
		name string
		opts []redisstore.Option
		zero bool
	}{
		{"with replica acks", []redisstore.Option{redisstore.WithReplicaAcks(1, 2*time.Second)}, true},
		{"without replica acks", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acked, lost := runFailover(t, addrs, master, dir, tc.opts)
			t.Logf("%s: %d saves acknowledged, %d of them lost in the failover", tc.name, acked, lost)
			fmt.Printf("failover %s: acknowledged %d, lost %d\n", tc.name, acked, lost)
			if tc.zero && lost != 0 {
				t.Errorf("%d acknowledged saves lost with replica acks, want 0", lost)
			}
			if acked == 0 {
				t.Errorf("no save was acknowledged: the test measured nothing")
			}
		})
	}
}

func runFailover(t *testing.T, addrs []string, master, dir string, opts []redisstore.Option) (acked, lost int) {
	sentinel := redis.NewSentinelClient(&redis.Options{Addr: addrs[0]})
	defer sentinel.Close()
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: master, SentinelAddrs: addrs, ContextTimeoutEnabled: true,
		DialTimeout: 500 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second,
	})
	defer rdb.Close()
	ns := redistest.Namespace(t)
	s := redisstore.New(rdb, append([]redisstore.Option{redisstore.WithNamespace(ns)}, opts...)...)
	defer func() { _ = s.DeleteTokens(context.Background()) }()

	oldAddr := masterAddr(t, sentinel, master)
	waitReplicas(t, oldAddr, 1)
	pid, conf := serverPID(t, oldAddr), ""
	if dir != "" {
		conf = filepath.Join(dir, "redis-"+oldAddr[strings.LastIndex(oldAddr, ":")+1:]+".conf")
	}

	type ack struct {
		id      string
		version int64
		access  string
	}
	var (
		mu   sync.Mutex // guards acks
		acks []ack
		stop = make(chan struct{})
		wg   sync.WaitGroup
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				tok := tokencache.Token{UserName: fmt.Sprintf("w%d-%d", w, i), ClientID: "c",
					AccessToken: fmt.Sprintf("a-%d-%d", w, i), RefreshToken: fmt.Sprintf("r-%d-%d", w, i)}
				cctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				err := s.SaveToken(cctx, &tok)
				cancel()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				mu.Lock()
				acks = append(acks, ack{tok.ID, tok.Version, tok.AccessToken})
				mu.Unlock()
			}
		})
	}
	time.Sleep(time.Second)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		close(stop)
		wg.Wait()
		t.Fatalf("SIGKILL master pid %d: %v", pid, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for masterAddr(t, sentinel, master) == oldAddr {
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("no replica was promoted within 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // saves on the new master
	close(stop)
	wg.Wait()

	for _, a := range acks {
		got, err := s.FindTokenByID(ctx, a.id)
		if errors.Is(err, tokencache.ErrNotFound) || (err == nil && (got.Version < a.version || got.AccessToken != a.access)) {
			lost++
		} else if err != nil {
			t.Fatalf("reading back %s: %v", a.id, err)
		}
	}

	// Bring the killed master back: Sentinel turns it into a replica of the
	// new master, so that the next run has a replica again.
	if conf != "" {
		if out, err := exec.Command("redis-server", conf).CombinedOutput(); err != nil {
			t.Fatalf("restarting %s: %v: %s", conf, err, out)
		}
		waitReplicas(t, masterAddr(t, sentinel, master), 1)
	}
	return len(acks), lost
}

func masterAddr(t *testing.T, sentinel *redis.SentinelClient, name string) string {
	t.Helper()
	a, err := sentinel.GetMasterAddrByName(ctx, name).Result()
	if err != nil || len(a) != 2 {
		t.Fatalf("SENTINEL get-master-addr-by-name %s = %v, %v", name, a, err)
	}
	return a[0] + ":" + a[1]
}

// serverPID returns the process ID of the Redis at addr.
func serverPID(t *testing.T, addr string) int {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		t.Fatalf("INFO server at %s: %v", addr, err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, err := strconv.Atoi(v)
			if err == nil {
				return pid
			}
		}
	}
	t.Fatalf("no process_id in INFO of %s", addr)
	return 0
}

// waitReplicas waits until the master at addr has n replicas online.
func waitReplicas(t *testing.T, addr string, n int) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		info, err := c.Info(ctx, "replication").Result()
		if err == nil && strings.Count(info, "state=online") >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("master %s has not %d replicas online after 60 s: %v %s", addr, n, err, info)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
