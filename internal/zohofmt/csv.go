package zohofmt

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tokencache/tokencache"
)

// ErrBadFile is returned by ReadCSV when the file as a whole cannot be read:
// it is empty or its header names no known column.
var ErrBadFile = errors.New("zohofmt: not a Zoho token file")

// ReadCSV reads a Zoho SDK FileStore CSV from r and calls fn with each
// record after the header, in order. The header names the columns
// (id,user_name,client_id,client_secret,refresh_token,access_token,
// grant_token,expiry_time,redirect_url,api_domain; older files lack
// api_domain, or id, or say user_mail); a file whose first line is not a
// header is read in that 10-column order (9 without api_domain). Empty
// cells are empty fields. Blank lines are skipped.
//
// A record that cannot be imported (malformed CSV, the wrong number of
// cells, a bad id or expiry_time, no secret) is passed to fn with Row.Err
// set, and reading goes on. An error fn returns stops the read and is
// returned; so is a failure to read r, or ErrBadFile.
func ReadCSV(r io.Reader, fn func(Row) error) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // checked per record, so that one bad row does not end the file
	cr.ReuseRecord = true

	first, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: the file is empty", ErrBadFile)
	}
	if err != nil {
		return fmt.Errorf("%w: reading the first line: %v", ErrBadFile, err)
	}
	if len(first) > 0 {
		first[0] = strings.TrimPrefix(first[0], "\ufeff") // a byte order mark from a spreadsheet
	}
	names, isHeader := headerColumns(first)
	if !isHeader {
		switch len(first) {
		case len(Columns):
			names = Columns
		case len(Columns) - 1:
			names = Columns[:len(Columns)-1]
		default:
			return fmt.Errorf("%w: the first line is not a header and has %d cells, want %d or %d",
				ErrBadFile, len(first), len(Columns), len(Columns)-1)
		}
		if err := emit(fn, 1, names, first); err != nil {
			return err
		}
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		line, _ := cr.FieldPos(0)
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			// Malformed CSV on this record: name it and read on.
			if err := fn(Row{Line: pe.StartLine, Err: fmt.Errorf("%w: malformed CSV: %v", ErrBadRow, pe.Err)}); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("zohofmt: reading line %d: %w", line, err)
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if err := emit(fn, line, names, rec); err != nil {
			return err
		}
	}
}

// headerColumns reports whether rec is a header, and the canonical column
// of each of its cells ("" for a column this package ignores).
func headerColumns(rec []string) ([]string, bool) {
	names := make([]string, len(rec))
	known := 0
	for i, cell := range rec {
		names[i] = canonical(cell)
		if names[i] != "" {
			known++
		}
	}
	// A data row never has a cell that spells a column name in the id or
	// client_id place; requiring half of the cells to be names is plenty.
	return names, known > 0 && known*2 >= len(rec)
}

// emit turns one record into a Row and hands it to fn.
func emit(fn func(Row) error, line int, names, rec []string) error {
	row := Row{Line: line}
	if len(rec) != len(names) {
		row.Err = fmt.Errorf("%w: %d cells, the header has %d", ErrBadRow, len(rec), len(names))
		return fn(row)
	}
	c := make(cells, len(names))
	for i, name := range names {
		if name != "" {
			c[name] = rec[i]
		}
	}
	row.ID = strings.TrimSpace(c["id"])
	row.Token, row.Err = toToken(c)
	return fn(row)
}

// CSVWriter writes tokens as a Zoho SDK FileStore CSV with all ten columns,
// which every SDK that reads the 9-column format reads as well. It holds
// secrets in clear: the file must be protected like the store itself.
type CSVWriter struct {
	w *csv.Writer
}

// NewCSVWriter writes the header to w and returns a writer for the rows.
func NewCSVWriter(w io.Writer) (*CSVWriter, error) {
	cw := &CSVWriter{w: csv.NewWriter(w)}
	if err := cw.w.Write(Columns); err != nil {
		return nil, fmt.Errorf("zohofmt: writing the header: %w", err)
	}
	return cw, nil
}

// Write writes one token. Its ID, as tokencache assigned it or as it was
// imported, goes into the id column; expiry_time is epoch milliseconds,
// empty for a token that never expires.
func (cw *CSVWriter) Write(t tokencache.Token) error {
	rec := []string{
		t.ID, t.UserName, t.ClientID, t.ClientSecret, t.RefreshToken,
		t.AccessToken, t.GrantToken, formatExpiry(t.Expiry), t.RedirectURL, t.APIDomain,
	}
	if err := cw.w.Write(rec); err != nil {
		return fmt.Errorf("zohofmt: writing token %s: %w", t.ID, err)
	}
	return nil
}

// Flush writes any buffered rows to the underlying writer and reports a
// write error. Call it once the last token is written.
func (cw *CSVWriter) Flush() error {
	cw.w.Flush()
	if err := cw.w.Error(); err != nil {
		return fmt.Errorf("zohofmt: writing: %w", err)
	}
	return nil
}

// WriteCSV writes a whole CSV file of tokens: the header, one row per
// token, flushed.
func WriteCSV(w io.Writer, tokens []tokencache.Token) error {
	cw, err := NewCSVWriter(w)
	if err != nil {
		return err
	}
	for _, t := range tokens {
		if err := cw.Write(t); err != nil {
			return err
		}
	}
	return cw.Flush()
}
