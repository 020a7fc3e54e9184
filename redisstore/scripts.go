package redisstore

import "github.com/redis/go-redis/v9"

// Every Lua script of the package is here. Each touches the keys of one
// Cluster slot only: a token's hash and its abort set share the ID's hash
// tag, and an index bucket hash is alone in its slot. Their results are our own
// numbers (the code constants below), never Redis's error text. doc.go
// argues, step by step, why the scripts keep the store consistent.

// Result codes of commitScript.
const (
	commitOK       = 0 // the hash now holds the new revision
	commitConflict = 1 // the hash is not at the expected incarnation and revision
	commitLockLost = 2 // the fencing lock does not hold the caller's token
	commitAborted  = 3 // a reader fenced this revision: it must never commit
)

// Result codes of claimScript.
const (
	claimOK   = 0 // the member is in the index, with the score returned
	claimBusy = 1 // an exclusive claim met another holder
)

// Result codes of settleScript.
const (
	settleResolved = 0 // the claim's revision has committed or lost: it can never commit later
	settleFenced   = 1 // the claim was still able to commit; now it never will
	settleDead     = 2 // the claim's incarnation is gone: it can never commit
)

// Result codes of deleteScript.
const (
	deleteDone   = 0 // the hash was deleted; its fields are returned
	deleteAbsent = 1 // no hash of that incarnation (a pending insert of it is fenced)
)

// bucketLib is the Lua shared by the scripts on a bucket hash. A bucket
// holds, for each value whose digest falls in it, one field whose value is
// the list of that value's members, "member;score;expiry" joined by ",":
// the member "ID:incarnation:revision", its claim score and the Unix second
// after which it has expired (0: never), both in base 36. Neither ',' nor
// ';' can appear in a member. Time is the server's (TIME), as for key TTLs.
const bucketLib = `
local function b36(n)
  n = math.floor(n)
  if n <= 0 then return '0' end
  local d, s = '0123456789abcdefghijklmnopqrstuvwxyz', ''
  while n > 0 do
    local r = n % 36
    s = string.sub(d, r + 1, r + 1) .. s
    n = (n - r) / 36
  end
  return s
end
local function parse(v)
  local out = {}
  if not v then return out end
  for e in string.gmatch(v, '[^,]+') do
    local m, sc, ex = e, 0, 0
    local p = string.find(e, ';', 1, true)
    if p then
      m = string.sub(e, 1, p - 1)
      local rest = string.sub(e, p + 1)
      local q = string.find(rest, ';', 1, true)
      if q then
        sc = tonumber(string.sub(rest, 1, q - 1), 36) or 0
        ex = tonumber(string.sub(rest, q + 1), 36) or 0
      else
        sc = tonumber(rest, 36) or 0
      end
    end
    out[#out + 1] = {m, sc, ex}
  end
  return out
end
local function put(key, field, list)
  if #list == 0 then
    redis.call('HDEL', key, field)
    return
  end
  local parts = {}
  for i, e in ipairs(list) do parts[i] = e[1] .. ';' .. b36(e[2]) .. ';' .. b36(e[3]) end
  redis.call('HSET', key, field, table.concat(parts, ','))
end
local function unexpired(list, nows)
  local keep = {}
  for _, e in ipairs(list) do
    if e[3] == 0 or e[3] > nows then keep[#keep + 1] = e end
  end
  return keep
end
local function prune(key, field, nows)
  local r = redis.call('HRANDFIELD', key, 8, 'WITHVALUES')
  for i = 1, #r, 2 do
    if r[i] ~= field then
      local list = parse(r[i + 1])
      local keep = unexpired(list, nows)
      if #keep < #list then put(key, r[i], keep) end
    end
  end
end
local tm = redis.call('TIME')
local nowms = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
local nows = math.floor(nowms / 1000)
`

