-- In-flight refresh marks (tokencache.FlightRecorder): one row per token
-- whose refresh is at the authorization server.
CREATE TABLE IF NOT EXISTS {flights} (
	id       TEXT COLLATE "C" PRIMARY KEY,
	version  BIGINT NOT NULL,
	holder   BYTEA NOT NULL,
	until_ms BIGINT NOT NULL
);
