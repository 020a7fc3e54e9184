// Command oauth2client shows tokencache as a drop-in for code that already
// uses golang.org/x/oauth2: Refresher.TokenSource is an oauth2.TokenSource,
// so oauth2.NewClient turns it into an *http.Client whose requests always
// carry a valid access token, shared with every other process that uses the
// same Redis.
//
// By default it runs on its own: an embedded Redis (miniredis) and a local
// OAuth server (oauthtest) with short-lived tokens, so a few calls are
// enough to see a refresh happen. Point it at real ones with --redis and
// --token-url (see README.md).
//
//	go run ./examples/oauth2client
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/lock"
	"github.com/tokencache/tokencache/oauthtest"
	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/refresher"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "oauth2client:", err)
		os.Exit(1)
	}
}

// options are the command-line flags.
type options struct {
	redisURL     string        // empty: an embedded miniredis
	tokenURL     string        // empty: a local oauthtest server
	apiURL       string        // the protected resource to call
	clientID     string        // OAuth client
	clientSecret string        // from $OAUTH_CLIENT_SECRET, so it stays out of ps
	grantCode    string        // from $OAUTH_GRANT_CODE: the first login's code
	redirectURL  string        // the redirect URI the code was issued for
	user         string        // the user signature the token is stored under
	calls        int           // how many API calls to make
	interval     time.Duration // pause between calls
	lifetime     time.Duration // access token lifetime of the local server
}

func parseFlags(args []string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("oauth2client", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.redisURL, "redis", "", "Redis URL; empty runs an embedded miniredis")
	fs.StringVar(&o.tokenURL, "token-url", "", "token endpoint; empty runs a local oauthtest server")
	fs.StringVar(&o.apiURL, "api-url", "", "URL to GET with the token (default: the local server's "+oauthtest.WhoAmIPath+")")
	fs.StringVar(&o.clientID, "client-id", oauthtest.DefaultClientID, "OAuth client ID")
	fs.StringVar(&o.redirectURL, "redirect-url", oauthtest.DefaultRedirectURL, "redirect URI the grant code was issued for")
	fs.StringVar(&o.user, "user", "alice@example.com", "user signature the token is stored under")
	fs.IntVar(&o.calls, "calls", 6, "number of API calls")
	fs.DurationVar(&o.interval, "interval", 500*time.Millisecond, "pause between API calls")
	fs.DurationVar(&o.lifetime, "lifetime", 2*time.Second, "access token lifetime of the local server")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.clientSecret = os.Getenv("OAUTH_CLIENT_SECRET")
	o.grantCode = os.Getenv("OAUTH_GRANT_CODE")
	if o.tokenURL != "" && (o.apiURL == "" || o.clientSecret == "") {
		return o, errors.New("with --token-url, also pass --api-url, --client-id and $OAUTH_CLIENT_SECRET (and $OAUTH_GRANT_CODE on the first run)")
	}
	return o, nil
}