// claimScript writes a save's index entry ahead of its commit (a
// write-ahead claim). KEYS[1] is the bucket hash, ARGV[1] the value's field
// in it (see bucketLib).
//
// ARGV[2] is the member, ARGV[3] its prefix "ID:incarnation:" (older
// members of the same incarnation are replaced), ARGV[4] the score wanted,
// ARGV[5] flags ("x": exclusive, refuse when any other member exists; "e":
// use the score as given instead of above every other member), ARGV[6] the
// member's TTL in ms (0: none), ARGV[7] seconds added to its expiry (a
// margin that keeps it beyond the hash's TTL, which starts at the commit).
// The member replacing older ones of its incarnation keeps the latest
// expiry among them: a claim that never commits must not shorten the life
// of the entry of the revision that did (as a key's TTL was only ever
// extended in the legacy layout).
//
// Members of the field that have expired are dropped first, and so are the
// expired members of up to 8 other fields of the bucket (pruneFields).
//
// It returns {claimOK, score, {member, score, ...}, n} with the (at most
// 16) highest other members scored below the new one, whose holders must be
// told they were overtaken, and the number n of all those below; or
// {claimBusy, 0, {member, score, ...}} with all others.
var claimScript = redis.NewScript(bucketLib + `
local key, field, member, prefix = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local all = unexpired(parse(redis.call('HGET', key, field)), nows)
table.sort(all, function(x, y) return x[2] > y[2] end)
local plen = string.len(prefix)
local others, top = {}, nil
for _, e in ipairs(all) do
  if string.sub(e[1], 1, plen) ~= prefix then
    others[#others + 1] = e[1]
    others[#others + 1] = e[2]
    if top == nil or e[2] > top then top = e[2] end
  end
end
if string.find(ARGV[5], 'x', 1, true) and #others > 0 then
  return {1, 0, others}
end
local score = tonumber(ARGV[4])
if not string.find(ARGV[5], 'e', 1, true) and top ~= nil and score <= top then score = top + 1 end
local ttl, exp = tonumber(ARGV[6]), 0
if ttl > 0 then exp = math.ceil((nowms + ttl) / 1000) + tonumber(ARGV[7]) end
for _, e in ipairs(all) do
  if exp ~= 0 and string.sub(e[1], 1, plen) == prefix then
    if e[3] == 0 then exp = 0 elseif e[3] > exp then exp = e[3] end
  end
end
local list, lower, below = {{member, score, exp}}, {}, 0
for _, e in ipairs(all) do
  if string.sub(e[1], 1, plen) ~= prefix then
    list[#list + 1] = e
    if e[2] < score then
      below = below + 1
      if below <= 16 then
        lower[#lower + 1] = e[1]
        lower[#lower + 1] = e[2]
      end
    end
  end
end
table.sort(list, function(x, y) return x[2] > y[2] end)
put(key, field, list)
prune(key, field, nows)
return {0, score, lower, below}
`)

