package admin

import (
	"context"
	"fmt"
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
revision. Secrets are never printed; --json prints every field, with each
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

// RunList lists the tokens.
func RunList(ctx context.Context, o *ListOptions) error {
	return o.F.WithStore(ctx, func(c *cli.Conn) error {
		all, err := c.Store.GetTokens(ctx)
		if err != nil {
			return err
		}
		now := o.F.Now()
		tokens := all[:0]
		for _, t := range all {
			if o.keep(t, now) {
				tokens = append(tokens, t)
			}
		}
		view.SortByUserAndID(tokens)
		out := o.F.IO.Out
		if o.JSON {
			views := make([]view.Token, len(tokens))
			for i, t := range tokens {
				views[i] = view.Of(t)
			}
			return view.WriteJSON(out, views)
		}
		if len(tokens) == 0 {
			what := "no tokens"
			if len(all) > 0 {
				what = fmt.Sprintf("no tokens match (of %d)", len(all))
			}
			fmt.Fprintf(o.F.IO.ErrOut, "%s in namespace %s\n", what, c.Store.Namespace())
			return nil
		}
		tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
		if !o.NoHeaders {
			fmt.Fprintln(tw, "ID\tUSER\tCLIENT\tACCESS TOKEN EXPIRY\tREFRESH\tAPI DOMAIN\tVERSION")
		}
		for _, t := range tokens {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", t.ID, view.Cell(t.UserName), view.Cell(t.ClientID),
				view.Expiry(t.Expiry, now), view.YesNo(t.RefreshToken != ""), view.Cell(t.APIDomain), t.Version)
		}
		return tw.Flush()
	})
}
