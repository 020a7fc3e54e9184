-- In-flight refresh marks (tokencache.FlightRecorder).
CREATE TABLE IF NOT EXISTS {flights} (
	id       VARBINARY(128) NOT NULL PRIMARY KEY,
	version  BIGINT NOT NULL,
	holder   VARBINARY(1024) NOT NULL,
	until_ms BIGINT NOT NULL
) ENGINE=InnoDB;
