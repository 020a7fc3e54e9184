package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/internal/view"
)

// RevokeOptions are the settings of revoke.
type RevokeOptions struct {
	F             *cli.Factory
	Sel           Selector
	IgnoreMissing bool
}

// NewCmdRevoke returns the revoke command; runF replaces RunRevoke in tests.
func NewCmdRevoke(f *cli.Factory, runF func(context.Context, *RevokeOptions) error) *cobra.Command {
	o := &RevokeOptions{F: f}
	cmd := &cobra.Command{
		Use:   "revoke (ID | --user NAME --client ID)",
		Short: "Delete one token; workers then find it gone",
		Long: `Delete one token (by ID, or by user and client) and its index entries.
Workers that look it up afterwards, by ID, user or token value, find nothing
and start a new login.

A token that is not there exits 3, so that a mistyped ID does not pass for a
revocation; --ignore-missing makes that exit 0 (for scripts that revoke
idempotently).`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Sel.parse(cmd, args); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return RunRevoke(cmd.Context(), o)
		},
	}
	f.Settings.AddStoreFlags(cmd)
	o.Sel.addFlags(cmd)
	cmd.Flags().BoolVar(&o.IgnoreMissing, "ignore-missing", false, "exit 0 when there is no such token")
	return cmd
}

// RunRevoke deletes the token.
func RunRevoke(ctx context.Context, o *RevokeOptions) error {
	return o.F.WithStore(ctx, func(c *cli.Conn) error {
		t, err := o.Sel.find(ctx, c.Store)
		var nf *cli.NotFoundError
		if errors.As(err, &nf) && o.IgnoreMissing {
			fmt.Fprintf(o.F.IO.Out, "%v: nothing to revoke\n", err)
			return nil
		}
		if err != nil {
			return err
		}
		if err := c.Store.DeleteToken(ctx, t.ID); err != nil {
			return err
		}
		fmt.Fprintf(o.F.IO.Out, "revoked token %s (user %s, client %s) in namespace %s\n",
			t.ID, view.Cell(t.UserName), view.Cell(t.ClientID), c.Store.Namespace())
		return nil
	})
}
