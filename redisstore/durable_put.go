package redisstore

// This file is a stand-in for the store helper's put primitive (see
// /work/notes/store.md); it goes away when that lands.

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/tokencache/tokencache"
)

// putScript installs the hash KEYS[1] at exactly revision ARGV[1] unless it
// already holds that revision or a later one. ARGV[2] is the TTL in ms (0
// none); ARGV[3...] are field, value pairs. It returns {1, old fields} when
// it wrote, {0, current revision} when it left a newer hash alone.
var putScript = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local v = tonumber(ARGV[1])
if cur >= v then
  return {0, cur}
end
local old = {}
if cur > 0 then
  old = redis.call('HGETALL', KEYS[1])
  redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[1], 'v', v)
for i = 3, #ARGV, 200 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 199, #ARGV)))
end
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {1, old}
`)

// put installs exactly t (its ID and Version, as the record stored them)
// with its index entries, unless Redis already holds that ID at t.Version
// or later, which is then left alone. It does not check identities: the
// record is the authority on them.
func (s *Store) put(ctx context.Context, t tokencache.Token) error {
	if t.ID == "" || t.Version < 1 {
		return fmt.Errorf("%w: put needs an ID and a version", tokencache.ErrInvalidToken)
	}
	now := s.now()
	if !t.Live(now) {
		return nil // nothing to cache
	}
	args := append([]any{t.Version, s.hashTTL(t, now).Milliseconds()}, encodeFields(t, false)...)
	res, err := putScript.Run(ctx, s.rdb, []string{s.keys.hash(t.ID)}, args...).Slice()
	if err != nil {
		return err
	}
	if len(res) != 2 {
		return fmt.Errorf("put script replied %d values", len(res))
	}
	if wrote, _ := res[0].(int64); wrote != 1 {
		return nil
	}
	var old *tokencache.Token
	if flat, _ := res[1].([]any); len(flat) > 0 {
		if d, found, err := decodeFlat(t.ID, flat); err == nil && found {
			old = &d.token
		}
	}
	return s.afterWrite(ctx, &t, t.ID, t.Version, old, now, afterWriteOpts{addToSet: true})
}
