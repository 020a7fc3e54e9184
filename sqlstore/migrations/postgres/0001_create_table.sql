-- One row per token. IDs compare byte for byte (COLLATE "C", as on the
-- other databases), which Walk's keyset pages rely on. String fields are
-- bytes: a token may hold NUL or invalid UTF-8, which PostgreSQL's text
-- refuses. The *_key columns hold digests of the lookup values (never the
-- values), unique so that the database itself refuses a second token for
-- one identity.
CREATE TABLE IF NOT EXISTS {table} (
	id            TEXT COLLATE "C" PRIMARY KEY,
	version       BIGINT NOT NULL,
	user_name     BYTEA NOT NULL,
	client_id     BYTEA NOT NULL,
	client_secret BYTEA NOT NULL,
	refresh_token BYTEA NOT NULL,
	access_token  BYTEA NOT NULL,
	grant_token   BYTEA NOT NULL,
	redirect_url  BYTEA NOT NULL,
	api_domain    BYTEA NOT NULL,
	expiry_ms     BIGINT,
	purge_ms      BIGINT,
	user_key      BYTEA,
	grant_key     BYTEA,
	refresh_key   BYTEA,
	access_key    BYTEA,
	CONSTRAINT "{prefix}_user_key" UNIQUE (user_key),
	CONSTRAINT "{prefix}_grant_key" UNIQUE (grant_key),
	CONSTRAINT "{prefix}_refresh_key" UNIQUE (refresh_key),
	CONSTRAINT "{prefix}_access_key" UNIQUE (access_key)
);
CREATE INDEX IF NOT EXISTS "{prefix}_purge" ON {table} (purge_ms);
