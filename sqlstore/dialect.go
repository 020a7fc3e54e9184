package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// dialect holds what differs between the databases: placeholders, quoting,
// row locks, the migration lock, and which errors mean "try again".
type dialect struct {
	name string
	// dollar placeholders ($1, $2, …) instead of '?'.
	dollar bool
	// quote is the identifier quote character.
	quote byte
	// forUpdate is appended to a SELECT that locks the rows it reads; SQLite
	// has no row locks (its write transactions are exclusive).
	forUpdate string
	// isolation for read-write transactions: READ COMMITTED on PostgreSQL
	// and MySQL, so a SELECT … FOR UPDATE of a missing row takes no gap lock
	// and racing inserts meet at the unique index instead of deadlocking.
	isolation sql.IsolationLevel
	// limitDelete deletes at most n rows of a WHERE clause.
	limitDelete func(table, where string, n int) string
	// lockMigrations serialises migrations between processes on conn and
	// returns the function that releases the lock. It runs before the
	// migration transaction begins; locks tied to that transaction are
	// taken by lockTx.
	lockMigrations func(ctx context.Context, conn *sql.Conn, key string) (release func(), err error)
	// lockTx takes a lock that the migration transaction tx holds until it
	// ends.
	lockTx func(ctx context.Context, tx *sql.Tx, key string) error
	// retryable reports whether err is a race another writer won (a unique
	// violation, a deadlock, a serialisation failure, a busy database):
	// running the whole transaction again will see the winner.
	retryable func(err error) bool
}

var postgresDialect = &dialect{
	name:      "postgres",
	dollar:    true,
	quote:     '"',
	forUpdate: " FOR UPDATE",
	isolation: sql.LevelReadCommitted,
	limitDelete: func(table, where string, n int) string {
		return "DELETE FROM " + table + " WHERE id IN (SELECT id FROM " + table + " WHERE " + where + " LIMIT " + strconv.Itoa(n) + ")"
	},
	lockMigrations: func(context.Context, *sql.Conn, string) (func(), error) { return func() {}, nil },
	lockTx: func(ctx context.Context, tx *sql.Tx, key string) error {
		h := fnv.New64a()
		h.Write([]byte(key))
		_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(h.Sum64()))
		return err
	},
	retryable: func(err error) bool {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			switch pe.Code {
			case "23505", "40001", "40P01": // unique_violation, serialization_failure, deadlock_detected
				return true
			}
		}
		return false
	},
}

var mysqlDialect = &dialect{
	name:      "mysql",
	quote:     '`',
	forUpdate: " FOR UPDATE",
	isolation: sql.LevelReadCommitted,
	limitDelete: func(table, where string, n int) string {
		return "DELETE FROM " + table + " WHERE " + where + " LIMIT " + strconv.Itoa(n)
	},
	// DDL commits implicitly in MySQL, so the lock is a named session lock
	// on the migration's own connection, released whatever happens.
	lockMigrations: func(ctx context.Context, conn *sql.Conn, key string) (func(), error) {
		var got sql.NullInt64
		if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 60)", key).Scan(&got); err != nil {
			return nil, err
		}
		if !got.Valid || got.Int64 != 1 {
			return nil, errors.New("timed out waiting for another process's migration (GET_LOCK)")
		}
		return func() {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), "DO RELEASE_LOCK(?)", key)
		}, nil
	},
	lockTx: func(context.Context, *sql.Tx, string) error { return nil },
	retryable: func(err error) bool {
		var me *mysql.MySQLError
		if errors.As(err, &me) {
			switch me.Number {
			case 1062, 1213, 1205: // duplicate entry, deadlock, lock wait timeout
				return true
			}
		}
		return false
	},
}

var sqliteDialect = &dialect{
	name:      "sqlite",
	quote:     '"',
	isolation: sql.LevelDefault,
	limitDelete: func(table, where string, n int) string {
		return "DELETE FROM " + table + " WHERE id IN (SELECT id FROM " + table + " WHERE " + where + " LIMIT " + strconv.Itoa(n) + ")"
	},
	// Transactions begin IMMEDIATE (the DSN's _txlock), which takes the
	// database's write lock: migrations are serialised by the transaction.
	lockMigrations: func(context.Context, *sql.Conn, string) (func(), error) { return func() {}, nil },
	lockTx:         func(context.Context, *sql.Tx, string) error { return nil },
	retryable: func(err error) bool {
		var se *sqlite.Error
		if errors.As(err, &se) {
			switch se.Code() & 0xff {
			case 19: // SQLITE_CONSTRAINT: a unique index or the primary key
				return se.Code() == 2067 || se.Code() == 1555
			case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED (the busy timeout ran out)
				return true
			}
		}
		return false
	},
}

// ident quotes a validated identifier.
func (d *dialect) ident(name string) string {
	q := string(d.quote)
	return q + name + q
}

// rebind rewrites the '?' placeholders of q for the dialect. The package's
// SQL text holds no other question marks.
func (d *dialect) rebind(q string) string {
	if !d.dollar {
		return q
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}
