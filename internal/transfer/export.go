package transfer

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/cli"
)

// ExportOptions are the settings of export.
type ExportOptions struct {
	F *cli.Factory

	Output         string
	Format         string
	IncludeSecrets bool
}

// NewCmdExport returns the export command; runF replaces RunExport in tests.
func NewCmdExport(f *cli.Factory, runF func(context.Context, *ExportOptions) error) *cobra.Command {
	o := &ExportOptions{F: f}
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the namespace's tokens as JSON lines or as a Zoho SDK token file",
		Long: `Write every live token of the namespace (of the record, with --durable)
to stdout or to --output: as JSON lines (one token per line, expiry left out
for a token that never expires), or with --format zoho-csv as the Zoho SDK
FileStore CSV, so that a team can go back to the SDK (each row's id is the
token's ID: imported Zoho IDs 1, 2, ... are kept).

Tokens are written in the store's order, as the store is walked a page at a
time, so that an export of millions of tokens needs a few MiB of memory:
Redis's order (unsorted), or ID order with --durable on an SQL record. Each
token is written once; a token saved or deleted while the export runs may or
may not be in it. Sort the output if you need an order, e.g.
jq -s 'sort_by(.user_name, .id)[]'.

Without --include-secrets the access, refresh and grant tokens and the client
secret are empty: such an export shows what is stored but cannot be imported
back (import refuses tokens without a secret). With it the export is complete,
and a file written by --output is created with mode 0600. The file is written
to a temporary name first and renamed when complete, so a failed export never
leaves a truncated file behind; on stdout, an export that fails half way has
written the tokens walked so far, and exits non-zero.`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f, ok := Formats[o.Format]; !ok || f.Write == nil {
				return cli.UsageErrorf("--format %q: want one of %s", o.Format, formatNames(true))
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return RunExport(cmd.Context(), o)
		},
	}
	f.Settings.AddStoreFlags(cmd)
	fl := cmd.Flags()
	fl.StringVarP(&o.Output, "output", "o", "", "write to this file instead of stdout")
	fl.StringVar(&o.Format, "format", "jsonl", "output format: jsonl or zoho-csv")
	fl.BoolVar(&o.IncludeSecrets, "include-secrets", false, "include access, refresh and grant tokens and client secrets")
	return cmd
}

// RunExport exports.
func RunExport(ctx context.Context, o *ExportOptions) error {
	return o.F.WithStore(ctx, func(c *cli.Conn) error {
		format := Formats[o.Format]
		n := 0
		write := func(w io.Writer) error {
			tw, err := format.Write(w, o.IncludeSecrets)
			if err != nil {
				return err
			}
			err = tokencache.WalkStore(ctx, c.Store, func(t tokencache.Token) error {
				n++
				return tw.Write(t)
			})
			if err != nil {
				return err
			}
			return tw.Flush()
		}
		var err error
		where := "stdout"
		if o.Output == "" || o.Output == "-" {
			err = write(o.F.IO.Out)
		} else {
			where = o.Output
			err = writeFileAtomically(o.Output, o.IncludeSecrets, write)
		}
		if err != nil {
			return err
		}
		note := "without secrets: not importable; add --include-secrets for a backup"
		if o.IncludeSecrets {
			note = "with secrets: keep it safe"
		}
		as := ""
		if o.Format != "jsonl" {
			as = " as " + o.Format
		}
		fmt.Fprintf(o.F.IO.ErrOut, "exported %d tokens from namespace %s to %s%s (%s)\n",
			n, c.Store.Namespace(), where, as, note)
		return nil
	})
}
