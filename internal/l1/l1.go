// Package l1 is the in-process cache in front of a token store: it answers
// a query again without a round trip to Redis, for a short TTL, and drops
// what it holds when the fleet announces a change (package announce).
//
// # Rules
//
//   - A hit is a token that matches the query by the root package's rules
//     ([tokencache.Matches]) and is valid ([tokencache.Token.ValidAt]) at the
//     moment of the hit: an expired token is never served, whatever the TTL.
//   - An entry lives at most the TTL after it was put.
//   - [Cache.Drop] removes the entry of one token ID, [Cache.DropAll] every
//     entry. Drop is O(1): entries are held by token ID, and each query key
//     only names the ID it found, so a query key whose token was dropped is
//     a miss.
//   - The cache answers only while it is up ([Cache.Up]): after [Cache.Down]
//     (the announcements may be missed) it holds nothing and takes nothing
//     until Up again. A Cache starts down.
//   - A put is refused when an invalidation that concerns it happened after
//     the caller's [Cache.Begin]: the caller's read may predate the change
//     the invalidation announced, so its token may be stale.
//
// Eviction is an approximated LRU, as Redis's own: when a shard is full, the
// least recently used of a few sampled entries goes.
package l1

import (
	"hash/maphash"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokencache/tokencache"
)

// DefaultMaxEntries bounds a Cache when WithMaxEntries is not given.
const DefaultMaxEntries = 10000

const (
	shardCount  = 16 // of each map; a power of two
	idBuckets   = 64 // invalidation stamps by ID hash; a power of two
	evictSample = 5  // entries looked at to choose a victim
	// touchGrain is the resolution of "last used": a hit writes the
	// entry's time only when it moved by more, so hot entries are not a
	// write on every hit.
	touchGrain = int64(time.Millisecond)
)

// Option configures a Cache.
type Option func(*Cache)

// WithMaxEntries bounds the cache to about n tokens and n query keys
// (default 10000). Values below shardCount are raised to it.
func WithMaxEntries(n int) Option {
	return func(c *Cache) { c.max = max(n, shardCount) }
}

// WithClock sets the clock of TTLs and token validity (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(c *Cache) {
		if now != nil {
			c.now = now
		}
	}
}

// Cache is a bounded cache of tokens by query. It is safe for concurrent
// use. Its Drop, DropAll, Up and Down methods make it an announce.Handler.
type Cache struct {
	ttl  time.Duration
	max  int
	now  func() time.Time
	seed maphash.Seed

	up  atomic.Bool
	seq atomic.Uint64 // counts invalidations; Begin returns it
	// allSeq is the seq of the last DropAll, Up or Down; idSeq that of the
	// last Drop of an ID in each bucket.
	allSeq atomic.Uint64
	idSeq  [idBuckets]atomic.Uint64

	keys [shardCount]shard[*keyEntry] // query key -> token ID
	ids  [shardCount]shard[*idEntry]  // token ID -> token
}

type keyEntry struct {
	meta
	id string
}

type idEntry struct {
	meta
	tok tokencache.Token
}

// meta is what every entry has.
type meta struct {
	until int64        // Unix ns: the entry's end
	used  atomic.Int64 // Unix ns: the last hit, to the touchGrain
}

func (m *meta) lastUsed() int64 { return m.used.Load() }

// entry is what a shard holds.
type entry interface {
	*keyEntry | *idEntry
	lastUsed() int64
}

type shard[E entry] struct {
	mu sync.RWMutex
	m  map[string]E // guarded by mu
}

// New returns a Cache whose entries live at most ttl, or nil when ttl is not
// positive (a nil *Cache is a valid, always empty cache).
func New(ttl time.Duration, opts ...Option) *Cache {
	if ttl <= 0 {
		return nil
	}
	c := &Cache{ttl: ttl, max: DefaultMaxEntries, now: time.Now, seed: maphash.MakeSeed()}
	for _, opt := range opts {
		if opt != nil {
			opt(c)
		}
	}
	for i := range c.keys {
		c.keys[i].m = make(map[string]*keyEntry)
		c.ids[i].m = make(map[string]*idEntry)
	}
	return c
}

// Key names a query by its rule and the fields that rule compares. Keys
// live only in this process's memory; they hold secrets (an access token
// query's key holds the access token) and must never leave it.
func Key(q tokencache.Token) string {
	n := 8 + len(q.ClientID) + len(q.ID) + len(q.UserName) + len(q.GrantToken) + len(q.RefreshToken) + len(q.AccessToken)
	return string(appendKey(make([]byte, 0, n), q))
}

// appendKey appends Key(q) to dst; a lookup builds it in a buffer on the
// stack, so that a hit allocates nothing.
func appendKey(dst []byte, q tokencache.Token) []byte {
	rule := tokencache.RuleOf(q)
	var value string
	switch rule {
	case tokencache.RuleID:
		value = q.ID
	case tokencache.RuleUserName:
		value = q.UserName
	case tokencache.RuleGrantToken:
		value = q.GrantToken
	case tokencache.RuleRefreshToken:
		value = q.RefreshToken
	case tokencache.RuleAccessToken:
		value = q.AccessToken
	}
	dst = strconv.AppendInt(dst, int64(rule), 10)
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, int64(len(q.ClientID)), 10)
	dst = append(dst, ':')
	dst = append(dst, q.ClientID...)
	dst = append(dst, ':')
	return append(dst, value...)
}

func (c *Cache) hash(s string) uint64 { return maphash.String(c.seed, s) }

