// Package tokencmd is the token command: a valid access token for one user
// and client, refreshed under the fleet's lock when due, for scripts and
// workers that are not written in Go.
package tokencmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/internal/view"
	"github.com/tokencache/tokencache/lock"
	"github.com/tokencache/tokencache/refresher"
)

// EnvTokenURL names the token endpoint when --token-url is not given.
const EnvTokenURL = "TOKENCACHE_TOKEN_URL"

// Options are the settings of token.
type Options struct {
	F *cli.Factory

	ID        string
	User      string
	Client    string
	TokenURL  string
	Window    time.Duration
	BasicAuth bool
	JSON      bool
}

// NewCmdToken returns the token command; runF replaces Run in tests.
func NewCmdToken(f *cli.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	o := &Options{F: f}
	cmd := &cobra.Command{
		Use:   "token (--user NAME --client ID | --id ID) --token-url URL",
		Short: "Print a valid access token, refreshed under the fleet's lock when due",
		Long: `Print the access token of one user and client (or of the token with --id) on
stdout, with nothing else, for scripts and for workers that are not written in
Go. When the token is due, it is refreshed through --token-url exactly as the
fleet's Go workers do: one refresh across every process, under the same lock,
and the new token is saved for all of them.

--json prints {"access_token", "token_type", "expiry", "api_domain"} instead;
expiry is null for a token that never expires.

Exit status: 0 with a token; 3 when the store has no such token (log the user
in); 1 when the authorization server refused the refresh token or the client
(the user must authorize again, or the client configuration is wrong) or could
not be reached; 4 when Redis or the record is unreachable.`,
		Example: `  curl -H "Authorization: Zoho-oauthtoken $(tokencache token --user alice@example.com --client 1000.ABC --token-url eu)" …
  tokencache token --user alice@example.com --client 1000.ABC --token-url https://accounts.example.com/token --json`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("token-url") {
				o.TokenURL = os.Getenv(EnvTokenURL)
			}
			userSet, clientSet := cmd.Flags().Changed("user"), cmd.Flags().Changed("client")
			switch {
			case o.ID != "" && (userSet || clientSet):
				return cli.UsageErrorf("give --id or --user and --client, not both")
			case o.ID == "" && !(userSet && clientSet):
				return cli.UsageErrorf("name the token: --user NAME --client ID, or --id ID")
			case o.ID == "" && o.User == "":
				return cli.UsageErrorf("--user is empty")
			case o.TokenURL == "":
				return cli.UsageErrorf("--token-url is required (or %s)", EnvTokenURL)
			case o.Window < 0:
				return cli.UsageErrorf("--refresh-window %v: want zero or more", o.Window)
			}
			if o.ID != "" {
				if err := tokencache.ValidateID(o.ID); err != nil {
					return cli.UsageErrorf("--id: %s", view.InvalidReason(err))
				}
			}
			if !strings.Contains(o.TokenURL, "://") {
				u, err := refresher.ZohoTokenURL(o.TokenURL)
				if err != nil {
					return cli.UsageErrorf("--token-url: %s", strings.TrimPrefix(err.Error(), "refresher: "))
				}
				o.TokenURL = u
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return Run(cmd.Context(), o)
		},
	}
	f.Settings.AddStoreFlags(cmd)
	fl := cmd.Flags()
	fl.StringVar(&o.User, "user", "", "the token's user name")
	fl.StringVar(&o.Client, "client", "", "the token's client ID")
	fl.StringVar(&o.ID, "id", "", "the token's ID (instead of --user and --client)")
	fl.StringVar(&o.TokenURL, "token-url", "", `token endpoint URL, or a Zoho data centre: "us", "eu", "in", "au", "cn", "jp", "ca", "sa", "uk" (env `+EnvTokenURL+`)`)
	fl.DurationVar(&o.Window, "refresh-window", refresher.DefaultRefreshWindow, "refresh a token this long before it expires, as the fleet's workers do")
	fl.BoolVar(&o.BasicAuth, "basic-auth", false, "authenticate the client to the token endpoint with HTTP Basic instead of the request body")
	fl.BoolVar(&o.JSON, "json", false, "print the token, its type, expiry and API domain as JSON")
	return cmd
}

// output is what --json prints.
type output struct {
	AccessToken string     `json:"access_token"`
	TokenType   string     `json:"token_type"`
	Expiry      *time.Time `json:"expiry"`
	APIDomain   string     `json:"api_domain,omitempty"`
}

// Run prints the token.
func Run(ctx context.Context, o *Options) error {
	return o.F.WithStore(ctx, func(c *cli.Conn) error {
		locker := lock.New(c.Redis, lock.WithNamespace(c.Store.Namespace()))
		defer locker.Close()
		var epOpts []refresher.HTTPOption
		if o.BasicAuth {
			epOpts = append(epOpts, refresher.WithBasicAuth())
		}
		r := refresher.New(c.Store, locker, refresher.NewHTTPEndpoint(o.TokenURL, epOpts...), refresher.WithRefreshWindow(o.Window))
		defer func() {
			// A refresh the server answered must reach the store before the
			// process ends: the old refresh token is dead.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = r.Shutdown(sctx)
		}()
		query := tokencache.Token{ID: o.ID, UserName: o.User, ClientID: o.Client}
		if o.ID != "" {
			query = tokencache.Token{ID: o.ID}
		}
		t, err := r.Token(ctx, query)
		switch {
		case errors.Is(err, tokencache.ErrNotFound):
			what := "ID " + o.ID
			if o.ID == "" {
				what = fmt.Sprintf("user %s and client %s", view.Cell(o.User), view.Cell(o.Client))
			}
			return &cli.NotFoundError{Msg: fmt.Sprintf("no token with %s in namespace %s: the user must log in first", what, c.Store.Namespace())}
		case errors.Is(err, refresher.ErrInvalidGrant):
			return fmt.Errorf("the authorization server refused the refresh token: the user must authorize again (%w)", err)
		case err != nil:
			return err
		}
		if o.JSON {
			return view.WriteJSON(o.F.IO.Out, output{AccessToken: t.AccessToken, TokenType: "Bearer", Expiry: view.ExpiryPtr(t.Expiry), APIDomain: t.APIDomain})
		}
		_, err = fmt.Fprintln(o.F.IO.Out, t.AccessToken)
		return err
	})
}
