package transfer

import (
	"context"
	"io"
	"sort"
	"strings"

	"github.com/tokencache/tokencache"
)

// Record is one token read from an input, or why a line or row could not
// be one.
type Record struct {
	Where string           // "line 3", "row id 7": how messages name the record
	Token tokencache.Token // valid when Bad is ""
	Bad   string           // why the record is skipped; never quotes a value
}

// Source yields the records of one input.
type Source interface {
	// Next returns the next record, or io.EOF after the last one. Any other
	// error stops the import.
	Next(ctx context.Context) (Record, error)
	Close() error
}

// Input is what an import reads: the FILE argument (or stdin) for a file
// format, the --from DSN and --table for a database one.
type Input struct {
	Reader io.Reader
	From   string
	Table  string
}

// Format is one way tokens are written down.
type Format struct {
	Name string
	// File is true when the format reads a file (FILE or stdin), false
	// when it reads a database (--from).
	File bool
	// Open returns the records of in.
	Open func(ctx context.Context, in Input) (Source, error)
	// Write writes tokens, secrets emptied unless withSecrets; nil when the
	// format cannot be exported to.
	Write func(w io.Writer, tokens []tokencache.Token, withSecrets bool) error
}

// Formats are the known formats by name. The Zoho ones are registered by
// zoho.go.
var Formats = map[string]*Format{
	"jsonl": {
		Name:  "jsonl",
		File:  true,
		Open:  func(_ context.Context, in Input) (Source, error) { return newJSONLinesSource(in.Reader), nil },
		Write: writeJSONLines,
	},
}

// formatNames lists the names for messages.
func formatNames(export bool) string {
	var names []string
	for name, f := range Formats {
		if export && f.Write == nil || !export && f.Open == nil {
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
