-- One row per token; see the postgres migration.
CREATE TABLE IF NOT EXISTS {table} (
	id            TEXT NOT NULL PRIMARY KEY,
	version       INTEGER NOT NULL,
	user_name     BLOB NOT NULL,
	client_id     BLOB NOT NULL,
	client_secret BLOB NOT NULL,
	refresh_token BLOB NOT NULL,
	access_token  BLOB NOT NULL,
	grant_token   BLOB NOT NULL,
	redirect_url  BLOB NOT NULL,
	api_domain    BLOB NOT NULL,
	expiry_ms     INTEGER,
	purge_ms      INTEGER,
	user_key      BLOB UNIQUE,
	grant_key     BLOB UNIQUE,
	refresh_key   BLOB UNIQUE,
	access_key    BLOB UNIQUE
);
CREATE INDEX IF NOT EXISTS "{prefix}_purge" ON {table} (purge_ms);
