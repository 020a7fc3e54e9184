package lock

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrInFlight is returned by BeginFlight when another holder's refresh of
// the same (or a later) revision is still in flight: its refresh token may
// be at the server already, so sending it again could be a reuse.
var ErrInFlight = errors.New("lock: another holder's refresh is in flight")

// Flight is the record of a refresh in flight: which revision of the token
// its holder sent to the server, and who that holder is.
type Flight struct {
	Revision int64
	Holder   string        // the fencing token of the lock the record was written under
	TTL      time.Duration // how much longer the record lives
}

// beginFlightScript writes the in-flight record if the lock (KEYS[1])
// still holds the caller's token ARGV[1] and no other holder's record of
// revision ARGV[2] or later lives in KEYS[2]. Replies {1} when written,
// {0} when the lock is not held, {-1, record, pttl} when another holder's
// record is in the way.
var beginFlightScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
local cur = redis.call('GET', KEYS[2])
if cur then
  local sp = string.find(cur, ' ', 1, true)
  if sp then
    local rev = tonumber(string.sub(cur, 1, sp - 1))
    if rev and rev >= tonumber(ARGV[2]) and string.sub(cur, sp + 1) ~= ARGV[1] then
      return {-1, cur, redis.call('PTTL', KEYS[2])}
    end
  end
end
redis.call('SET', KEYS[2], ARGV[2] .. ' ' .. ARGV[1], 'PX', ARGV[3])
return {1}
`)

// extendFlightScript sets the TTL of the record KEYS[1] if it still holds
// ARGV[1]; deletes it instead when ARGV[2] is "0".
var extendFlightScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then return redis.call('DEL', KEYS[1]) end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
`)

// BeginFlight records, for ttl, that this holder is about to send the
// given revision of its token to the server. Call it right before the
// request, after reading the token under the lock, and make ttl longer
// than the request's timeout plus the time a save of its answer may take:
// while the record lives, no other holder sends that revision, even once
// this lock has expired (its holder may be paused, not dead).
//
// The same round trip checks that the lock is still held: ErrNotHeld if
// not. When another holder's record of this revision (or a later one)
// lives, nothing is written and the error wraps ErrInFlight, with that
// record returned.
func (k *Lock) BeginFlight(ctx context.Context, revision int64, ttl time.Duration) (Flight, error) {
	if k == nil {
		return Flight{}, ErrNotHeld
	}
	select {
	case <-k.lost:
		return Flight{}, ErrNotHeld
	default:
	}
	if ttl <= 0 {
		ttl = k.ttl
	}
	l := k.locker
	res, err := beginFlightScript.Run(ctx, l.rdb, []string{k.Key(), l.flightKey(k.id)},
		k.Token(), revision, ttl.Milliseconds()).Slice()
	if err != nil {
		return Flight{}, fmt.Errorf("lock: begin flight %s: %w", k.id, err)
	}
	code, _ := res[0].(int64)
	switch code {
	case 1:
		f := Flight{Revision: revision, Holder: k.Token(), TTL: ttl}
		k.flight.Store(&f)
		return f, nil
	case -1:
		f, _ := parseFlight(res[1])
		if len(res) > 2 {
			if ms, ok := res[2].(int64); ok && ms > 0 {
				f.TTL = time.Duration(ms) * time.Millisecond
			}
		}
		return f, fmt.Errorf("%w: revision %d of %s", ErrInFlight, f.Revision, k.id)
	default:
		return Flight{}, ErrNotHeld
	}
}

// ExtendFlight makes this holder's in-flight record live ttl longer, while
// it still retries the save of the server's answer. ErrNotHeld when the
// record is gone or another's.
func (k *Lock) ExtendFlight(ctx context.Context, ttl time.Duration) error {
	return k.changeFlight(ctx, "extend", max(ttl.Milliseconds(), 1))
}

// EndFlight drops this holder's in-flight record, once the server's
// answer is saved (or there was none). It works after Release too.
// ErrNotHeld when the record is gone or another's.
func (k *Lock) EndFlight(ctx context.Context) error {
	return k.changeFlight(ctx, "end", 0)
}

func (k *Lock) changeFlight(ctx context.Context, op string, ms int64) error {
	if k == nil {
		return ErrNotHeld
	}
	f := k.flight.Load()
	if f == nil {
		return ErrNotHeld
	}
	value := strconv.FormatInt(f.Revision, 10) + " " + f.Holder
	n, err := extendFlightScript.Run(ctx, k.locker.rdb, []string{k.locker.flightKey(k.id)}, value, ms).Int64()
	if err != nil {
		return fmt.Errorf("lock: %s flight %s: %w", op, k.id, err)
	}
	if n == 0 {
		return ErrNotHeld
	}
	return nil
}

// FlightOf returns token id's in-flight record; ok is false when there is
// none.
func (l *Locker) FlightOf(ctx context.Context, id string) (f Flight, ok bool, err error) {
	if l.cfg.err != nil {
		return Flight{}, false, l.cfg.err
	}
	key := l.flightKey(id)
	var get *redis.StringCmd
	var pttl *redis.DurationCmd
	_, err = l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, key)
		pttl = p.PTTL(ctx, key)
		return nil
	})
	if errors.Is(get.Err(), redis.Nil) {
		return Flight{}, false, nil
	}
	if err != nil {
		return Flight{}, false, fmt.Errorf("lock: read flight %s: %w", id, err)
	}
	f, ok = parseFlight(get.Val())
	if !ok {
		return Flight{}, false, nil
	}
	f.TTL = max(pttl.Val(), 0)
	return f, true, nil
}

func parseFlight(v any) (Flight, bool) {
	s, _ := v.(string)
	rev, holder, ok := strings.Cut(s, " ")
	if !ok {
		return Flight{}, false
	}
	n, err := strconv.ParseInt(rev, 10, 64)
	if err != nil {
		return Flight{}, false
	}
	return Flight{Revision: n, Holder: holder}, true
}
