// Package redisstore is a tokencache.Store in Redis: standalone, Sentinel or
// Cluster, through redis.UniversalClient.
//
// # Key layout
//
// Every key starts with the namespace (WithNamespace, default "tokencache").
// With the default namespace:
//
//	tokencache:t:{ID}     hash: one token. Fields v (revision), un, ci, cs, rt,
//	                      at, gt, ru, ad (the string fields), ex (expiry, Unix
//	                      ms), p (set while an insert is in flight). A value
//	                      over 64 bytes is split into fields name, name.1,
//	                      name.2 … so the hash stays in Redis's compact
//	                      listpack encoding.
//	tokencache:ids        set: the IDs of all tokens, for GetTokens.
//	tokencache:u:DIGEST   string "ID:revision": user name + client ID index.
//	tokencache:g:DIGEST   string: grant token + client ID index.
//	tokencache:r:DIGEST   string: refresh token + client ID index.
//	tokencache:a:DIGEST   string: access token index.
//
// DIGEST is the first 128 bits of SHA-256 (HMAC-SHA-256 with the key given
// to WithIndexKey) over the rule, the client ID and the value, in unpadded
// base64url. No secret and no user name ever appears in a key name. The
// braces make ID the hash tag, so a token's hash and its lock
// (tokencache:lock:{ID}) share one Cluster slot.
//
// # Expiry
//
// A token without a refresh token lives until its access token expires. One
// with a refresh token lives until Expiry plus the refresh retention
// (WithRefreshRetention, default 90 days, counted from the later of Expiry
// and the save, so every save renews it; 0 keeps it until deleted), so an
// expired access token never costs the user the refresh token. Index keys
// expire with their token; the access-token index expires with the access
// token. The store also checks expiry itself on every read, so a lookup is
// right to the millisecond whatever Redis's expiry cycle is doing.
//
// # Consistency
//
// A save writes the hash with a Lua script that checks the revision (the
// compare-and-set behind Version), then points the index keys at the new
// revision. Index keys live in other slots than the hash, so they cannot be
// written atomically with it; instead every lookup through an index checks
// that the hash still holds the value it was looked up by, and a stale entry
// (left by a crash, or by a writer that lost a race) is ignored and then
// deleted, but only if it still names the same revision. A new identity is
// claimed with SET NX on its index key, so concurrent inserts of one user
// make one token. A process remembers index-to-ID hints (WithHintCacheSize)
// and checks each against the hash, which makes the common lookup one round
// trip.
//
// Nothing here uses KEYS, FLUSHDB, keyspace notifications or hash-field
// expiry, and no lookup is O(number of tokens).
//
// Build the client with ContextTimeoutEnabled: true so that a hung server
// cannot hold a call past the caller's deadline.
package redisstore
