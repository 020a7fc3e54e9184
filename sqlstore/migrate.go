package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SchemaTable is the table, shared by every store in a database, that
// records which migrations each token table has had.
const SchemaTable = "tokencache_schema"

//go:embed migrations
var migrationFS embed.FS

// migration is one versioned step of a dialect's schema.
type migration struct {
	version    int
	name       string
	statements []string
}

// migrations returns the dialect's migrations in order, with the table's
// name filled in. name is a validated identifier, so it is safe in SQL
// text; no value ever is.
func (d *dialect) migrations(name string) ([]migration, error) {
	dir := path.Join("migrations", d.name)
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		return nil, err
	}
	fill := strings.NewReplacer("{table}", d.ident(name), "{flights}", d.ident(flightsTable(name)), "{prefix}", name)
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", e.Name())
		}
		text, err := fs.ReadFile(migrationFS, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), statements: splitStatements(fill.Replace(string(text)))})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	return out, nil
}

// splitStatements splits a migration file at the semicolons that end its
// lines and drops comment lines: the drivers run one statement per call.
func splitStatements(text string) []string {
	var out []string
	var cur strings.Builder
	for line := range strings.SplitSeq(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// flightsTable is the name of the table of in-flight marks that goes with
// the token table name.
func flightsTable(name string) string { return name + "_flights" }

// schemaDDL creates the shared schema-version table.
func (d *dialect) schemaDDL() string {
	switch d {
	case mysqlDialect:
		return "CREATE TABLE IF NOT EXISTS " + SchemaTable + " (table_name VARCHAR(64) NOT NULL PRIMARY KEY, version INT NOT NULL, applied_ms BIGINT NOT NULL) ENGINE=InnoDB"
	default:
		return "CREATE TABLE IF NOT EXISTS " + SchemaTable + " (table_name TEXT NOT NULL PRIMARY KEY, version INTEGER NOT NULL, applied_ms BIGINT NOT NULL)"
	}
}

// migrate brings the table up to the newest migration this build knows. It
// holds a lock that every other process migrating the same table waits for
// (an advisory lock on PostgreSQL, GET_LOCK on MySQL, the write lock of a
// BEGIN IMMEDIATE transaction on SQLite), then reads the table's version
// and applies only the missing steps, so running it again, or from many
// processes at once, changes nothing once the first has finished. A schema
// newer than this build is left alone: migrations only add.
func migrate(ctx context.Context, db *sql.DB, d *dialect, name string) error {
	steps, err := d.migrations(name)
	if err != nil {
		return fmt.Errorf("reading the embedded migrations: %w", err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	lockKey := "tokencache_migrate:" + name
	release, err := d.lockMigrations(ctx, conn, lockKey)
	if err != nil {
		return err
	}
	defer release()

	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if err := d.lockTx(ctx, tx, lockKey); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, d.schemaDDL()); err != nil {
		return fmt.Errorf("creating %s: %w", SchemaTable, err)
	}
	current := 0
	err = tx.QueryRowContext(ctx, d.rebind("SELECT version FROM "+SchemaTable+" WHERE table_name = ?"), name).Scan(&current)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("reading the schema version: %w", err)
	}
	recorded := err == nil
	applied := current
	for _, m := range steps {
		if m.version <= current {
			continue
		}
		for _, stmt := range m.statements {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
		}
		applied = m.version
	}
	if applied == current {
		return tx.Commit()
	}
	now := time.Now().UnixMilli()
	if !recorded {
		_, err = tx.ExecContext(ctx, d.rebind("INSERT INTO "+SchemaTable+" (table_name, version, applied_ms) VALUES (?, ?, ?)"), name, applied, now)
	} else {
		_, err = tx.ExecContext(ctx, d.rebind("UPDATE "+SchemaTable+" SET version = ?, applied_ms = ? WHERE table_name = ?"), applied, now, name)
	}
	if err != nil {
		return fmt.Errorf("recording schema version %d: %w", applied, err)
	}
	return tx.Commit()
}
