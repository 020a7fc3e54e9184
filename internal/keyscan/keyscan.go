// Package keyscan walks the keys of a namespace with SCAN (never KEYS), on
// every master of a Redis Cluster, for the commands that measure or clean up
// a namespace. Nothing here is on a token lookup path.
package keyscan

import (
	"context"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Batch is how many keys one SCAN asks for.
const Batch = 1000

// EscapeMatch escapes what SCAN MATCH would read as a pattern, so that a
// namespace such as "a*" matches only itself.
func EscapeMatch(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\', '^', '-':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Pattern is the SCAN MATCH pattern of the keys of namespace ns: ns, a colon,
// anything.
func Pattern(ns string) string { return EscapeMatch(ns) + ":*" }

// EachNode runs fn on every node that holds keys: each master of a cluster
// (in parallel), else the client itself.
func EachNode(ctx context.Context, rdb redis.UniversalClient, fn func(ctx context.Context, node redis.UniversalClient) error) error {
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return fn(ctx, node)
		})
	}
	return fn(ctx, rdb)
}

// Delete deletes every key of namespace ns, one DEL per key (safe on a
// cluster), and returns how many it deleted.
func Delete(ctx context.Context, rdb redis.UniversalClient, ns string) (int, error) {
	var (
		mu sync.Mutex // guards n: a cluster's masters are scanned in parallel
		n  int
	)
	err := EachNode(ctx, rdb, func(ctx context.Context, node redis.UniversalClient) error {
		iter := node.Scan(ctx, 0, Pattern(ns), Batch).Iterator()
		for iter.Next(ctx) {
			if err := node.Del(ctx, iter.Val()).Err(); err != nil {
				return err
			}
			mu.Lock()
			n++
			mu.Unlock()
		}
		return iter.Err()
	})
	return n, err
}

// Count counts the keys of namespace ns.
func Count(ctx context.Context, rdb redis.UniversalClient, ns string) (int, error) {
	var (
		mu sync.Mutex // guards n
		n  int
	)
	err := EachNode(ctx, rdb, func(ctx context.Context, node redis.UniversalClient) error {
		iter := node.Scan(ctx, 0, Pattern(ns), Batch).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			n++
			mu.Unlock()
		}
		return iter.Err()
	})
	return n, err
}
