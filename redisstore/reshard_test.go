package redisstore_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/redistest"
)

// TestClusterReshardingSaves moves the slot of a token's hash to another
// master and back while saves of that token run (defect 8 of issue 7): every
// save must succeed (the store retries what a migration makes transient),
// and afterwards the token holds the last acknowledged save and is found by
// its values. Only on a Cluster (TOKENCACHE_CLUSTER_ADDRS).
func TestClusterReshardingSaves(t *testing.T) {
	tg := redistest.New(t)
	if tg.Kind != redistest.Cluster {
		t.Skip("needs a Redis Cluster (TOKENCACHE_CLUSTER_ADDRS)")
	}
	rdb := tg.Client(t)
	cc := rdb.(*redis.ClusterClient)
	f := newFixture(t, tg, rdb)
	s := f.store()
	id := "rs-" + tokencache.NewID()
	mustSave(t, s, tokencache.Token{ID: id, UserName: "u", ClientID: "c", AccessToken: "a0"})
	slot := int(cc.ClusterKeySlot(ctx, s.HashKey(id)).Val())

	src, dst, all := slotNodes(t, cc, slot)
	var (
		last   atomic.Int64
		failed atomic.Int64
		stop   = make(chan struct{})
		wg     sync.WaitGroup
	)
	wg.Go(func() {
		for i := int64(1); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tok := tokencache.Token{ID: id, UserName: "u", ClientID: "c", AccessToken: fmt.Sprint("a", i)}
			if err := s.SaveToken(ctx, &tok); err != nil {
				failed.Add(1)
				t.Errorf("save %d during resharding: %v", i, err)
				continue
			}
			last.Store(i)
		}
	})
	moveSlot(t, slot, src, dst, all)
	moveSlot(t, slot, dst, src, all)
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	cc.ReloadState(ctx)

	if failed.Load() > 0 {
		t.Fatalf("%d saves failed while the slot moved", failed.Load())
	}
	want := fmt.Sprint("a", last.Load())
	got, err := s.FindTokenByID(ctx, id)
	if err != nil || got.AccessToken != want {
		t.Fatalf("after resharding FindTokenByID = %v, %v; want access token %s", got, err, want)
	}
	if got, ok := f.find(tokencache.Token{AccessToken: want}); !ok || got.ID != id {
		t.Fatalf("after resharding FindToken by the last access token = %q, %v", got.ID, ok)
	}
	if got, ok := f.find(tokencache.Token{UserName: "u", ClientID: "c"}); !ok || got.ID != id {
		t.Fatalf("after resharding FindToken by user = %q, %v", got.ID, ok)
	}
	t.Logf("%d saves while the slot moved there and back", last.Load())
}

// clusterNode is a master of the test cluster.
type clusterNode struct {
	id   string
	addr string
	c    *redis.Client
}

// slotNodes returns the master owning slot, another master, and all masters.
func slotNodes(t *testing.T, cc *redis.ClusterClient, slot int) (src, dst clusterNode, all []clusterNode) {
	t.Helper()
	shards, err := cc.ClusterShards(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range shards {
		for _, n := range sh.Nodes {
			if n.Role != "master" {
				continue
			}
			addr := net.JoinHostPort(n.IP, strconv.FormatInt(n.Port, 10))
			c := redis.NewClient(&redis.Options{Addr: addr})
			t.Cleanup(func() { _ = c.Close() })
			node := clusterNode{id: n.ID, addr: addr, c: c}
			all = append(all, node)
			for _, r := range sh.Slots {
				if slot >= int(r.Start) && slot <= int(r.End) {
					src = node
				}
			}
		}
	}
	for _, n := range all {
		if n.id != src.id {
			dst = n
			break
		}
	}
	if src.id == "" || dst.id == "" {
		t.Fatalf("no two masters for slot %d in %v", slot, shards)
	}
	return src, dst, all
}

// moveSlot migrates slot from one master to another, key by key with
// pauses, so that saves run while it is half moved.
func moveSlot(t *testing.T, slot int, from, to clusterNode, all []clusterNode) {
	t.Helper()
	c := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("moving slot %d from %s to %s: %v", slot, from.addr, to.addr, err)
		}
	}
	must(to.c.Do(c, "CLUSTER", "SETSLOT", slot, "IMPORTING", from.id).Err())
	must(from.c.Do(c, "CLUSTER", "SETSLOT", slot, "MIGRATING", to.id).Err())
	time.Sleep(50 * time.Millisecond)
	host, port, err := net.SplitHostPort(to.addr)
	must(err)
	for {
		keys, err := from.c.ClusterGetKeysInSlot(c, slot, 1).Result()
		must(err)
		if len(keys) == 0 {
			break
		}
		must(from.c.Do(c, "MIGRATE", host, port, "", 0, 5000, "REPLACE", "KEYS", keys[0]).Err())
		time.Sleep(30 * time.Millisecond)
	}
	must(to.c.Do(c, "CLUSTER", "SETSLOT", slot, "NODE", to.id).Err())
	must(from.c.Do(c, "CLUSTER", "SETSLOT", slot, "NODE", to.id).Err())
	for _, n := range all {
		if n.id != to.id && n.id != from.id {
			must(n.c.Do(c, "CLUSTER", "SETSLOT", slot, "NODE", to.id).Err())
		}
	}
	time.Sleep(50 * time.Millisecond)
}
