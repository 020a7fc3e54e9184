package sqlstore

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// ErrBadDSN is wrapped by Open when the data source name cannot be used. Its
// messages never quote the DSN, which may hold a password.
var ErrBadDSN = errors.New("sqlstore: invalid data source name")

// dsnInfo is a parsed data source name: which dialect, and what to hand to
// database/sql.
type dsnInfo struct {
	dialect    *dialect
	driverName string
	driverDSN  string
	memory     bool // an SQLite in-memory database: one connection only
}

// parseDSN turns a DSN of the forms Open documents into a driver name and
// that driver's own DSN.
func parseDSN(dsn string) (dsnInfo, error) {
	scheme, rest, ok := strings.Cut(dsn, ":")
	if !ok {
		return dsnInfo{}, fmt.Errorf("%w: want postgres://…, mysql://… or sqlite:PATH", ErrBadDSN)
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		if _, err := url.Parse(dsn); err != nil {
			return dsnInfo{}, fmt.Errorf("%w: not a postgres:// URL", ErrBadDSN) // url's error quotes the password
		}
		return dsnInfo{dialect: postgresDialect, driverName: "pgx", driverDSN: dsn}, nil
	case "mysql", "mariadb":
		d, err := mysqlDSN(dsn)
		if err != nil {
			return dsnInfo{}, err
		}
		return dsnInfo{dialect: mysqlDialect, driverName: "mysql", driverDSN: d}, nil
	case "sqlite", "sqlite3":
		return sqliteDSN(rest)
	default:
		return dsnInfo{}, fmt.Errorf("%w: unknown scheme %q: want postgres, mysql or sqlite", ErrBadDSN, scheme)
	}
}

// mysqlDSN translates mysql://user[:pass]@host[:port]/db[?params] into
// go-sql-driver/mysql's user:pass@tcp(host:port)/db?params form, with the
// settings this package relies on.
func mysqlDSN(dsn string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%w: want mysql://user[:pass]@host[:port]/db", ErrBadDSN)
	}
	cfg := mysql.NewConfig()
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" {
		cfg.Addr = u.Host + ":3306"
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if cfg.DBName == "" || strings.Contains(cfg.DBName, "/") {
		return "", fmt.Errorf("%w: mysql DSN needs one database name in its path", ErrBadDSN)
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.Timeout = 10 * time.Second
	cfg.MultiStatements = false
	out := cfg.FormatDSN()
	if u.RawQuery != "" {
		// Further driver parameters (tls=true, timeout=5s, …) pass through;
		// the driver checks them.
		sep := "?"
		if strings.Contains(out, "?") {
			sep = "&"
		}
		out += sep + u.RawQuery
		parsed, err := mysql.ParseDSN(out)
		if err != nil {
			return "", fmt.Errorf("%w: a mysql DSN parameter is not understood by the driver", ErrBadDSN)
		}
		parsed.ParseTime = true
		parsed.MultiStatements = false
		out = parsed.FormatDSN()
	}
	return out, nil
}

// sqliteDSN turns the PATH of sqlite:PATH (or sqlite://PATH) into the
// driver's DSN: WAL journal, a busy timeout so writers queue instead of
// failing, and BEGIN IMMEDIATE transactions so a transaction that will
// write takes the write lock up front (no lock upgrade that could deadlock).
func sqliteDSN(rest string) (dsnInfo, error) {
	path := strings.TrimPrefix(rest, "//")
	if path == "" {
		return dsnInfo{}, fmt.Errorf("%w: sqlite DSN needs a path: sqlite:PATH", ErrBadDSN)
	}
	if strings.ContainsAny(path, "?#\x00") || strings.HasPrefix(path, "file:") {
		return dsnInfo{}, fmt.Errorf("%w: the sqlite path may not hold '?', '#' or NUL, nor be a file: URI", ErrBadDSN)
	}
	memory := path == ":memory:"
	params := "_pragma=busy_timeout(10000)&_txlock=immediate"
	if !memory {
		params = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate"
	}
	return dsnInfo{dialect: sqliteDialect, driverName: "sqlite", driverDSN: path + "?" + params, memory: memory}, nil
}
