package admin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/cli"
)

// PurgeOptions are the settings of purge.
type PurgeOptions struct {
	F   *cli.Factory
	Yes bool
}

// ErrPurgeDeclined is returned when the operator does not confirm a purge:
// a failure (exit 1), since what was asked for did not happen.
var ErrPurgeDeclined = errors.New("purge cancelled: nothing was deleted")

// NewCmdPurge returns the purge command; runF replaces RunPurge in tests.
func NewCmdPurge(f *cli.Factory, runF func(context.Context, *PurgeOptions) error) *cobra.Command {
	o := &PurgeOptions{F: f}
	cmd := &cobra.Command{
		Use:   "purge",
		Short: "Delete every token of the namespace",
		Long: `Delete every token of the namespace with its index entries, and nothing
else: other namespaces in the same Redis keep theirs. It asks for
confirmation on stderr and reads the answer from stdin; only "y" or "yes"
goes ahead. Any other answer, or none, deletes nothing and exits 1 (a
failure: the purge did not happen). --yes skips the question.`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return RunPurge(cmd.Context(), o)
		},
	}
	f.Settings.AddStoreFlags(cmd)
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// RunPurge deletes the namespace's tokens.
func RunPurge(ctx context.Context, o *PurgeOptions) error {
	return o.F.WithStore(ctx, func(c *cli.Conn) error {
		// Count by walking (no token is kept); DeleteTokens then deletes a
		// page at a time (redisstore: batches of the set of IDs).
		n := 0
		if err := tokencache.WalkStore(ctx, c.Store, func(tokencache.Token) error { n++; return nil }); err != nil {
			return err
		}
		ns := c.Store.Namespace()
		io := o.F.IO
		if n == 0 {
			// Index entries can outlive their tokens (a crash between two
			// writes): DeleteTokens removes those too.
			if err := c.Store.DeleteTokens(ctx); err != nil {
				return err
			}
			fmt.Fprintf(io.Out, "namespace %s has no tokens: nothing to delete\n", ns)
			return nil
		}
		if !o.Yes {
			fmt.Fprintf(io.ErrOut, "Delete all %d tokens in namespace %s? [y/N] ", n, ns)
			ok, ended := answeredYes(io.In)
			if !ended {
				fmt.Fprintln(io.ErrOut) // no Enter was typed: end the question's line
			}
			if !ok {
				return ErrPurgeDeclined
			}
		}
		if err := c.Store.DeleteTokens(ctx); err != nil {
			return err
		}
		fmt.Fprintf(io.Out, "deleted %d tokens from namespace %s\n", n, ns)
		return nil
	})
}

// answeredYes reads one line from r and reports whether it says yes, and
// whether the line ended with a newline (else the input ended first).
func answeredYes(r io.Reader) (yes, ended bool) {
	if r == nil {
		return false, false
	}
	line, _ := bufio.NewReader(r).ReadString('\n')
	ended = strings.HasSuffix(line, "\n")
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, ended
	}
	return false, ended
}
