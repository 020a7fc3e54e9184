package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// runAcked runs a script that commits a write on the token's slot and
// returns its array reply. With WithReplicaAcks it sends WAIT on the same
// connection right after the script, in one pipeline to the master that
// owns the key, and ackErr wraps ErrReplicaAcks when too few replicas
// acknowledged: the write itself happened.
func (s *Store) runAcked(ctx context.Context, script *redis.Script, keys []string, args []any) (res []any, ackErr, err error) {
	if s.acks == 0 {
		res, err = script.Run(ctx, s.rdb, keys, args...).Slice()
		return res, nil, err
	}
	var node redis.Cmdable = s.rdb
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		master, err := cc.MasterForKey(ctx, keys[0])
		if err != nil {
			return nil, nil, err
		}
		node = master
	}
	var (
		run  *redis.Cmd
		wait *redis.Cmd
	)
	// The pipeline's error is also the first failed command's: read them.
	_, _ = node.Pipelined(ctx, func(p redis.Pipeliner) error {
		run = script.Eval(ctx, p, keys, args...) // a pipeline cannot fall back from EVALSHA
		wait = p.Do(ctx, "WAIT", s.acks, s.ackWait.Milliseconds())
		return nil
	})
	if res, err = run.Slice(); err != nil {
		if cc, ok := s.rdb.(*redis.ClusterClient); ok && transient(err) {
			cc.ReloadState(ctx)
		}
		return nil, nil, err
	}
	got, werr := wait.Int64()
	if werr != nil {
		return res, fmt.Errorf("%w: WAIT failed: %w; the write may not survive a failover", ErrReplicaAcks, werr), nil
	}
	if got < int64(s.acks) {
		return res, fmt.Errorf("%w: %d of %d replicas within %v; the write may not survive a failover",
			ErrReplicaAcks, got, s.acks, s.ackWait), nil
	}
	return res, nil, nil
}

// transient reports whether err is one that Cluster resharding or a
// failover makes temporary, so that the operation may start over: a
// redirection that go-redis did not follow to the end, a slot in migration
// (TRYAGAIN, or a script whose key moved away: Redis words that one only as
// error text), a cluster that is down for a moment, or a master that
// became a replica.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	for _, prefix := range []string{"MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN", "CROSSSLOT", "READONLY", "LOADING", "MASTERDOWN"} {
		if redis.HasErrorPrefix(err, prefix) {
			return true
		}
	}
	msg := err.Error()
	return strings.Contains(msg, "non local key") || strings.Contains(msg, "TRYAGAIN")
}