// settleScript decides, in the token's own slot, the fate of an index claim
// "ID:incarnation:revision" that a reader or a writer found in an index.
// KEYS[1] is the token's hash, KEYS[2] its abort set. ARGV[1] is the
// incarnation, ARGV[2] the revision, ARGV[5] the abort set's TTL in ms.
//
// With ARGV[3] an overtaken-score field ("ou", "og", "or", "oa"), a writer
// whose claim overtook this one says so: the field is raised to ARGV[4] in
// the hash when it is of that incarnation, or, for an insert that has not
// committed (revision 1), recorded as "o:incarnation:field:score" in the
// abort set, where its commit finds it. It returns settleResolved,
// settleFenced (recorded for an insert) or settleDead (a gone incarnation).
//
// With ARGV[3] empty, a reader settles a claim it found invalid: it
// returns settleResolved when the hash is of that incarnation at that
// revision or later (the claim committed or lost its compare-and-set),
// settleDead when the claim names a revision above 1 of an incarnation the
// hash no longer has (an update of a token that is gone), and otherwise
// records "incarnation:revision" in the abort set, so that commitScript
// refuses it, and returns settleFenced.
var settleScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'v')
local n = redis.call('HGET', KEYS[1], 'n') or ''
local inc, rev, field = ARGV[1], tonumber(ARGV[2]), ARGV[3]
if field ~= '' then
  if v and n == inc then
    local o = tonumber(redis.call('HGET', KEYS[1], field) or '0')
    if tonumber(ARGV[4]) > o then redis.call('HSET', KEYS[1], field, ARGV[4]) end
    return 0
  end
  if rev > 1 then return 2 end
  redis.call('SADD', KEYS[2], 'o:' .. inc .. ':' .. field .. ':' .. ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
  return 1
end
if v and n == inc then
  if tonumber(v) >= rev then return 0 end
elseif rev > 1 then
  return 2
end
redis.call('SADD', KEYS[2], inc .. ':' .. ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
`)

// commitScript is the commit point of a save: it replaces the token hash
// KEYS[1] when it is at the expected incarnation and revision, the revision
// has not been fenced in the abort set KEYS[2], and the optional lock
// KEYS[3] holds the caller's token.
//
// ARGV[1] is the expected incarnation, ARGV[2] the expected revision (0: no
// token may exist), ARGV[3] the new incarnation, ARGV[4] the new revision,
// ARGV[5] the hash TTL in ms (0: none), ARGV[6] the lock token, ARGV[7] a
// random write ID, ARGV[8...] the new field, value pairs. The write ID is
// stored (field "w"), so that the same script sent again by a client that
// lost the connection after Redis ran it (go-redis retries) answers
// commitOK instead of a conflict. Overtaken-score fields ("o…") survive a save
// that keeps the incarnation; a new incarnation takes those that
// settleScript recorded for it in the abort set while it was in flight.
//
// It returns {commitOK}, {commitConflict, current revision},
// {commitLockLost} or {commitAborted}.
var commitScript = redis.NewScript(`
local h = KEYS[1]
if redis.call('SISMEMBER', KEYS[2], ARGV[3] .. ':' .. ARGV[4]) == 1 then return {3} end
local v = redis.call('HGET', h, 'v')
if v and v == ARGV[4] and (redis.call('HGET', h, 'n') or '') == ARGV[3] and redis.call('HGET', h, 'w') == ARGV[7] then
  return {0} -- this very write, sent again after a cut connection
end
local expect = tonumber(ARGV[2])
if expect == 0 then
  if v then return {1, tonumber(v)} end
elseif not v or tonumber(v) ~= expect or (redis.call('HGET', h, 'n') or '') ~= ARGV[1] then
  return {1, tonumber(v or '0')}
end
if #KEYS > 2 and redis.call('GET', KEYS[3]) ~= ARGV[6] then return {2} end
local keep = {}
if v and ARGV[1] == ARGV[3] then
  local all = redis.call('HGETALL', h)
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 1) == 'o' then
      keep[#keep + 1] = all[i]
      keep[#keep + 1] = all[i + 1]
    end
  end
elseif ARGV[1] ~= ARGV[3] then
  local best, pre = {}, 'o:' .. ARGV[3] .. ':'
  for _, e in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    if string.sub(e, 1, string.len(pre)) == pre then
      local rest = string.sub(e, string.len(pre) + 1)
      local sep = string.find(rest, ':', 1, true)
      local f, sc = string.sub(rest, 1, sep - 1), tonumber(string.sub(rest, sep + 1))
      if best[f] == nil or sc > best[f] then best[f] = sc end
      redis.call('SREM', KEYS[2], e)
    end
  end
  for f, sc in pairs(best) do
    keep[#keep + 1] = f
    keep[#keep + 1] = string.format('%d', sc)
  end
end
redis.call('DEL', h)
redis.call('HSET', h, 'v', ARGV[4], 'w', ARGV[7])
if ARGV[3] ~= '' then redis.call('HSET', h, 'n', ARGV[3]) end
for i = 8, #ARGV, 200 do
  redis.call('HSET', h, unpack(ARGV, i, math.min(i + 199, #ARGV)))
end
for i = 1, #keep, 2 do
  local cur = tonumber(redis.call('HGET', h, keep[i]) or '0')
  if tonumber(keep[i + 1]) > cur then redis.call('HSET', h, keep[i], keep[i + 1]) end
end
local ttl = tonumber(ARGV[5])
if ttl > 0 then redis.call('PEXPIRE', h, ttl) end
return {0}
`)

// deleteScript deletes the token hash KEYS[1] when it is of incarnation
// ARGV[1] ("*": any) and returns {deleteDone, its fields}. Otherwise it
// records "ARGV[1]:1" in the abort set KEYS[2] (TTL ARGV[2] ms), so that a
// pending insert of that incarnation can never commit, and returns
// {deleteAbsent}.
var deleteScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'v')
local n = redis.call('HGET', KEYS[1], 'n') or ''
if v and (ARGV[1] == '*' or n == ARGV[1]) then
  local all = redis.call('HGETALL', KEYS[1])
  redis.call('DEL', KEYS[1])
  return {0, all}
end
if ARGV[1] ~= '*' then
  redis.call('SADD', KEYS[2], ARGV[1] .. ':1')
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return {1}
`)

// bucketDropScript removes members from the value's field ARGV[1] of the
// bucket hash KEYS[1]: with ARGV[4] set, exactly the member ARGV[4];
// otherwise those with prefix ARGV[2] ("ID:incarnation:") whose revision is
// at most ARGV[3], the entries of a value the token no longer holds (a
// claim of a later revision, which may be moving the token back onto the
// value, stays). Expired members of the field go too; other fields are
// left to claims (pruning them here too made DeleteTokens of 100,000 tokens
// about 25 % slower). It returns how many members it removed, expired ones
// not counted.
var bucketDropScript = redis.NewScript(bucketLib + `
local key, field, prefix, maxrev, exact = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local v = redis.call('HGET', key, field)
local all = parse(v)
local keep, n = {}, 0
local plen = string.len(prefix)
for _, e in ipairs(unexpired(all, nows)) do
  local m, gone = e[1], false
  if exact ~= '' then
    gone = m == exact
  elseif string.sub(m, 1, plen) == prefix then
    local rev = tonumber(string.sub(m, plen + 1))
    gone = rev ~= nil and rev <= maxrev
  end
  if gone then n = n + 1 else keep[#keep + 1] = e end
end
if v and #keep < #all then put(key, field, keep) end
return n
`)

// dropScript removes from the legacy index key KEYS[1] (a sorted set, or a
// string "ID:revision" before that) the members with prefix ARGV[1]
// ("ID:incarnation:") whose revision is at most ARGV[2]. Nothing writes
// legacy keys any more; Reindex, lookups that find a token there, and
// deletes clear them. It returns how many it removed.
var dropScript = redis.NewScript(`
local key, prefix, maxrev = KEYS[1], ARGV[1], tonumber(ARGV[2])
local t = redis.call('TYPE', key)
if type(t) == 'table' then t = t.ok end
if t == 'string' then
  local v = redis.call('GET', key)
  local id = string.sub(prefix, 1, string.find(prefix, ':', 1, true))
  if string.sub(v, 1, string.len(id)) == id then
    redis.call('DEL', key)
    return 1
  end
  return 0
elseif t ~= 'zset' then
  return 0
end
local plen, n = string.len(prefix), 0
for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
  if string.sub(m, 1, plen) == prefix then
    local rev = tonumber(string.sub(m, plen + 1))
    if rev and rev <= maxrev then
      redis.call('ZREM', key, m)
      n = n + 1
    end
  end
end
return n
`)

// pipelineScripts are the scripts queued in pipelines, where they run as
// EVALSHA: Store.pipelined loads them first.
var pipelineScripts = []*redis.Script{claimScript, settleScript, bucketDropScript, dropScript, deleteScript, commitScript}
