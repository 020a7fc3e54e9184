package chaos

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer returns the redis-server binary, skipping the test when
// there is none (a failure under TOKENCACHE_REQUIRE_REDIS=1).
func redisServer(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("TOKENCACHE_REQUIRE_REDIS") == "1" {
			t.Fatalf("redis-server required: %v", err)
		}
		t.Skip("no redis-server")
	}
	return bin
}

func TestRedisRollbackRestoresTheOlderCopy(t *testing.T) {
	bin := redisServer(t)
	port, err := freePort(7690, 7699, map[int]bool{})
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	r, err := startRedis(bin, port, dir, AOFEverySec)
	if err != nil {
		t.Fatal(err)
	}
	defer r.kill()
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer func() { _ = rdb.Close() }()

	if err := rdb.Set(ctx, "old", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // everysec: on disk now
	if err := r.snapshotAOF(dir + "/copy"); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, "new", "2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r.kill()
	if err := r.restoreAOF(dir + "/copy"); err != nil {
		t.Fatal(err)
	}
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
	if got, err := rdb.Get(ctx, "old").Result(); err != nil || got != "1" {
		t.Fatalf("old key after the rollback: %q, %v", got, err)
	}
	if err := rdb.Get(ctx, "new").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("new key after the rollback: %v, want gone", err)
	}
}

func TestRedisRestartWithoutPersistenceComesBackEmpty(t *testing.T) {
	bin := redisServer(t)
	port, err := freePort(7690, 7699, map[int]bool{})
	if err != nil {
		t.Skip(err)
	}
	r, err := startRedis(bin, port, t.TempDir(), NoPersistence)
	if err != nil {
		t.Fatal(err)
	}
	defer r.kill()
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer func() { _ = rdb.Close() }()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r.kill()
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Fatalf("DBSIZE after restart = %d, %v; want 0", n, err)
	}
}
