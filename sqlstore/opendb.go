package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
)

// OpenDB opens and pings the database dsn names (any form Open takes) with
// the driver and settings Open would use, and returns it with its dialect
// name: "postgres", "mysql" or "sqlite". It creates nothing; it is for
// code that reads tables of its own, such as an import of another tool's
// token table. The caller closes the DB.
func OpenDB(ctx context.Context, dsn string) (*sql.DB, string, error) {
	info, err := parseDSN(dsn)
	if err != nil {
		return nil, "", err
	}
	db, err := sql.Open(info.driverName, info.driverDSN)
	if err != nil {
		return nil, "", fmt.Errorf("sqlstore: opening %s: %w", info.dialect.name, err)
	}
	if info.memory {
		db.SetMaxOpenConns(1)
	}
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, "", fmt.Errorf("sqlstore: connecting to %s: %w", info.dialect.name, err)
	}
	return db, info.dialect.name, nil
}

// QuoteIdentifier returns name quoted for the dialect OpenDB reported, after
// checking it with ValidIdentifier (at most 64 characters), so that a table
// name can go into SQL text safely. Values never do: use placeholders.
func QuoteIdentifier(dialect, name string) (string, error) {
	if err := ValidIdentifier(name, 64); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadOption, err)
	}
	switch dialect {
	case "mysql":
		return mysqlDialect.ident(name), nil
	case "postgres", "sqlite":
		return postgresDialect.ident(name), nil
	default:
		return "", fmt.Errorf("%w: unknown dialect %q", ErrBadOption, dialect)
	}
}
