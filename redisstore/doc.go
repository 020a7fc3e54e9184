// Package redisstore is a tokencache.Store in Redis: standalone, Sentinel or
// Cluster, through redis.UniversalClient.
//
// # Key layout
//
// Every key starts with the namespace (WithNamespace, default "tokencache").
// With the default namespace:
//
//	tokencache:t:{ID}     hash: one token. Fields v (revision), n
//	                      (incarnation: 8 random characters, new each time
//	                      the ID is created), w (random ID of the write that
//	                      made the revision), un, ci, cs, rt, at, gt, ru, ad
//	                      (the string fields), ex (expiry, Unix ms), su sg
//	                      sr sa (score of the token's claim on its user,
//	                      grant, refresh and access entry), ou og or oa
//	                      (highest score of another token's claim that
//	                      overtook it there). A value over 64 bytes is split
//	                      into fields name, name.1, name.2 … so the hash
//	                      stays in Redis's compact listpack encoding.
//	tokencache:x:{ID}     set, usually absent: fenced claims of the ID,
//	                      "incarnation:revision", and overtaking scores
//	                      recorded for an insert in flight; 24 h TTL.
//	tokencache:ids        set: "ID:incarnation" of every token, for
//	                      GetTokens and DeleteTokens.
//	tokencache:u:BUCKET   hash: user name + client ID index entries.
//	tokencache:g:BUCKET   hash: grant token + client ID index entries.
//	tokencache:r:BUCKET   hash: refresh token + client ID index entries.
//	tokencache:a:BUCKET   hash: access token index entries.
//	tokencache:layout     string "buckets", the layout marker (see
//	                      Upgrading from the sorted-set layout).
//
// The DIGEST of a value is the first 128 bits of SHA-256 (HMAC-SHA-256 with
// the key given to WithIndexKey) over the rule, the client ID and the
// value. Its first 16 bits choose the BUCKET (65,536 bucket hashes per kind,
// named by 3 base64url characters); its other 14 bytes, raw, are the field
// of the value's index entry in that bucket. No secret and no user name
// ever appears in a key or field name. The braces make ID the hash tag, so
// a token's hash, its abort set and its lock (tokencache:lock:{ID}) share
// one Cluster slot; each bucket is in a slot of its own. Every script
// touches one slot.
//
// An index entry (one field) is the list of its members, usually one:
// "member;score;expiry" joined by ",". A member is "ID:incarnation:revision",
// the claim of one save; its score orders the claims (the client's clock in
// ms, raised above every other member of the entry); its expiry is the
// Unix second after which it is gone (0: never), by the server's clock.
// Scores and expiries are in base 36, so that a typical entry (a 22
// character ID) takes about 50 bytes and a bucket stays in Redis's compact
// listpack encoding (every field and value at most 64 bytes, at most 128
// fields: about 8 million values per kind). An entry is exactly what a
// sorted set per value was in the previous layout: every script still
// reads, changes and writes one value's members atomically, on one key.
//
// Stores written by earlier versions (sorted sets "tokencache:u:DIGEST"
// with DIGEST the whole digest in unpadded base64url, string index entries
// "ID:revision" before those, bare IDs in the set, hashes without n) are
// still read; Reindex moves their entries into the buckets.
//
// # Expiry
//
// A token without a refresh token lives until its access token expires. One
// with a refresh token lives until Expiry plus the refresh retention
// (WithRefreshRetention, default 90 days, counted from the later of Expiry
// and the save, so every save renews it; 0 keeps it until deleted), so an
// expired access token never costs the user the refresh token. No TTL
// exceeds 100 years, however far ahead Expiry is. The store also checks
// expiry itself on every read, so a lookup is right to the millisecond
// whatever Redis's expiry cycle is doing.
//
// Redis 7.0 has no TTL per hash field, so a bucket has no TTL and each
// member carries its own expiry instead: the TTL its claim was given (the
// hash's TTL; for the access-token entry, the access token's life) from the
// server's clock at the claim, rounded up to the second, plus a margin of
// 5 s (defaultExpirySlack) because the hash's TTL starts at the commit, a
// little later. A member that replaces older members of its incarnation
// keeps the latest of their expiries, so that a claim that never commits
// cannot shorten the life of the entry of the revision that did (the
// legacy layout likewise only ever extended a key's TTL).
//
// Expired members are removed by writes, never by readers (a reader checks
// every member against its hash anyway, and an expired member's hash has
// expired too): claimScript and bucketDropScript remove the expired members
// of the field they change, and claimScript also those of up to 8 other
// fields of the same bucket (HRANDFIELD 8), so each write to a bucket does
// bounded work (reading and rewriting at most 9 fields) and the entries of
// tokens whose hashes expired by TTL do not accumulate: with 65,536 buckets
// per kind and n values, a bucket holds about n/65,536 fields, each claim
// in it checks 8 of them, and every save claims in 3 or 4 buckets. An expired member is
// removable for the same reason as a dead one (Definitions): its TTL was the
// hash's, which ran out, so its claim committed and expired, or its save
// stalled between claim and commit for longer than its TTL, the case the
// legacy layout's key TTL had too (see Limits).
//
// # What the protocol guarantees
//
// Under any interruption (a caller's deadline, a cut connection, a killed
// process, between any two commands, including a command that Redis ran but
// whose reply was lost) and any interleaving of writers in any number of
// processes:
//
//	G1. Every live token is found by every rule it matches.
//	G2. A lookup returns only a token that matches the query at that moment,
//	    and when several tokens hold the value, the one whose save claimed
//	    it last (memstore's rule: the most recently saved one wins; when it
//	    moves off the value, the other is found again).
//	G3. Rule-based saves never make a second token for one identity.
//	G4. Every live token is in the set of IDs (GetTokens, DeleteTokens).
//	G5. A failed call returns an error (never ErrNotFound for a failure).
//
// # Definitions
//
// An index member m = "ID:inc:rev" of key K (the index of value V) is valid
// when the hash of ID exists, has incarnation inc, and matches V (the rule's
// fields are equal and, for an access token, it has not expired). Validity
// is checked on every read: it depends on the hash only, not on rev.
//
// rev only says whether the claim can still commit. The claim of m can
// commit only while the hash is of incarnation inc at revision rev-1 (an
// update), or absent (rev 1, an insert), and "inc:rev" is not in the abort
// set. Hence, since revisions of an incarnation only grow and incarnations
// never come back:
//
//	resolved: hash of inc at a revision >= rev: m's claim committed or lost;
//	dead:     hash not of inc, rev > 1: m's incarnation is gone for good;
//	fenced:   "inc:rev" in the abort set: commitScript refuses it;
//	pending:  anything else: the claim may still commit.
//
// An invalid member that is resolved, dead or fenced can never become valid
// (a later save of the same token claims a new member, with a higher rev).
// Only such members (and expired ones, see Expiry) are ever removed, and
// always by their exact member string (bucketDropScript with an exact
// member, or with a prefix "ID:inc:" and revisions up to a bound), so
// removing one never removes the entry of a later claim or of a re-created
// ID (issue 7, defects 2, 4 and 5). A write to one field of a bucket
// touches other fields only to remove their expired members.
//
// # Reading
//
// FindTokenByID: HGETALL of the hash. One round trip.
//
// FindToken by another rule (read.go, lookup and walk):
//
//	R1. Hint: if this process remembers K -> ID, HGETALL the hash; answer it
//	    if it matches the query and hintHolds (its score field s_k is set
//	    and its overtaken field o_k is below it). Otherwise:
//	R2. HGET BUCKET FIELD: the entry's members, highest score first.
//	R3. For each member in order, HGETALL its hash. Among valid members the
//	    answer is the one whose hash committed the highest claim score s_k
//	    (a member's own score may come from a later claim that failed to
//	    commit; since that score is at least s_k, the walk stops at the
//	    first member scored below the best s_k found, usually after one
//	    read). An invalid one that is resolved, dead or malformed
//	    is removed (bucketDropScript, that member only, best effort); a
//	    pending one younger than
//	    pendingBound (2 s, by its score) is skipped; an older one, or one
//	    that this process's own failed save left (leftClaims), is fenced
//	    in its own slot (settleScript) and then removed.
//	R4. Nothing valid: the value's legacy key (until the layout marker is
//	    seen, see Upgrading), then each previous index key
//	    (WithPreviousIndexKeys: its bucket entry, then its legacy key) is
//	    walked the same way; a hit is re-indexed into the current key's
//	    buckets (reindexToken), and its legacy and previous entries go.
//
// A reader never writes anything that a valid member depends on, so an
// interrupted read changes no answer.
//
// # Saving
//
// Every save is a loop of attempts (save.go, save and saveOnce); each
// attempt starts from a fresh read, so an attempt that is cut short, loses
// a race or is refused leaves nothing the next attempt (or a reader) does
// not handle. An attempt:
//
//	S1. Read. By ID: HGETALL the hash. By another rule: the lookup above.
//	    This gives the target: an existing token (ID, inc, rev) to update,
//	    or an insert (new random ID, new incarnation, rev 1). A Version that
//	    does not match is ErrConflict here. A dead token's ID (not live)
//	    gets a new incarnation. If the lookup saw a pending claim it must
//	    not ignore, an insert waits and starts over.
//	S2. Claim, in one pipeline: SADD "ID:inc" to the set of IDs (for a new
//	    incarnation), and for each value of the new token claimScript on its
//	    bucket entry: add the member "ID:inc:rev'" (rev' = rev+1) with a
//	    score above all others and its expiry, replacing this
//	    incarnation's older member. For an insert, the claim of the
//	    identity that decided the lookup is exclusive: it is refused when
//	    the entry has any other unexpired member.
//	S3. Settle: each claim returns the (at most 16) highest other members
//	    below it; settleScript raises their o_k field to the new score (in
//	    their hash, or, for an insert in flight, as a record in their abort
//	    set that its commit picks up).
//	S4. Commit: commitScript on the hash, atomically: refuse if "inc:rev'"
//	    is fenced, if the hash is not at the expected incarnation and
//	    revision (compare-and-set), or if the lock of SaveTokenIfLocked
//	    does not hold; else replace the fields, keep the o_k fields, store
//	    the claim scores s_k and the write ID, set the TTL. With
//	    WithReplicaAcks, WAIT follows on the same connection.
//	S5. Drop: bucketDropScript removes this incarnation's members with a
//	    revision up to rev' from the entries of values the token no longer holds
//	    (and, after a new incarnation, the old one's members and set member).
//
// Interruptions. What a reader sees if the attempt stops after each step,
// and what repairs it:
//
//	after S1: nothing was written.
//	during or after S2: some claims exist; the hash is unchanged. A claim
//	    for a value the hash does not hold is invalid and pending: readers
//	    skip it and find the previous holders exactly as before (G1, G2).
//	    A claim for a value the hash already holds is valid and names the
//	    same token. An insert's set member names an incarnation with no
//	    hash: GetTokens skips it. Repair: the next attempt claims again
//	    (replacing these members); a reader fences and removes the claims
//	    once older than pendingBound; GetTokens fences and removes the set
//	    member. A fenced claim never commits, so removing it cannot
//	    unindex a committed value.
//	after S3: as after S2; some holders' o_k fields are higher, which only
//	    makes their hints not hold (one more round trip, never a wrong
//	    answer).
//	after S4: the token is committed, and every value it holds has a valid
//	    member in its index (claimed in S2, before the commit, and never
//	    removed while valid) and its ID in the set (G1, G4: the
//	    write-ahead property). Entries of values it moved off are invalid
//	    and resolved: readers skip and remove them. If the reply was lost
//	    and go-redis sent the script again, the write ID makes the second
//	    run answer commitOK.
//	after S5: done.
//
// A claim refused in S2 (exclusive identity taken) abandons its incarnation:
// its other claims and set member are removed at once (it never commits).
// A commit refused in S4 leaves its claims as pending members of a
// revision that will never commit: they are resolved (the hash moved on)
// or get fenced by the first reader that finds them old.
//
// # Deleting
//
// DeleteToken (scan.go): D1. deleteScript HGETALLs and DELs the hash
// atomically (WAIT follows with WithReplicaAcks). D2. bucketDropScript
// removes the incarnation's members from each index entry of the deleted
// values (dropScript from their legacy keys too, until the layout marker is
// seen), and SREM its set member. After D1 the token is gone for every reader: its
// members are invalid and either dead (rev > 1) or, for a never-updated
// token, look like a pending insert until pendingBound, then get fenced.
// A save of the same identity that had read the deleted token fails its
// compare-and-set in S4 and starts over (defects 3 and 9).
//
// DeleteTokens walks the set of IDs: for each member "ID:inc" deleteScript
// deletes the hash of that incarnation, or, when there is none, fences
// "inc:1" (an insert in flight then never commits), and then the entries
// and set members go as in D2. GetTokens' clean-up of a member whose hash
// is not of its incarnation fences it the same way (settleScript) before
// SREM, and keeps it when the insert committed meanwhile: a re-created ID
// has another incarnation, hence another member, which no clean-up touches.
//
// # Interleavings
//
// One identity, two inserters (G3): both miss in S1; their exclusive claims
// in S2 run one after the other on the identity's key, and the second is
// refused (the first's member is there). The loser starts over; while the
// winner's claim is pending (younger than pendingBound) a lookup reports
// it busy and the loser waits; once the winner commits, the loser finds it
// and updates it. If the winner died, its claim is fenced in its own slot
// after pendingBound and removed, and the loser inserts. A fenced claim
// cannot commit later, so the two can never both commit.
//
// An update racing a delete and a new login (defect 9): the update's
// compare-and-set names the deleted incarnation and fails; the next attempt
// finds the new login's token and updates it.
//
// Several holders of one value (moves by ID, shared refresh tokens): each
// save re-claims every value it holds with a score above all others and
// commits that score (s_k) with the token, so the valid holder with the
// highest s_k is the one whose committed save claimed last; an interrupted
// save raises its member's score but not its s_k, so it changes no answer;
// when the winner moves off, its member becomes invalid and the next valid
// one is found (G2). A
// hint to X holds only if no other token's claim overtook X's claim on that
// key: such a claim sets X's o_k above X's s_k before it commits (S3
// precedes S4), and commitScript keeps o_k, so a hint can never return X
// while a later holder is committed (defect 6).
//
// # Upgrading from the sorted-set layout
//
// Nothing writes the legacy layout any more; it is read until it cannot
// matter. A lookup that finds nothing valid in the bucket entry walks the
// value's legacy key (sorted set or string) as in R3, and re-indexes a token
// found there. That costs one more round trip on a miss, so it stops once
// the layout marker exists: written by Reindex after it has re-indexed
// every live token (each then has a bucket entry for every value it holds),
// or by the first lookup in a namespace without a set of IDs (no token, so
// no legacy entry can name a live one). It is never removed (DeleteTokens
// leaves it: nothing writes the legacy layout again). A process that sees
// the marker remembers it; one that does not looks again at most every 5 s.
// The marker only ever says that no legacy entry names a live token that
// lacks a bucket entry, so a process that has not seen it yet reads legacy
// keys for nothing, never the other way round.
//
// Why the guarantees hold across the change: a token written by an earlier
// version has every value in its legacy keys (G1 held there); a lookup falls
// back to them whenever the bucket entry has no valid member, so the token
// is still found (G1), and an upsert by rule finds and updates it instead of
// inserting (G3). Every save by this version claims all of the token's
// values in buckets, so a token saved since is found without the fallback.
// Among holders of a shared value, bucket members are later claims than
// legacy ones (nothing writes legacy keys any more), so answering from the
// bucket first keeps "the last claim wins" (G2). Hints are set only from a
// bucket walk, so they concern bucket members only.
//
// A rolling upgrade is the exception: while processes of an earlier version
// still run, they neither read nor write buckets. They do not find tokens
// saved by upgraded processes through a rule (they may insert a second token
// for such an identity: G3 does not hold across versions), and upgraded
// processes answer from a bucket entry before a legacy one that an old
// process claimed later. Upgrade every process, then run Reindex.
//
// # Limits
//
//   - Two saves of different tokens onto one value that overlap in time are
//     ordered by their claims, not their commits.
//   - A claim stalled for more than 24 h (abortTTL) between S2 and S4 after
//     being fenced could commit once its abort record expired.
//   - A save stalled between its claim and its commit for longer than the
//     expiry margin (5 s) leaves a member that expires that much before its
//     hash, at the end of the token's life (the legacy key's TTL did the
//     same).
//   - A bucket with more than 128 fields, or with one entry over 64 bytes
//     (a value shared by two tokens, or IDs longer than about 35
//     characters), becomes a real hash table: more memory, same behaviour.
//     Redis does not convert it back.
//   - Ages of claims use the clients' clocks; a client more than
//     pendingBound behind makes its inserts look old to others, which then
//     fence them (the insert retries; never a duplicate).
//   - A value held by more than 16 tokens: each claim tells the 16 highest
//     others and marks its own hint as not holding. The scripts read a
//     whole index entry, so a value shared by n tokens makes each write of
//     it O(n) inside Redis (real secrets are not shared; user names are per
//     client).
//
// # Cluster and failover
//
// A save or delete that meets MOVED, ASK, TRYAGAIN, CLUSTERDOWN, CROSSSLOT,
// READONLY, LOADING or a script's "non local key" error (a slot in
// migration) starts over, up to maxSaveAttempts times with a growing pause.
// WithReplicaAcks sends WAIT in one pipeline with the commit, to the master
// that owns the key, so that a save returns only once that many replicas
// have it, or an error wrapping ErrReplicaAcks.
//
// Nothing here uses KEYS, FLUSHDB, keyspace notifications or hash-field
// expiry, and no lookup is O(number of tokens). The scripts call TIME and
// HRANDFIELD, which Redis 7 allows in scripts (effects replication).
//
// Build the client with ContextTimeoutEnabled: true so that a hung server
// cannot hold a call past the caller's deadline.
package redisstore
