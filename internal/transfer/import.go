package transfer

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache/internal/cli"
)

// ImportOptions are the settings of import.
type ImportOptions struct {
	F *cli.Factory

	File     string // "" or "-": stdin
	Format   string
	From     string
	Table    string
	Workers  int
	Progress string
	DryRun   bool
}

// NewCmdImport returns the import command; runF replaces RunImport in tests.
func NewCmdImport(f *cli.Factory, runF func(context.Context, *ImportOptions) error) *cobra.Command {
	o := &ImportOptions{F: f}
	cmd := &cobra.Command{
		Use:   "import [FILE|-]",
		Short: "Save tokens from an export, a Zoho SDK token file or a Zoho SDK token table",
		Long: `Read tokens and save each into the namespace (and the durable record, with
--durable).

Formats (--format):
  jsonl     JSON lines, one tokencache.Token per line, from FILE or stdin ("-"
            or no argument): what "tokencache export --include-secrets" writes.
            Each line must be one JSON object with only the fields of a token.
  zoho-csv  the Zoho SDK FileStore CSV, from FILE or stdin.
  zoho-db   the Zoho SDK DBStore table, from the database --from names (DSN as
            for --durable), table --table.

Every record is checked first: it must hold an access, refresh or grant token,
keep every field within 64 KiB, have a well-formed id if it has one, and not be
an access token that has already expired without a refresh token. A bad record
is reported on stderr as "line N: reason" (never with the values, which may be
secrets) and skipped; the others are imported all the same.

A token with an id is saved under that id: the token with that id is replaced,
or created (Zoho IDs "1", "2", … are kept). A token without one is matched like
any save (user name and client id, then grant, refresh or access token) and
updated or created with a new id. An import always overwrites: versions are
ignored.

--dry-run writes nothing: it prints on stdout, for each record that would
change something, whether it would create a token or update one and which
fields would change (never their values).

Exit status: 0 when every record was imported; 1 when some were bad (the good
ones are imported); 2 for a usage error; 4 when Redis or the record failed
(the import stops there and says how far it got).

Progress goes to stderr: on a terminal a live line every half second,
otherwise a line every 10000 tokens (--progress chooses).`,
		Example: `  tokencache export --include-secrets -o backup.jsonl && tokencache import backup.jsonl
  tokencache import --format zoho-csv --dry-run sdk_tokens.txt
  tokencache import --format zoho-db --from mysql://root@127.0.0.1:3306/zoho --table oauthtoken`,
		Args: cli.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.File = args[0]
			}
			if err := o.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return RunImport(cmd.Context(), o)
		},
	}
	f.Settings.AddStoreFlags(cmd)
	fl := cmd.Flags()
	fl.StringVar(&o.Format, "format", "jsonl", "input format: jsonl, zoho-csv or zoho-db")
	fl.StringVar(&o.From, "from", "", "zoho-db: the database holding the Zoho SDK's token table (postgres://…, mysql://…, sqlite:PATH)")
	fl.StringVar(&o.Table, "table", "oauthtoken", "zoho-db: the table")
	fl.IntVar(&o.Workers, "workers", 8, "how many tokens to save at once")
	fl.StringVar(&o.Progress, "progress", ProgressAuto, "progress on stderr: auto, live, lines or off")
	fl.BoolVar(&o.DryRun, "dry-run", false, "write nothing; print what each record would change")
	return cmd
}

func (o *ImportOptions) validate() error {
	format, ok := Formats[o.Format]
	switch {
	case !ok || format.Read == nil:
		return cli.UsageErrorf("--format %q: want one of %s", o.Format, formatNames(false))
	case o.Workers < 1 || o.Workers > 256:
		return cli.UsageErrorf("--workers must be between 1 and 256")
	case format.File && o.From != "":
		return cli.UsageErrorf("--from is for --format zoho-db; %s reads FILE or stdin", o.Format)
	case !format.File && o.From == "":
		return cli.UsageErrorf("--format %s needs --from DSN", o.Format)
	case !format.File && o.File != "":
		return cli.UsageErrorf("--format %s reads --from, not a file", o.Format)
	}
	switch o.Progress {
	case ProgressAuto, ProgressLive, ProgressLines, ProgressOff:
	default:
		return cli.UsageErrorf("--progress must be auto, live, lines or off")
	}
	return nil
}

// RunImport imports.
func RunImport(ctx context.Context, o *ImportOptions) error {
	ios := o.F.IO
	format := Formats[o.Format]
	in := Input{From: o.From, Table: o.Table}
	var name string
	size := int64(-1)
	var read atomic.Int64
	if format.File {
		r, sz, n, err := o.openFile()
		if err != nil {
			return err
		}
		defer r.Close()
		in.Reader, size, name = &countingReader{r: r, n: &read}, sz, n
		if name == "stdin" && ios.IsStdinTTY() {
			fmt.Fprintln(ios.ErrOut, "reading tokens from the terminal; end with Ctrl-D")
		}
	} else {
		name = "table " + o.Table
	}
	return o.F.WithStore(ctx, func(c *cli.Conn) error {
		progress := o.Progress
		if progress == ProgressAuto {
			progress = ProgressLines
			if ios.IsStderrTTY() {
				progress = ProgressLive
			}
		}
		imp := &importer{
			store:     c.Store,
			namespace: c.Store.Namespace(),
			workers:   o.Workers,
			progress:  progress,
			dryRun:    o.DryRun,
			out:       ios.Out,
			errOut:    ios.ErrOut,
			size:      size,
			read:      &read,
			every:     progressEvery,
			tick:      progressTick,
			now:       o.F.Now,
		}
		return imp.run(ctx, func(ctx context.Context, fn func(Record) error) error { return format.Read(ctx, in, fn) }, name)
	})
}

// openFile opens the input and tells its size when it is a regular file
// (for a percentage), else -1.
func (o *ImportOptions) openFile() (io.ReadCloser, int64, string, error) {
	if o.File == "" || o.File == "-" {
		return io.NopCloser(o.F.IO.In), -1, "stdin", nil
	}
	f, err := os.Open(o.File)
	if err != nil {
		return nil, 0, "", err
	}
	size := int64(-1)
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	return f, size, o.File, nil
}
