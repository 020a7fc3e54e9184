package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/internal/view"
	"github.com/tokencache/tokencache/redisstore"
)

// Selector names one token: by ID, or by user name and client ID, as the
// application finds it (matching rule 2).
type Selector struct {
	ID     string
	User   string
	Client string

	userSet, clientSet bool
}

// addFlags adds --user and --client to cmd.
func (s *Selector) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.User, "user", "", "the token's user name, with --client (instead of ID)")
	cmd.Flags().StringVar(&s.Client, "client", "", "the token's client ID, with --user")
}

// parse reads the ID argument or the flags; exactly one way must be used.
func (s *Selector) parse(cmd *cobra.Command, args []string) error {
	s.userSet, s.clientSet = cmd.Flags().Changed("user"), cmd.Flags().Changed("client")
	switch {
	case len(args) > 1:
		return cli.UsageErrorf("one token ID at most, got %d arguments", len(args))
	case len(args) == 1 && (s.userSet || s.clientSet):
		return cli.UsageErrorf("give an ID or --user and --client, not both")
	case len(args) == 1:
		s.ID = args[0]
		if err := tokencache.ValidateID(s.ID); err != nil {
			// Not echoed: it may be a pasted secret.
			return cli.UsageErrorf("invalid token ID: %s (to find a token by user, use --user NAME --client ID)", view.InvalidReason(err))
		}
		return nil
	case s.userSet && s.clientSet:
		if s.User == "" {
			return cli.UsageErrorf("--user is empty")
		}
		return nil
	case s.userSet:
		return cli.UsageErrorf("--user needs --client: a user has one token per client")
	case s.clientSet:
		return cli.UsageErrorf("--client needs --user")
	}
	return cli.UsageErrorf("name the token: an ID, or --user NAME --client ID")
}

// String describes the selection for messages.
func (s *Selector) String() string {
	if s.ID != "" {
		return "ID " + s.ID
	}
	return fmt.Sprintf("user %s and client %s", view.Cell(s.User), view.Cell(s.Client))
}

// find reads the selected token; none is a cli.NotFoundError.
func (s *Selector) find(ctx context.Context, store *redisstore.Store) (tokencache.Token, error) {
	var (
		t   tokencache.Token
		err error
	)
	if s.ID != "" {
		t, err = store.FindTokenByID(ctx, s.ID)
	} else {
		t, err = store.FindToken(ctx, tokencache.Token{UserName: s.User, ClientID: s.Client})
	}
	if errors.Is(err, tokencache.ErrNotFound) {
		return t, &cli.NotFoundError{Msg: fmt.Sprintf("no token with %s in namespace %s", s, store.Namespace())}
	}
	if errors.Is(err, tokencache.ErrInvalidToken) {
		return t, cli.UsageErrorf("%s", view.InvalidReason(err))
	}
	return t, err
}
