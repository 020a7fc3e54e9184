package zohofmt

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/tokencache/tokencache/sqlstore"
)

// DefaultTable is the DBStore's table name in every Zoho SDK.
const DefaultTable = "oauthtoken"

// ErrBadTable is returned by ReadDB when the table cannot be a DBStore
// table: it lacks the id column or every token column.
var ErrBadTable = errors.New("zohofmt: not a Zoho DBStore table")

// ReadDB reads the Zoho SDK DBStore table named table (DefaultTable when
// empty) in the database dsn names, in sqlstore.Open's form (mysql://… for
// the SDK's MySQL table, sqlite:PATH for a Kaizen-style SQLite one,
// postgres://… too), and calls fn with each row in the table's order. Columns are
// found by name (id, user_name or user_mail, client_id, client_secret,
// refresh_token, access_token, grant_token, expiry_time, redirect_url and,
// in newer SDKs, api_domain), whatever their SQL types; NULL is an empty
// field. table must be an identifier; it is quoted, and nothing else enters
// the SQL text.
//
// A row that cannot be imported is passed to fn with Row.Err set, and
// reading goes on. An error fn returns stops the read and is returned; so
// is a database failure or ErrBadTable.
func ReadDB(ctx context.Context, dsn, table string, fn func(Row) error) error {
	if table == "" {
		table = DefaultTable
	}
	db, dialect, err := sqlstore.OpenDB(ctx, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	quoted, err := sqlstore.QuoteIdentifier(dialect, table)
	if err != nil {
		return err
	}
	rows, err := db.QueryContext(ctx, "SELECT * FROM "+quoted)
	if err != nil {
		return fmt.Errorf("zohofmt: reading table %s: %w", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return fmt.Errorf("zohofmt: reading table %s: %w", table, err)
	}
	names := make([]string, len(cols))
	hasID, hasSecret := false, false
	for i, c := range cols {
		names[i] = canonical(c)
		switch names[i] {
		case "id":
			hasID = true
		case "access_token", "refresh_token", "grant_token":
			hasSecret = true
		}
	}
	if !hasID || !hasSecret {
		return fmt.Errorf("%w: table %s has no id column or no token column", ErrBadTable, table)
	}

	// Rows stream in the table's order: an ORDER BY on a varchar id would
	// sort "10" before "2" anyway, and an import is keyed by id.
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for rows.Next() {
		n++
		row := Row{Line: n}
		if err := rows.Scan(ptrs...); err != nil {
			row.Err = fmt.Errorf("%w: a cell cannot be read as text", ErrBadRow) // the driver's message may quote it
		} else {
			c := make(cells, len(cols))
			for i, name := range names {
				if name != "" {
					c[name] = vals[i].String
				}
			}
			row.ID = strings.TrimSpace(c["id"])
			row.Token, row.Err = toToken(c)
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("zohofmt: reading table %s: %w", table, err)
	}
	return nil
}
