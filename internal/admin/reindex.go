package admin

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache/internal/cli"
)

// ReindexOptions are the settings of reindex.
type ReindexOptions struct {
	F *cli.Factory
}

// NewCmdReindex returns the reindex command; runF replaces RunReindex in tests.
func NewCmdReindex(f *cli.Factory, runF func(context.Context, *ReindexOptions) error) *cobra.Command {
	o := &ReindexOptions{F: f}
	cmd := &cobra.Command{
		Use:   "reindex",
		Short: "Move every token's index entries to the current index key and layout (key rotation, upgrade)",
		Long: `Rewrite the index entries of every token of the namespace under the current
index key (--index-key-file or TOKENCACHE_INDEX_KEY) and remove those under the
previous keys (--previous-index-key-file or TOKENCACHE_PREVIOUS_INDEX_KEY; or
--previous-plain-index when the store had no index key). It is safe while the
fleet runs, and can simply be run again after a failure.

After an upgrade from the sorted-set index of earlier versions it also moves
every token's entries into the bucket hashes and then marks the namespace, so
that lookups stop reading the old keys. Run it once every process is upgraded.

Rotation, with no downtime:
  1. Deploy the fleet with the new key as its index key and the old one as a
     previous key (redisstore.WithIndexKey(new),
     redisstore.WithPreviousIndexKeys(old)): lookups find tokens under either
     key, and every save writes under the new one.
  2. Run "tokencache reindex" with the same settings.
  3. Drop the previous key from the fleet's settings.`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return RunReindex(cmd.Context(), o)
		},
	}
	f.Settings.AddStoreFlags(cmd)
	return cmd
}

// RunReindex moves the index entries.
func RunReindex(ctx context.Context, o *ReindexOptions) error {
	return o.F.WithStore(ctx, func(c *cli.Conn) error {
		moved, err := c.Store.Reindex(ctx)
		if err != nil {
			return fmt.Errorf("reindex stopped after %d tokens (run it again to finish): %w", moved, err)
		}
		fmt.Fprintf(o.F.IO.Out, "reindexed %d tokens of namespace %s under the current index key\n", moved, c.Store.Namespace())
		return nil
	})
}
