// Command zoho calls the Zoho CRM API with a token that tokencache keeps in
// Redis: the first run exchanges a self-client grant code, every later run
// (and every other process on the same Redis) reuses the stored token, and
// it is refreshed once per expiry across all of them.
//
//	ZOHO_CLIENT_SECRET=… ZOHO_GRANT_CODE=1000.… \
//	    go run ./examples/zoho --client-id 1000.… --user you@example.com --dc eu
//
// Run it without credentials to see what to pass and where to get it. With
// --token-url it talks to any RFC 6749 token endpoint instead of Zoho
// Accounts, such as a local "tokencache oauth-server" (see README.md).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/lock"
	"github.com/tokencache/tokencache/redisstore"
	"github.com/tokencache/tokencache/refresher"
)

// usageError is an error that asks the user for different input; main
// prints it and exits with status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, ue.msg)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "zoho:", err)
		os.Exit(1)
	}
}

// DefaultAPIPath is the Zoho CRM call the example makes: the user the token
// belongs to (Users API, scope ZohoCRM.users.READ). Zoho CRM puts the API
// version in the path; v8 is the current one in Zoho's developer docs.
const DefaultAPIPath = "/crm/v8/users?type=CurrentUser"

// options are the flags, each with an environment fallback; the secret and
// the grant code are best passed in the environment, so that they do not
// appear in the process list.
type options struct {
	clientID, clientSecret string
	grantCode, redirectURL string
	user                   string
	dataCentre, tokenURL   string
	redisURL, namespace    string
	apiBase, apiPath       string
}

func parseFlags(args []string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("zoho", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.clientID, "client-id", os.Getenv("ZOHO_CLIENT_ID"), "client ID of the Zoho self client (env ZOHO_CLIENT_ID)")
	fs.StringVar(&o.clientSecret, "client-secret", "", "its client secret (or env ZOHO_CLIENT_SECRET, which keeps it out of the process list)")
	fs.StringVar(&o.grantCode, "grant-code", "", "single-use grant code, needed on the first run only (or env ZOHO_GRANT_CODE)")
	fs.StringVar(&o.redirectURL, "redirect-url", os.Getenv("ZOHO_REDIRECT_URL"), "redirect URI the code was issued for; empty for a self client (env ZOHO_REDIRECT_URL)")
	fs.StringVar(&o.user, "user", os.Getenv("ZOHO_USER"), "user signature the token is stored under, such as your e-mail address (env ZOHO_USER)")
	fs.StringVar(&o.dataCentre, "dc", envOr("ZOHO_DC", "us"), "Zoho data centre of the account: us, eu, in, au, cn, jp, ca, sa or uk (env ZOHO_DC)")
	fs.StringVar(&o.tokenURL, "token-url", "", "token endpoint; overrides --dc (for a local test server)")
	fs.StringVar(&o.redisURL, "redis", envOr("TOKENCACHE_REDIS_URL", "redis://127.0.0.1:6379/0"), "Redis URL (env TOKENCACHE_REDIS_URL)")
	fs.StringVar(&o.namespace, "namespace", envOr("TOKENCACHE_NAMESPACE", "tokencache"), "key namespace in Redis (env TOKENCACHE_NAMESPACE)")
	fs.StringVar(&o.apiBase, "api-base", "", "API base URL; overrides the token's api_domain")
	fs.StringVar(&o.apiPath, "api-path", DefaultAPIPath, "path (and query) to GET under the API base")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	// Secrets are read from the environment here rather than used as flag
	// defaults, which -h would print.
	if o.clientSecret == "" {
		o.clientSecret = os.Getenv("ZOHO_CLIENT_SECRET")
	}
	if o.grantCode == "" {
		o.grantCode = os.Getenv("ZOHO_GRANT_CODE")
	}
	if fs.NArg() > 0 {
		return o, usageError{fmt.Sprintf("zoho: unexpected argument %q\n\n%s", fs.Arg(0), howTo)}
	}
	var missing []string
	for _, f := range []struct{ name, value string }{
		{"--client-id", o.clientID}, {"--client-secret", o.clientSecret}, {"--user", o.user},
	} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return o, usageError{fmt.Sprintf("zoho: missing %s\n\n%s", strings.Join(missing, ", "), howTo)}
	}
	if o.tokenURL == "" {
		u, err := refresher.ZohoTokenURL(o.dataCentre)
		if err != nil {
			return o, usageError{"zoho: --dc: " + err.Error()}
		}
		o.tokenURL = u
	}
	return o, nil
}

