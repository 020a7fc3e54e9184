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
	// Read calls fn with each record of in, in order, until the input ends
	// (nil) or fn or the input fails (that error).
	Read func(ctx context.Context, in Input, fn func(Record) error) error
	// Write writes tokens, secrets emptied unless withSecrets; nil when the
	// format cannot be exported to.
	Write func(w io.Writer, tokens []tokencache.Token, withSecrets bool) error
}

// Formats are the known formats by name.
var Formats = map[string]*Format{
	"jsonl": {
		Name:  "jsonl",
		File:  true,
		Read:  readJSONLines,
		Write: writeJSONLines,
	},
	"zoho-csv": {
		Name:  "zoho-csv",
		File:  true,
		Read:  readZohoCSV,
		Write: writeZohoCSV,
	},
	"zoho-db": {
		Name: "zoho-db",
		Read: readZohoDB,
	},
}

// formatNames lists the names for messages.
func formatNames(export bool) string {
	var names []string
	for name, f := range Formats {
		if export && f.Write == nil || !export && f.Read == nil {
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
