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
	// Write returns a writer of tokens to w, one at a time, secrets emptied
	// unless withSecrets; nil when the format cannot be exported to. It
	// holds no token after writing it, so an export of any size needs the
	// memory of one token and a buffer.
	Write func(w io.Writer, withSecrets bool) (TokenWriter, error)
}

// TokenWriter writes tokens in a format.
type TokenWriter interface {
	// Write writes one token.
	Write(t tokencache.Token) error
	// Flush writes what is buffered; call it once after the last token.
	Flush() error
}

// withoutSecrets empties t's secrets unless keep.
func withoutSecrets(t tokencache.Token, keep bool) tokencache.Token {
	if !keep {
		t.ClientSecret, t.RefreshToken, t.AccessToken, t.GrantToken = "", "", "", ""
	}
	return t
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
