// Package announce tells every process sharing a store which tokens changed,
// so that in-process caches can drop what they hold for them.
//
// A writer publishes the ID of each token it saved or deleted, after the
// write has committed, on the channel [Channel] of the store's namespace; a
// [Subscriber] delivers those IDs to a [Handler]. The message is the token
// ID, or [All] when every token may have changed (DeleteTokens). Neither the
// channel name nor a message carries a secret: IDs are random and say
// nothing about the user.
//
// Pub/sub is fire-and-forget: a message sent while a subscriber is
// disconnected is lost. The Subscriber therefore reports every moment at
// which messages may have been missed (not yet subscribed, the connection
// dropped or went silent) as [Handler.Down], and only [Handler.Up] once the
// server has confirmed the subscription again; a cache serves nothing
// between the two.
//
// Plain PUBLISH is used, not the sharded SPUBLISH of Redis 7: one channel
// must reach every process whatever token changed, a Redis Cluster forwards
// PUBLISH to every node, and saves are rare next to reads (one per refresh
// of a token), so the broadcast costs little. miniredis has no SPUBLISH
// either.
package announce

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// All is the message that means "every token may have changed". It cannot
// be a token ID: '*' is outside the ID alphabet.
const All = "*"

// Channel returns the pub/sub channel of the namespace ns: it starts with
// the namespace, as every key of a store does.
func Channel(ns string) string { return ns + ":announce" }

// Publish announces on the channel of ns that the tokens with these IDs
// changed, one message each (use [All] for every token), in one round trip.
// On a Cluster the messages may arrive in another order: a drop does not
// depend on order. It is called after
// the change has committed, so that a process that drops its entry on the
// message reads the new state. A failure is returned; the caller decides
// whether its write fails with it (it should not: the write has happened,
// and caches are still bounded by their TTL).
func Publish(ctx context.Context, rdb redis.UniversalClient, ns string, ids ...string) error {
	ch := Channel(ns)
	switch len(ids) {
	case 0:
		return nil
	case 1:
		if err := rdb.Publish(ctx, ch, ids[0]).Err(); err != nil {
			return fmt.Errorf("announce: publish: %w", err)
		}
		return nil
	}
	cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			p.Publish(ctx, ch, id)
		}
		return nil
	})
	if err != nil {
		for _, c := range cmds {
			if c.Err() != nil {
				return fmt.Errorf("announce: publish: %w", c.Err())
			}
		}
		return fmt.Errorf("announce: publish: %w", err)
	}
	return nil
}