// howTo tells a user without credentials what to pass.
const howTo = `This example needs a Zoho OAuth client, and a grant code on its first run.

 1. Open the Zoho API console of your data centre (api-console.zoho.com,
    api-console.zoho.eu, .in, .com.au, …) and add a client of type
    "Self Client".
 2. Its "Client Secret" tab shows the client ID and the client secret.
 3. In its "Generate Code" tab enter the scope ZohoCRM.users.READ (add the
    scopes your own calls need, comma-separated), pick how long the code
    stays valid (3 to 10 minutes), describe it and create it. The code can
    be exchanged once.
 4. Before it expires, run:

      export ZOHO_CLIENT_SECRET=…   ZOHO_GRANT_CODE=1000.…
      go run ./examples/zoho --client-id 1000.… --user you@example.com --dc us

    --dc is the data centre your account lives in: us, eu, in, au, cn, jp,
    ca, sa or uk. A token sent to another one is refused (invalid_client).

The token is kept in Redis (--redis, default redis://127.0.0.1:6379/0), so
later runs need only --client-id, the secret and --user.`

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// run is main without the process around it, so that a test can call it.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseFlags(args, stdout)
	if err != nil {
		return err
	}
	opt, err := redis.ParseURL(o.redisURL)
	if err != nil {
		// The error can quote the URL, password included: keep it out.
		return usageError{"zoho: --redis: not a valid redis:// or rediss:// URL"}
	}
	opt.ContextTimeoutEnabled = true // a hung Redis cannot outlast ctx
	rdb := redis.NewClient(opt)
	defer rdb.Close()

	// One store, locker and refresher per process, shared by all its
	// goroutines. The endpoint sends the client credentials in the request
	// body, as Zoho Accounts expects.
	store := redisstore.New(rdb, redisstore.WithNamespace(o.namespace))
	locker := lock.New(rdb, lock.WithNamespace(o.namespace))
	defer locker.Close()
	r := refresher.New(store, locker, refresher.NewHTTPEndpoint(o.tokenURL))
	defer r.Close()

	// The user's token: read from Redis, refreshed when due, or, the first
	// time, made from the grant code. A grant code is single-use, so this
	// exchange happens once even when many processes start together with
	// the same code; the others wait for it and read the result.
	tok, err := r.Token(ctx, tokencache.Token{
		UserName:     o.user,
		ClientID:     o.clientID,
		ClientSecret: o.clientSecret,
		GrantToken:   o.grantCode,
		RedirectURL:  o.redirectURL,
	})
	switch {
	case errors.Is(err, tokencache.ErrNotFound):
		return usageError{fmt.Sprintf("zoho: no token is stored for %q and client %s yet: pass a grant code (--grant-code or ZOHO_GRANT_CODE)\n\n%s", o.user, o.clientID, howTo)}
	case errors.Is(err, refresher.ErrInvalidGrant):
		// Terminal: a used or expired code, a revoked refresh token, a wrong
		// secret, or a data centre the account does not live in.
		return fmt.Errorf("the token endpoint refused the credentials: check --dc, the client secret and --redirect-url, or generate a new grant code: %w", err)
	case err != nil:
		return err // transient (refresher.ErrTemporary): retry later
	}

	// Zoho names the API host of the account's data centre in the token
	// answer (api_domain, such as https://www.zohoapis.eu); the store keeps it.
	base := tok.APIDomain
	if o.apiBase != "" {
		base = o.apiBase
	}
	if base == "" {
		return errors.New("the token has no api_domain: pass --api-base")
	}
	fmt.Fprintf(stdout, "token %s for %s (client %s), expires %s, api_domain %s\n",
		tok.ID, tok.UserName, tok.ClientID, tok.Expiry.Format(time.RFC3339), tok.APIDomain)

	// An *http.Client that always carries a valid token. After the first
	// call the source looks the token up by its ID.
	client := oauth2.NewClient(ctx, zohoScheme{r.TokenSource(ctx, tokencache.Token{ID: tok.ID})})

	summary, err := currentUser(ctx, client, strings.TrimRight(base, "/")+o.apiPath)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, summary)
	return nil
}

// zohoScheme makes x/oauth2 send "Authorization: Zoho-oauthtoken <token>",
// the scheme the Zoho CRM API documents, instead of "Bearer <token>".
// oauth2.Transport writes whatever TokenType the token carries (it only
// normalises the spelling of "bearer", "mac" and "basic").
type zohoScheme struct{ src oauth2.TokenSource }

func (z zohoScheme) Token() (*oauth2.Token, error) {
	t, err := z.src.Token()
	if err != nil {
		return nil, err
	}
	return &oauth2.Token{AccessToken: t.AccessToken, TokenType: "Zoho-oauthtoken", Expiry: t.Expiry}, nil
}

// crmUsers is the part of the Users API answer the summary prints.
type crmUsers struct {
	Users []struct {
		FullName string `json:"full_name"`
		Email    string `json:"email"`
		Status   string `json:"status"`
		Role     struct {
			Name string `json:"name"`
		} `json:"role"`
		Profile struct {
			Name string `json:"name"`
		} `json:"profile"`
	} `json:"users"`
}

// currentUser GETs url and returns a one-line summary of the answer.
func currentUser(ctx context.Context, client *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		// Zoho answers {"code":"OAUTH_SCOPE_MISMATCH",…} and the like.
		var e struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &e)
		if e.Code != "" {
			return "", fmt.Errorf("GET %s: %s: %s %s", url, resp.Status, e.Code, e.Message)
		}
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var users crmUsers
	if err := json.Unmarshal(body, &users); err == nil && len(users.Users) > 0 {
		u := users.Users[0]
		return fmt.Sprintf("CRM user: %s <%s>, role %s, profile %s, status %s",
			u.FullName, u.Email, u.Role.Name, u.Profile.Name, u.Status), nil
	}
	// Another API (such as a test server's) answered: show what it said.
	const max = 200
	s := strings.TrimSpace(string(body))
	if len(s) > max {
		s = s[:max] + "…"
	}
	return fmt.Sprintf("GET %s: %s %s", url, resp.Status, s), nil
}