// run is main without the process around it, so that a test can call it.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseFlags(args, stdout)
	if err != nil {
		return err
	}

	// Redis: yours, or an embedded one for the demo.
	rdb, closeRedis, err := openRedis(o.redisURL)
	if err != nil {
		return err
	}
	defer closeRedis()

	// The OAuth server: yours, or a local one that issues a grant code for
	// the demo user as if they had just logged in.
	var local *oauthtest.Server
	var refresherOpts []refresher.Option
	if o.tokenURL == "" {
		srv, base, stopServer, err := startOAuthServer(o.lifetime)
		if err != nil {
			return err
		}
		defer stopServer()
		local = srv
		o.tokenURL, o.apiURL = srv.TokenURL(), base+oauthtest.WhoAmIPath
		o.clientSecret = oauthtest.DefaultClientSecret
		o.grantCode = srv.IssueGrant(o.clientID, o.user)
		// Demo tokens live seconds, not an hour: renew them in the last
		// quarter of their life rather than the default last minute.
		refresherOpts = append(refresherOpts, refresher.WithRefreshWindow(o.lifetime/4))
	}

	// --- The part to copy ------------------------------------------------
	//
	// One store, one locker and one refresher per process, shared by every
	// goroutine. The locker is what makes the refresh happen once across
	// the fleet rather than once per process.
	store := redisstore.New(rdb)
	locker := lock.New(rdb)
	defer locker.Close()
	r := refresher.New(store, locker, refresher.NewHTTPEndpoint(o.tokenURL), refresherOpts...)
	defer r.Close()

	// Look the user's token up; on the very first run there is none, and the
	// grant code is exchanged for one (once, however many processes ask).
	tok, err := r.Token(ctx, tokencache.Token{
		UserName:     o.user,
		ClientID:     o.clientID,
		ClientSecret: o.clientSecret,
		GrantToken:   o.grantCode,
		RedirectURL:  o.redirectURL,
	})
	switch {
	case errors.Is(err, tokencache.ErrNotFound):
		return fmt.Errorf("no token stored for %q yet: pass a grant code in $OAUTH_GRANT_CODE", o.user)
	case err != nil:
		return err
	}
	// tok prints with its secrets redacted.
	fmt.Fprintf(stdout, "token %s for %s, expires %s\n", tok.ID, tok.UserName, tok.Expiry.Format(time.TimeOnly))

	// Where code built on x/oauth2 had
	//
	//	client := conf.Client(ctx, tok) // each process refreshes on its own
	//
	// it now has this, and nothing else changes:
	client := oauth2.NewClient(ctx, r.TokenSource(ctx, tokencache.Token{ID: tok.ID}))
	// ----------------------------------------------------------------------

	for i := 1; i <= o.calls; i++ {
		status, body, err := get(ctx, client, o.apiURL)
		if err != nil {
			return fmt.Errorf("call %d: %w", i, err)
		}
		fmt.Fprintf(stdout, "call %d: %d %s\n", i, status, body)
		if i < o.calls {
			select {
			case <-time.After(o.interval):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}

	if local != nil {
		st := local.Stats()
		fmt.Fprintf(stdout, "token server: exchanges=%d refreshes=%d rejected=%d; API calls: ok=%d unauthorized=%d\n",
			st.Exchanges, st.Refreshes, st.InvalidGrants+st.InvalidClients, st.APICalls, st.Unauthorized)
	}
	return nil
}

// get is the kind of function a program already has: it takes an
// *http.Client and knows nothing about tokens.
func get(ctx context.Context, client *http.Client, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, strings.TrimSpace(string(body)), err
}

// openRedis connects to url, or starts an embedded miniredis when url is
// empty. The returned func closes both.
func openRedis(url string) (redis.UniversalClient, func(), error) {
	var mr *miniredis.Miniredis
	if url == "" {
		var err error
		if mr, err = miniredis.Run(); err != nil {
			return nil, nil, err
		}
		url = "redis://" + mr.Addr()
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		// The error can quote the URL, password included: keep it out.
		return nil, nil, errors.New("--redis: not a valid redis:// or rediss:// URL")
	}
	// A hung Redis then cannot outlast the caller's deadline.
	opt.ContextTimeoutEnabled = true
	rdb := redis.NewClient(opt)
	return rdb, func() {
		_ = rdb.Close()
		if mr != nil {
			mr.Close()
		}
	}, nil
}

// startOAuthServer runs an oauthtest server on a loopback port, with the
// default client registered and access tokens that live lifetime.
func startOAuthServer(lifetime time.Duration) (*oauthtest.Server, string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, err
	}
	base := "http://" + ln.Addr().String()
	srv := oauthtest.New(
		oauthtest.WithDefaultClient(),
		oauthtest.WithBaseURL(base),
		oauthtest.WithAccessTokenLifetime(lifetime),
	)
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	return srv, base, func() {
		srv.Close()
		_ = hs.Close()
	}, nil
}
