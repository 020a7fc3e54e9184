-- One row per token; see the postgres migration. One statement, so that
-- MySQL's non-transactional DDL cannot stop half way.
CREATE TABLE IF NOT EXISTS {table} (
	id            VARBINARY(128) NOT NULL PRIMARY KEY,
	version       BIGINT NOT NULL,
	user_name     MEDIUMBLOB NOT NULL,
	client_id     MEDIUMBLOB NOT NULL,
	client_secret MEDIUMBLOB NOT NULL,
	refresh_token MEDIUMBLOB NOT NULL,
	access_token  MEDIUMBLOB NOT NULL,
	grant_token   MEDIUMBLOB NOT NULL,
	redirect_url  MEDIUMBLOB NOT NULL,
	api_domain    MEDIUMBLOB NOT NULL,
	expiry_ms     BIGINT NULL,
	purge_ms      BIGINT NULL,
	user_key      BINARY(32) NULL,
	grant_key     BINARY(32) NULL,
	refresh_key   BINARY(32) NULL,
	access_key    BINARY(32) NULL,
	UNIQUE KEY user_key (user_key),
	UNIQUE KEY grant_key (grant_key),
	UNIQUE KEY refresh_key (refresh_key),
	UNIQUE KEY access_key (access_key),
	KEY purge_at (purge_ms)
) ENGINE=InnoDB;
