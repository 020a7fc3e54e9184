package admin

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/internal/view"
)

// ShowOptions are the settings of show.
type ShowOptions struct {
	F    *cli.Factory
	Sel  Selector
	JSON bool
}

// NewCmdShow returns the show command; runF replaces RunShow in tests.
func NewCmdShow(f *cli.Factory, runF func(context.Context, *ShowOptions) error) *cobra.Command {
	o := &ShowOptions{F: f}
	cmd := &cobra.Command{
		Use:   "show (ID | --user NAME --client ID)",
		Short: "Show one token, secrets redacted",
		Long: `Show every field of one token: the one with this ID, or the one of this user
and client (the application's lookup by user). A secret that is set is shown
as "[redacted]", one that is not as empty. No such token exits 3.`,
		Example: `  tokencache show 3f9c…
  tokencache show --user alice@example.com --client 1000.ABC --json`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Sel.parse(cmd, args); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return RunShow(cmd.Context(), o)
		},
	}
	f.Settings.AddStoreFlags(cmd)
	o.Sel.addFlags(cmd)
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the token as JSON, secrets redacted, expiry null when it never expires")
	return cmd
}

// RunShow shows the token.
func RunShow(ctx context.Context, o *ShowOptions) error {
	return o.F.WithStore(ctx, func(c *cli.Conn) error {
		t, err := o.Sel.find(ctx, c.Store)
		if err != nil {
			return err
		}
		v := view.Of(t)
		if o.JSON {
			return view.WriteJSON(o.F.IO.Out, v)
		}
		// Empty stays empty here, as in --json; Cell's "-" is for the
		// columns of list.
		value := func(s string) string {
			if s == "" {
				return ""
			}
			return view.Cell(s)
		}
		tw := tabwriter.NewWriter(o.F.IO.Out, 0, 8, 2, ' ', 0)
		for _, f := range [...][2]string{
			{"id", v.ID},
			{"user_name", value(v.UserName)},
			{"client_id", value(v.ClientID)},
			{"client_secret", v.ClientSecret},
			{"refresh_token", v.RefreshToken},
			{"access_token", v.AccessToken},
			{"grant_token", v.GrantToken},
			{"expiry", view.Expiry(t.Expiry, o.F.Now())},
			{"redirect_url", value(v.RedirectURL)},
			{"api_domain", value(v.APIDomain)},
			{"version", strconv.FormatInt(v.Version, 10)},
		} {
			fmt.Fprintf(tw, "%s:\t%s\n", f[0], f[1])
		}
		return tw.Flush()
	})
}
