// Package oauthserver is the oauth-server command: the oauthtest
// authorization server on a port, for development and docker-compose.
package oauthserver

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/oauthtest"
)

// Options are the settings of oauth-server.
type Options struct {
	F *cli.Factory

	addr          string
	baseURL       string
	lifetime      time.Duration
	grantLifetime time.Duration
	clientID      string
	clientSecret  string
	redirectURL   string
	refreshMode   string
	revokeOnReuse bool
	zoho          bool
	logRequests   bool
	seedUser      string
	grantFile     string
}

// ShutdownTimeout bounds the graceful shutdown of oauth-server.
const ShutdownTimeout = 5 * time.Second

// HealthPath answers 200 while the server runs, for container health checks
// ("tokencache healthcheck --url http://127.0.0.1:8080/healthz").
const HealthPath = "/healthz"

// NewCmdOAuthServer returns the oauth-server command; runF replaces Run in tests.
func NewCmdOAuthServer(f *cli.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	o := &Options{F: f}
	cmd := &cobra.Command{
		Use:   "oauth-server",
		Short: "Run a local OAuth 2.0 server that rotates refresh tokens, for development and docker-compose",
		Long: `OAuth-server serves the oauthtest package's authorization server: a token
endpoint (` + oauthtest.TokenPath + ` and ` + oauthtest.ShortTokenPath + `) that exchanges codes and refreshes tokens,
rotating refresh tokens and refusing one used twice; an authorization endpoint
(` + oauthtest.AuthPath + `) that approves every request at once and redirects back with a code
for the user named by login_hint; and a protected resource (` + oauthtest.WhoAmIPath + `)
that answers 200 for a live access token and 401 otherwise. It keeps
everything in memory and approves everyone: never expose it to an untrusted
network.

A worker gets its first token with a code: from the authorization endpoint
(curl -si 'http://HOST/oauth/v2/auth?response_type=code&client_id=ID&redirect_uri=URL&login_hint=USER'
answers with a Location header that carries code=...), or from --seed-user,
which makes one code at start and prints it, or writes it to --grant-file for
"tokencache worker --grant-code-file". A code can be exchanged once, within
--grant-lifetime.

SIGINT or SIGTERM stops it gracefully.`,
		Example: `  tokencache oauth-server --addr :8080 --token-lifetime 1h
  tokencache oauth-server --addr :8080 --base-url http://oauth:8080 --seed-user alice@example.com --grant-file /shared/grant`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("client-secret") {
				if v := os.Getenv(cli.EnvClientSecret); v != "" {
					o.clientSecret = v
				}
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return Run(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.addr, "addr", ":8080", "address to listen on")
	fl.StringVar(&o.baseURL, "base-url", "", "URL clients reach the server at, such as http://oauth:8080, for api_domain (default: the Host of each request)")
	fl.DurationVar(&o.lifetime, "token-lifetime", oauthtest.DefaultAccessTokenLifetime, "access token lifetime")
	fl.DurationVar(&o.grantLifetime, "grant-lifetime", oauthtest.DefaultGrantLifetime, "how long an authorization code can be exchanged")
	fl.StringVar(&o.clientID, "client-id", oauthtest.DefaultClientID, "the OAuth client to register")
	fl.StringVar(&o.clientSecret, "client-secret", oauthtest.DefaultClientSecret, "its secret (env "+cli.EnvClientSecret+")")
	fl.StringVar(&o.redirectURL, "redirect-url", oauthtest.DefaultRedirectURL, "its redirect URL; empty accepts any")
	fl.StringVar(&o.refreshMode, "refresh-mode", "rotate", `what a refresh answers: "rotate" (a new refresh token; the old one is refused), "repeat" (the same one) or "omit" (none, as Zoho)`)
	fl.BoolVar(&o.revokeOnReuse, "revoke-on-reuse", false, "revoke every token of an authorization when a rotated refresh token is presented again (RFC 9700)")
	fl.BoolVar(&o.zoho, "zoho", false, "answer errors as Zoho does (HTTP 200, invalid_code)")
	fl.BoolVar(&o.logRequests, "log", false, "log one line per token request on stderr (never a secret)")
	fl.StringVar(&o.seedUser, "seed-user", "", "at start, make an authorization code for this user and print it (or write it to --grant-file)")
	fl.StringVar(&o.grantFile, "grant-file", "", "file to write the --seed-user code to (mode 0600) instead of printing it")
	return cmd
}

func (o *Options) serverOptions(stderr *slog.Logger) ([]oauthtest.Option, error) {
	var mode oauthtest.RefreshMode
	switch o.refreshMode {
	case "rotate":
		mode = oauthtest.RotateRefreshToken
	case "repeat":
		mode = oauthtest.RepeatRefreshToken
	case "omit":
		mode = oauthtest.OmitRefreshToken
	default:
		return nil, cli.UsageErrorf("--refresh-mode %q: want rotate, repeat or omit", o.refreshMode)
	}
	switch {
	case o.lifetime <= 0:
		return nil, cli.UsageErrorf("--token-lifetime %v: want a positive duration", o.lifetime)
	case o.grantLifetime <= 0:
		return nil, cli.UsageErrorf("--grant-lifetime %v: want a positive duration", o.grantLifetime)
	case o.clientID == "":
		return nil, cli.UsageErrorf("--client-id is empty")
	case o.grantFile != "" && o.seedUser == "":
		return nil, cli.UsageErrorf("--grant-file needs --seed-user")
	}
	opts := []oauthtest.Option{
		oauthtest.WithClient(o.clientID, o.clientSecret, o.redirectURL),
		oauthtest.WithAccessTokenLifetime(o.lifetime),
		oauthtest.WithGrantLifetime(o.grantLifetime),
		oauthtest.WithRefreshMode(mode),
		oauthtest.WithRevokeOnReuse(o.revokeOnReuse),
	}
	if o.baseURL != "" {
		u, err := url.Parse(o.baseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, cli.UsageErrorf("--base-url %q: want an absolute http or https URL", o.baseURL)
		}
		opts = append(opts, oauthtest.WithBaseURL(o.baseURL))
	}
	if o.zoho {
		opts = append(opts, oauthtest.WithZohoQuirks())
	}
	if stderr != nil {
		opts = append(opts, oauthtest.WithLogger(stderr))
	}
	return opts, nil
}

// Run serves until ctx ends.
func Run(ctx context.Context, o *Options) error {
	var logger *slog.Logger
	if o.logRequests {
		logger = slog.New(slog.NewTextHandler(o.F.IO.ErrOut, nil))
	}
	opts, err := o.serverOptions(logger)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("--addr %s: %v", o.addr, err) // %v: a listener's error is no Redis outage
	}
	srv := oauthtest.New(opts...)
	defer srv.Close()
	mux := http.NewServeMux()
	mux.Handle("/", srv)
	mux.HandleFunc(HealthPath, func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()

	base := o.baseURL
	if base == "" {
		base = "http://" + reachableAddr(ln.Addr())
	}
	auth := url.Values{"response_type": {"code"}, "client_id": {o.clientID}, "redirect_uri": {o.redirectURL}, "login_hint": {"USER"}}
	fmt.Fprintf(o.F.IO.Out, "oauth-server: listening on %s\n", ln.Addr())
	fmt.Fprintf(o.F.IO.Out, "  token URL:          %s%s\n", base, oauthtest.TokenPath)
	fmt.Fprintf(o.F.IO.Out, "  authorization URL:  %s%s?%s\n", base, oauthtest.AuthPath, auth.Encode())
	fmt.Fprintf(o.F.IO.Out, "  protected resource: %s%s\n", base, oauthtest.WhoAmIPath)
	fmt.Fprintf(o.F.IO.Out, "  client:             %s, access tokens live %v, refresh tokens: %s\n", o.clientID, o.lifetime, o.refreshMode)
	if o.seedUser != "" {
		code := srv.IssueGrant(o.clientID, o.seedUser)
		if o.grantFile != "" {
			if err := writeSecretFile(o.grantFile, code+"\n"); err != nil {
				_ = hs.Close()
				return fmt.Errorf("--grant-file: %w", err)
			}
			fmt.Fprintf(o.F.IO.Out, "  grant code for %s written to %s (valid %v)\n", o.seedUser, o.grantFile, o.grantLifetime)
		} else {
			fmt.Fprintf(o.F.IO.Out, "  grant code for %s (valid %v): %s\n", o.seedUser, o.grantLifetime, code)
		}
	}

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	// Release requests held by injected latency, then let the rest finish.
	srv.Close()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
		return fmt.Errorf("oauth-server: shutting down: %w", err)
	}
	fmt.Fprintln(o.F.IO.Out, "oauth-server: stopped")
	return nil
}

// reachableAddr is addr with an unspecified host (":8080", "[::]:8080")
// replaced by localhost, for printing URLs.
func reachableAddr(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// writeSecretFile writes data to a new file readable by its owner only and
// renames it to name, so a reader never sees it half written.
func writeSecretFile(name, data string) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".grant-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}
