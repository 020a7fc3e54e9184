package redisstore

import "github.com/redis/go-redis/v9"

// Every script touches only KEYS[1], so it runs on a Redis Cluster. Their
// result codes are our own numbers, never Redis's error text.

// writeScript replaces the token hash KEYS[1] and bumps its revision.
//
// ARGV[1] is the revision expected: -1 any (insert or overwrite), 0 the hash
// must not exist, n the hash must be at revision n. ARGV[2] is the TTL in
// milliseconds, 0 for none. When KEYS[2] is given it is a lock in the same
// slot, and the write happens only while it holds ARGV[3] (the fencing
// token). ARGV[4...] are field, value pairs.
//
// It returns {new revision, old fields as a flat list}, {-1, current
// revision} when the expected revision does not hold, or {-2, current
// revision} when the lock does not.
var writeScript = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local expect = tonumber(ARGV[1])
if expect >= 0 and cur ~= expect then
  return {-1, cur}
end
if #KEYS > 1 and redis.call('GET', KEYS[2]) ~= ARGV[3] then
  return {-2, cur}
end
local old = {}
if cur > 0 then
  old = redis.call('HGETALL', KEYS[1])
  redis.call('DEL', KEYS[1])
end
local v = cur + 1
redis.call('HSET', KEYS[1], 'v', v)
for i = 4, #ARGV, 200 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 199, #ARGV)))
end
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {v, old}
`)

// finalizeScript ends an insert: when the hash KEYS[1] is still at revision
// ARGV[1], it drops the pending mark and sets the TTL ARGV[2] (ms, 0 none).
// It returns 1 when it did, 0 when a later save already replaced the hash.
var finalizeScript = redis.NewScript(`
if tonumber(redis.call('HGET', KEYS[1], 'v') or '0') ~= tonumber(ARGV[1]) then
  return 0
end
redis.call('HDEL', KEYS[1], 'p')
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
else
  redis.call('PERSIST', KEYS[1])
end
return 1
`)

// pipelineScripts are the scripts queued in pipelines, where they run as
// EVALSHA: Store.pipelined loads them first.
var pipelineScripts = []*redis.Script{dropIndexScript, finalizeScript}

// dropIndexScript deletes the index entry KEYS[1] if it names the token ARGV[1]
// at a revision below ARGV[2]. It returns 1 when it deleted the entry.
var dropIndexScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then
  return 0
end
local sep = string.find(v, ':', 1, true)
if not sep or string.sub(v, 1, sep - 1) ~= ARGV[1] then
  return 0
end
local rev = tonumber(string.sub(v, sep + 1))
if rev and rev < tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`)