// Stamp marks the moment a caller started the read whose result it will
// Put; see Begin.
type Stamp uint64

// Begin returns the stamp to pass to Put for a read that starts now.
func (c *Cache) Begin() Stamp {
	if c == nil {
		return 0
	}
	return Stamp(c.seq.Load())
}

// Get returns the cached token for query q when the cache is up, the entry
// is younger than the TTL, the token still matches q and is valid now.
func (c *Cache) Get(q tokencache.Token) (tokencache.Token, bool) {
	if c == nil || !c.up.Load() {
		return tokencache.Token{}, false
	}
	var buf [192]byte
	key := appendKey(buf[:0], q)
	now := c.now()
	ns := now.UnixNano()
	ks := &c.keys[maphash.Bytes(c.seed, key)&(shardCount-1)]
	ks.mu.RLock()
	ke := ks.m[string(key)] // no allocation: the conversion is for the lookup only
	ks.mu.RUnlock()
	if ke == nil || ns >= ke.until {
		return tokencache.Token{}, false
	}
	is := &c.ids[c.hash(ke.id)&(shardCount-1)]
	is.mu.RLock()
	ie := is.m[ke.id]
	is.mu.RUnlock()
	if ie == nil || ns >= ie.until || !ie.tok.ValidAt(now) || !tokencache.Matches(q, ie.tok, now) {
		return tokencache.Token{}, false
	}
	touch(&ke.used, ns)
	touch(&ie.used, ns)
	return ie.tok, true
}

func touch(used *atomic.Int64, ns int64) {
	if ns-used.Load() > touchGrain {
		used.Store(ns)
	}
}

// Put caches tok as the answer to q, unless the cache is down, tok is not
// valid now or has no ID, or an invalidation of tok (or of everything)
// happened since since. A token older (lower Version) than the one cached
// for its ID does not replace it. It reports whether tok was cached.
func (c *Cache) Put(q tokencache.Token, tok tokencache.Token, since Stamp) bool {
	if c == nil || tok.ID == "" {
		return false
	}
	now := c.now()
	if !tok.ValidAt(now) || !tokencache.Matches(q, tok, now) {
		return false
	}
	ns := now.UnixNano()
	until := now.Add(c.ttl).UnixNano()
	h := c.hash(tok.ID)
	is := &c.ids[h&(shardCount-1)]
	is.mu.Lock()
	// Checked under the shard's lock, which Drop and DropAll take after
	// bumping their stamps: either this put sees the bump, or the drop
	// sees this entry.
	if !c.up.Load() || uint64(since) < c.allSeq.Load() || uint64(since) < c.idSeq[h&(idBuckets-1)].Load() {
		is.mu.Unlock()
		return false
	}
	if old := is.m[tok.ID]; old != nil && old.tok.Version > tok.Version {
		is.mu.Unlock()
		return false
	}
	ie := &idEntry{tok: tok}
	ie.until = until
	ie.used.Store(ns)
	insert(is, tok.ID, ie, c.max/shardCount)
	is.mu.Unlock()

	key := Key(q)
	ke := &keyEntry{id: tok.ID}
	ke.until = until
	ke.used.Store(ns)
	ks := &c.keys[c.hash(key)&(shardCount-1)]
	ks.mu.Lock()
	insert(ks, key, ke, c.max/shardCount)
	ks.mu.Unlock()
	return true
}

// insert puts e under k in s, whose lock the caller holds, evicting the
// least recently used of a few sampled entries when s is full.
func insert[E entry](s *shard[E], k string, e E, limit int) {
	if _, ok := s.m[k]; !ok && len(s.m) >= limit {
		var victim string
		oldest := int64(1<<63 - 1)
		n := 0
		for vk, ve := range s.m { // map order is random: a random sample
			if u := ve.lastUsed(); u < oldest {
				victim, oldest = vk, u
			}
			if n++; n == evictSample {
				break
			}
		}
		delete(s.m, victim)
	}
	s.m[k] = e
}

// Drop removes the token with this ID. Query keys that named it become
// misses.
func (c *Cache) Drop(id string) {
	if c == nil {
		return
	}
	h := c.hash(id)
	is := &c.ids[h&(shardCount-1)]
	is.mu.Lock()
	c.idSeq[h&(idBuckets-1)].Store(c.seq.Add(1))
	delete(is.m, id)
	is.mu.Unlock()
}

// DropAll removes every entry.
func (c *Cache) DropAll() {
	if c == nil {
		return
	}
	c.allSeq.Store(c.seq.Add(1))
	for i := range c.ids {
		clearShard(&c.ids[i])
		clearShard(&c.keys[i])
	}
}

func clearShard[E entry](s *shard[E]) {
	s.mu.Lock()
	clear(s.m)
	s.mu.Unlock()
}

// Up makes the cache answer and take entries: the announcements reach it.
func (c *Cache) Up() {
	if c == nil {
		return
	}
	c.allSeq.Store(c.seq.Add(1)) // reads that began while down may be stale
	c.up.Store(true)
}

// Down empties the cache and keeps it empty until Up: announcements may be
// missed meanwhile.
func (c *Cache) Down() {
	if c == nil {
		return
	}
	c.up.Store(false)
	c.DropAll()
}

// IsUp reports whether the cache answers.
func (c *Cache) IsUp() bool { return c != nil && c.up.Load() }

// Len returns the number of tokens held.
func (c *Cache) Len() int {
	if c == nil {
		return 0
	}
	n := 0
	for i := range c.ids {
		s := &c.ids[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
