package transfer

import (
	"context"
	"errors"
	"io"
	"strings"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/internal/zohofmt"
	"github.com/tokencache/tokencache/sqlstore"
)

// zohoRecord turns a row of a Zoho store into a record named by its line
// (CSV) or row (table) and its Zoho ID.
func zohoRecord(row zohofmt.Row, unit string) Record {
	rec := Record{Where: row.Name(unit), Token: row.Token}
	if row.Err != nil {
		rec.Bad = strings.TrimPrefix(strings.TrimPrefix(row.Err.Error(), zohofmt.ErrBadRow.Error()), ": ")
	}
	return rec
}

// readZohoCSV reads the Zoho SDK FileStore CSV.
func readZohoCSV(_ context.Context, in Input, fn func(Record) error) error {
	return zohofmt.ReadCSV(in.Reader, func(row zohofmt.Row) error { return fn(zohoRecord(row, "line")) })
}

// readZohoDB reads the Zoho SDK DBStore table. A DSN it cannot use is a
// usage error; a database it cannot reach is unreachable (exit 4).
func readZohoDB(ctx context.Context, in Input, fn func(Record) error) error {
	var fnErr error
	err := zohofmt.ReadDB(ctx, in.From, in.Table, func(row zohofmt.Row) error {
		fnErr = fn(zohoRecord(row, "row"))
		return fnErr
	})
	switch {
	case err == nil, fnErr != nil && errors.Is(err, fnErr):
		return err
	case errors.Is(err, sqlstore.ErrBadDSN), errors.Is(err, sqlstore.ErrBadOption):
		return &cli.UsageError{Err: errors.New("--from: " + strings.TrimPrefix(err.Error(), "sqlstore: "))}
	case errors.Is(err, zohofmt.ErrBadTable):
		return err
	case cli.IsBackendFailure(err) || strings.HasPrefix(err.Error(), "sqlstore: connecting to"):
		return &cli.UnreachableError{Err: err}
	}
	return err
}

// zohoCSVWriter writes the Zoho SDK FileStore CSV.
type zohoCSVWriter struct {
	cw          *zohofmt.CSVWriter
	withSecrets bool
}

// writeZohoCSV returns a writer of the Zoho SDK FileStore CSV (the header
// is written at once), secrets emptied unless withSecrets. Each row's id is
// the token's own ID: imported Zoho IDs (1, 2, ...) come back as they were.
func writeZohoCSV(w io.Writer, withSecrets bool) (TokenWriter, error) {
	cw, err := zohofmt.NewCSVWriter(w)
	if err != nil {
		return nil, err
	}
	return &zohoCSVWriter{cw: cw, withSecrets: withSecrets}, nil
}

func (zw *zohoCSVWriter) Write(t tokencache.Token) error {
	return zw.cw.Write(withoutSecrets(t, zw.withSecrets))
}

func (zw *zohoCSVWriter) Flush() error { return zw.cw.Flush() }
