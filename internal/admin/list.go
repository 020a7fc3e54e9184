package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/internal/view"
)

// ListOptions are the settings of list.
type ListOptions struct {
	F *cli.Factory

	JSON           bool
	NoHeaders      bool
	User           string
	Client         string
	ExpiringWithin time.Duration

	userSet, clientSet, expiringSet bool
}

// NewCmdList returns the list command; runF replaces RunList in tests.
func NewCmdList(f *cli.Factory, runF func(context.Context, *ListOptions) error) *cobra.Command {
	o := &ListOptions{F: f}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the tokens of the namespace, secrets redacted",
		Long: `List the live tokens of the namespace, sorted by user name and ID: ID, user,
client, access-token expiry, whether it has a refresh token, API domain and
revision. When more than 5000 tokens match, they are printed as the store is
walked, in the store's order and unsorted (a note on stderr says so), so that
the memory stays small whatever the namespace's size; the table's columns
are then aligned per block of 1000 rows. Secrets are never printed; --json prints every field, with each
secret that is set shown as "[redacted]" and a null expiry for a token that
never expires.

--user and --client keep the tokens with exactly that user name or client ID;
--expiring-within keeps those whose access token expires within the duration,
or has expired already (tokens that never expire are left out).

An empty list is no error (exit 0): "no tokens" goes to stderr.`,
		Example: `  tokencache list --user alice@example.com
  tokencache list --expiring-within 10m --no-headers | wc -l
  tokencache list --json | jq -r '.[] | select(.expiry == null) | .id'`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.userSet, o.clientSet = cmd.Flags().Changed("user"), cmd.Flags().Changed("client")
			o.expiringSet = cmd.Flags().Changed("expiring-within")
			if o.ExpiringWithin < 0 {
				return cli.UsageErrorf("--expiring-within %v: want zero or more", o.ExpiringWithin)
			}
			if o.JSON && o.NoHeaders {
				return cli.UsageErrorf("--no-headers is for the table; --json has no headers")
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return RunList(cmd.Context(), o)
		},
	}
	f.Settings.AddStoreFlags(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&o.JSON, "json", false, "print a JSON array, secrets redacted")
	fl.BoolVar(&o.NoHeaders, "no-headers", false, "print the table without its header line (for scripts)")
	fl.StringVar(&o.User, "user", "", "only tokens of this user name")
	fl.StringVar(&o.Client, "client", "", "only tokens of this client ID")
	fl.DurationVar(&o.ExpiringWithin, "expiring-within", 0, "only tokens whose access token expires within this duration (or has expired)")
	return cmd
}

// keep reports whether t passes the filters.
func (o *ListOptions) keep(t tokencache.Token, now time.Time) bool {
	switch {
	case o.userSet && t.UserName != o.User:
		return false
	case o.clientSet && t.ClientID != o.Client:
		return false
	case o.expiringSet && (t.Expiry.IsZero() || t.Expiry.After(now.Add(o.ExpiringWithin))):
		return false
	}
	return true
}

// listSortMax is how many matching tokens list holds in memory to sort
// them. When more match, it prints them as the store is walked, in the
// store's order, so that listing millions of tokens needs no more memory.
const listSortMax = 5000

// listBlock is how many table rows are aligned together when list prints
// as it walks (the table's columns are as wide as the block needs).
const listBlock = 1000

// RunList lists the tokens.
func RunList(ctx context.Context, o *ListOptions) error {
	return o.F.WithStore(ctx, func(c *cli.Conn) error {
		now := o.F.Now()
		p := newListPrinter(o, now)
		var (
			held      []tokencache.Token // the matching tokens, until there are too many to sort
			total     int
			streaming bool
		)
		err := tokencache.WalkStore(ctx, c.Store, func(t tokencache.Token) error {
			total++
			if !o.keep(t, now) {
				return nil
			}
			if streaming {
				return p.row(t)
			}
			held = append(held, t)
			if len(held) <= listSortMax {
				return nil
			}
			streaming, p.blocks = true, true
			fmt.Fprintf(o.F.IO.ErrOut, "more than %d tokens match: listed in the store's order, not sorted\n", listSortMax)
			for _, h := range held {
				if err := p.row(h); err != nil {
					return err
				}
			}
			held = nil
			return nil
		})
		if err != nil {
			return err
		}
		if !streaming {
			if len(held) == 0 && !o.JSON {
				what := "no tokens"
				if total > 0 {
					what = fmt.Sprintf("no tokens match (of %d)", total)
				}
				fmt.Fprintf(o.F.IO.ErrOut, "%s in namespace %s\n", what, c.Store.Namespace())
				return nil
			}
			view.SortByUserAndID(held)
			for _, h := range held {
				if err := p.row(h); err != nil {
					return err
				}
			}
		}
		return p.end()
	})
}

// listPrinter prints list's table or JSON array a row at a time.
type listPrinter struct {
	o      *ListOptions
	now    time.Time
	out    io.Writer
	tw     *tabwriter.Writer
	rows   int
	blocks bool // flush the table every listBlock rows
}

func newListPrinter(o *ListOptions, now time.Time) *listPrinter {
	return &listPrinter{o: o, now: now, out: o.F.IO.Out, tw: tabwriter.NewWriter(o.F.IO.Out, 0, 8, 2, ' ', 0)}
}

func (p *listPrinter) row(t tokencache.Token) error {
	p.rows++
	if p.o.JSON {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("  ", "  ")
		if err := enc.Encode(view.Of(t)); err != nil {
			return err
		}
		sep := ",\n  "
		if p.rows == 1 {
			sep = "[\n  "
		}
		_, err := io.WriteString(p.out, sep+strings.TrimSuffix(b.String(), "\n"))
		return err
	}
	if p.rows == 1 && !p.o.NoHeaders {
		fmt.Fprintln(p.tw, "ID\tUSER\tCLIENT\tACCESS TOKEN EXPIRY\tREFRESH\tAPI DOMAIN\tVERSION")
	}
	fmt.Fprintf(p.tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", t.ID, view.Cell(t.UserName), view.Cell(t.ClientID),
		view.Expiry(t.Expiry, p.now), view.YesNo(t.RefreshToken != ""), view.Cell(t.APIDomain), t.Version)
	if p.blocks && p.rows%listBlock == 0 {
		return p.tw.Flush()
	}
	return nil
}

// end finishes the table or the array ("[]" when it is empty).
func (p *listPrinter) end() error {
	if p.o.JSON {
		end := "\n]\n"
		if p.rows == 0 {
			end = "[]\n"
		}
		_, err := io.WriteString(p.out, end)
		return err
	}
	return p.tw.Flush()
}
