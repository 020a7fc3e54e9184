-- In-flight refresh marks (tokencache.FlightRecorder).
CREATE TABLE IF NOT EXISTS {flights} (
	id       TEXT NOT NULL PRIMARY KEY,
	version  INTEGER NOT NULL,
	holder   BLOB NOT NULL,
	until_ms INTEGER NOT NULL
);
