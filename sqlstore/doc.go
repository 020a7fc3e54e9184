// Package sqlstore is a tokencache.Store in an SQL table on PostgreSQL
// (jackc/pgx), MySQL or MariaDB (go-sql-driver/mysql), or SQLite
// (modernc.org/sqlite, pure Go): the durable record that redisstore can
// keep in front of it (redisstore.WithDurableStore), or a store on its own.
//
// # Table
//
// One row per token (default table "tokencache_tokens", WithTable): the ID,
// the revision, the token's fields as bytes (a value may hold NUL or invalid
// UTF-8), the access token's expiry and the time the row stops being live,
// both in Unix milliseconds, and four digest columns for the lookup rules:
// user name with client ID, grant token with client ID, refresh token with
// client ID, and access token. A digest is SHA-256 (HMAC-SHA-256 under
// WithIndexKey) of the rule, the client ID and the value; no secret is ever
// compared or indexed in clear, and none enters the SQL text: every value
// is a placeholder, and the only names in SQL text are the validated table
// name and the package's own.
//
// # Uniqueness and races
//
// Each digest column has a unique index, so the database refuses a second
// token for one identity whatever the interleaving. A save that names its
// ID and a Version is one conditional UPDATE (the compare-and-set). Any
// other save runs one transaction: it reads and locks the row the token
// matches (SELECT … FOR UPDATE on PostgreSQL and MySQL, both at READ
// COMMITTED; SQLite's BEGIN IMMEDIATE makes the transaction the only
// writer), then updates that row or inserts a new one. Two racing inserts
// of one identity meet at the unique index: the loser's transaction fails
// as a whole (nothing of it is kept), runs again, finds the winner's row
// and updates it. A value held by two tokens goes to the one saved last; see
// SaveToken.
//
// # Expiry
//
// A token without a refresh token is live until its access token expires;
// one with a refresh token until the refresh retention (default 90 days,
// WithRefreshRetention) after the later of its Expiry and its last save,
// exactly as redisstore's hashes live; a token without Expiry forever.
// Lookups filter on the stored purge time, so a dead row is never
// returned, and the cleanup loop (WithCleanupInterval) deletes dead rows in
// bounded batches through the index on that column: no lookup scans the
// table.
//
// # Schema
//
// Open creates the table and migrates it with the versioned SQL files
// embedded in the package, recording each table's version in
// tokencache_schema. Many processes may Open at once: they serialise on a
// lock (pg_advisory_xact_lock on PostgreSQL, GET_LOCK on MySQL, the write
// lock of BEGIN IMMEDIATE on SQLite), and whoever comes later finds nothing
// to do.
package sqlstore
