package main

// The admin commands: list, show, revoke, purge and stats, over the token
// store of --namespace in the Redis of --redis. None of them ever prints a
// secret: tokens are shown through tokenView, which redacts them.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/redisstore"
)

func init() {
	register(newListCmd)
	register(newShowCmd)
	register(newRevokeCmd)
	register(newPurgeCmd)
	register(newStatsCmd)
}

// withStore connects to Redis and runs fn with the store of --namespace.
func (a *app) withStore(ctx context.Context, fn func(rdb redis.UniversalClient, store *redisstore.Store) error) error {
	rdb, store, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer rdb.Close()
	return fn(rdb, store)
}

// tokenView is how list and show present a token: the fields of
// tokencache.Token under the same JSON names, with every secret replaced by
// "[redacted]" when it is set and left empty when it is not, so that a
// reader can tell which secrets a token has without seeing one. The admin
// commands marshal only this type, never a Token, which encoding/json would
// print in clear.
type tokenView struct {
	ID           string    `json:"id"`
	UserName     string    `json:"user_name"`
	ClientID     string    `json:"client_id"`
	ClientSecret string    `json:"client_secret"`
	RefreshToken string    `json:"refresh_token"`
	AccessToken  string    `json:"access_token"`
	GrantToken   string    `json:"grant_token"`
	Expiry       time.Time `json:"expiry"`
	RedirectURL  string    `json:"redirect_url"`
	APIDomain    string    `json:"api_domain"`
	Version      int64     `json:"version"`
}

const redactedSecret = "[redacted]"

func redactSecret(s string) string {
	if s == "" {
		return ""
	}
	return redactedSecret
}

func viewOf(t tokencache.Token) tokenView {
	return tokenView{
		ID:           t.ID,
		UserName:     t.UserName,
		ClientID:     t.ClientID,
		ClientSecret: redactSecret(t.ClientSecret),
		RefreshToken: redactSecret(t.RefreshToken),
		AccessToken:  redactSecret(t.AccessToken),
		GrantToken:   redactSecret(t.GrantToken),
		Expiry:       t.Expiry,
		RedirectURL:  t.RedirectURL,
		APIDomain:    t.APIDomain,
		Version:      t.Version,
	}
}

// writeIndentedJSON writes v indented, without escaping <, > and & in user names.
func writeIndentedJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// sortByUserAndID orders tokens by user name, then ID, for stable output.
func sortByUserAndID(tokens []tokencache.Token) {
	slices.SortFunc(tokens, func(x, y tokencache.Token) int {
		if c := strings.Compare(x.UserName, y.UserName); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
}

// printable makes a value safe for one cell of a table or one line of show: user
// names are data and may hold tabs, newlines or terminal escapes, which are
// shown quoted instead of being interpreted. Empty is "-".
func printable(s string) string {
	if s == "" {
		return "-"
	}
	for _, r := range s {
		if r == utf8.RuneError || r == '\t' || !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// expiryText is an expiry for people: RFC 3339 and how far away it is.
func expiryText(exp, now time.Time) string {
	if exp.IsZero() {
		return "never"
	}
	d := exp.Sub(now)
	if d > 0 {
		return exp.Format(time.RFC3339) + " (in " + approxDuration(d) + ")"
	}
	return exp.Format(time.RFC3339) + " (expired " + approxDuration(-d) + " ago)"
}

// approxDuration rounds d to what a person needs: 42s, 3m, 5h07m, 12d.
func approxDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
}

func yesOrNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func newListCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the tokens of the namespace, secrets redacted",
		Long: `List every live token of the namespace, sorted by user name and ID: its ID,
user, client, access-token expiry, whether it has a refresh token, API domain
and revision. Secrets are never printed; --json prints every field, with each
secret that is set shown as "[redacted]".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withStore(cmd.Context(), func(_ redis.UniversalClient, store *redisstore.Store) error {
				tokens, err := store.GetTokens(cmd.Context())
				if err != nil {
					return err
				}
				sortByUserAndID(tokens)
				if asJSON {
					views := make([]tokenView, len(tokens))
					for i, t := range tokens {
						views[i] = viewOf(t)
					}
					return writeIndentedJSON(a.stdout, views)
				}
				if len(tokens) == 0 {
					fmt.Fprintf(a.stderr, "no tokens in namespace %s\n", store.Namespace())
					return nil
				}
				now := time.Now()
				tw := tabwriter.NewWriter(a.stdout, 0, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tUSER\tCLIENT\tACCESS TOKEN EXPIRY\tREFRESH\tAPI DOMAIN\tVERSION")
				for _, t := range tokens {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", t.ID, printable(t.UserName), printable(t.ClientID),
						expiryText(t.Expiry, now), yesOrNo(t.RefreshToken != ""), printable(t.APIDomain), t.Version)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array, secrets redacted")
	return cmd
}

// noTokenError says that no token has the ID an operator gave.
type noTokenError struct{ id, ns string }

func (e noTokenError) Error() string {
	return fmt.Sprintf("no token with ID %s in namespace %s", e.id, e.ns)
}

// findByID reads one token; a token that is not there is a noTokenError,
// and an ID that cannot be one is not echoed (it may be a pasted secret).
func findByID(ctx context.Context, store *redisstore.Store, id string) (tokencache.Token, error) {
	if err := tokencache.ValidateID(id); err != nil {
		return tokencache.Token{}, fmt.Errorf("invalid token ID: %s", invalidReason(err))
	}
	t, err := store.FindTokenByID(ctx, id)
	if errors.Is(err, tokencache.ErrNotFound) {
		return t, noTokenError{id: id, ns: store.Namespace()}
	}
	return t, err
}

// invalidReason is a validation error without its "tokencache: invalid
// token:" prefix. Validation errors name fields, never their values.
func invalidReason(err error) string {
	return strings.TrimPrefix(err.Error(), tokencache.ErrInvalidToken.Error()+": ")
}

func newShowCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one token, secrets redacted",
		Long: `Show every field of the token with this ID. A secret that is set is shown as
"[redacted]", one that is not as empty. A missing token is an error (exit 1).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(cmd.Context(), func(_ redis.UniversalClient, store *redisstore.Store) error {
				t, err := findByID(cmd.Context(), store, args[0])
				if err != nil {
					return err
				}
				v := viewOf(t)
				if asJSON {
					return writeIndentedJSON(a.stdout, v)
				}
				// Empty stays empty here, as in --json; printable's "-" is
				// for the columns of list.
				value := func(s string) string {
					if s == "" {
						return ""
					}
					return printable(s)
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 8, 2, ' ', 0)
				for _, f := range [...][2]string{
					{"id", v.ID},
					{"user_name", value(v.UserName)},
					{"client_id", value(v.ClientID)},
					{"client_secret", v.ClientSecret},
					{"refresh_token", v.RefreshToken},
					{"access_token", v.AccessToken},
					{"grant_token", v.GrantToken},
					{"expiry", expiryText(v.Expiry, time.Now())},
					{"redirect_url", value(v.RedirectURL)},
					{"api_domain", value(v.APIDomain)},
					{"version", strconv.FormatInt(v.Version, 10)},
				} {
					fmt.Fprintf(tw, "%s:\t%s\n", f[0], f[1])
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the token as JSON, secrets redacted")
	return cmd
}

func newRevokeCmd(a *app) *cobra.Command {
	var ignoreMissing bool
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Delete one token; workers then find it gone",
		Long: `Delete the token with this ID and its index entries. Workers that look it up
afterwards, by ID, user or token value, find nothing and start a new login.

A token that is not there is reported and exits 1, so that a mistyped ID does
not pass for a revocation; --ignore-missing makes that exit 0 (for scripts
that revoke idempotently).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(cmd.Context(), func(_ redis.UniversalClient, store *redisstore.Store) error {
				id := args[0]
				t, err := findByID(cmd.Context(), store, id)
				if errors.As(err, new(noTokenError)) && ignoreMissing {
					fmt.Fprintf(a.stdout, "%v: nothing to revoke\n", err)
					return nil
				}
				if err != nil {
					return err
				}
				if err := store.DeleteToken(cmd.Context(), id); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "revoked token %s (user %s, client %s) in namespace %s\n",
					id, printable(t.UserName), printable(t.ClientID), store.Namespace())
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&ignoreMissing, "ignore-missing", false, "exit 0 when no token has this ID")
	return cmd
}

func newPurgeCmd(a *app) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "purge",
		Short: "Delete every token of the namespace",
		Long: `Delete every token of the namespace, and nothing else: other namespaces in
the same Redis keep theirs. It asks for confirmation on stderr and reads the
answer from stdin; only "y" or "yes" goes ahead, anything else (or no answer)
deletes nothing and exits 1. --yes skips the question.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withStore(cmd.Context(), func(_ redis.UniversalClient, store *redisstore.Store) error {
				tokens, err := store.GetTokens(cmd.Context())
				if err != nil {
					return err
				}
				ns := store.Namespace()
				if len(tokens) == 0 {
					fmt.Fprintf(a.stdout, "namespace %s has no tokens: nothing to delete\n", ns)
					return nil
				}
				if !yes {
					fmt.Fprintf(a.stderr, "Delete all %d tokens in namespace %s? [y/N] ", len(tokens), ns)
					ok, ended := answeredYes(a.stdin)
					if !ended {
						fmt.Fprintln(a.stderr) // no Enter was typed: end the question's line
					}
					if !ok {
						return fmt.Errorf("purge cancelled: nothing was deleted")
					}
				}
				if err := store.DeleteTokens(cmd.Context()); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "deleted %d tokens from namespace %s\n", len(tokens), ns)
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
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

// tokenStats counts a namespace's tokens by state, and what they occupy.
type tokenStats struct {
	Namespace           string `json:"namespace"`
	Tokens              int    `json:"tokens"`
	Soon                string `json:"soon"`
	ExpiringSoon        int    `json:"expiring_soon"`
	ExpiredRefreshable  int    `json:"expired_refreshable"`
	WithoutRefreshToken int    `json:"without_refresh_token"`
	NeverExpiring       int    `json:"never_expiring"`
	Keys                int64  `json:"keys"`
	MemoryBytes         *int64 `json:"memory_bytes"` // null when the server cannot tell
	MemoryNote          string `json:"memory_note,omitempty"`
}

func newStatsCmd(a *app) *cobra.Command {
	var (
		asJSON bool
		soon   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Count the namespace's tokens and the Redis memory they use",
		Long: `Count the live tokens of the namespace: those whose access token expires
within --soon, those whose access token has expired but that have a refresh
token to renew it, those without a refresh token (they vanish when their
access token expires), and those that never expire.

It also sums MEMORY USAGE over every key whose name starts with the namespace
and a colon (SCAN, on every master of a cluster): the tokens, their index
entries, and the locks and cooldowns of workers using the same namespace. A
namespace that extends this one (NS:more) is counted too. When the server does
not answer MEMORY USAGE, the memory is "n/a" with the reason.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if soon < 0 {
				return fmt.Errorf("--soon must not be negative")
			}
			return a.withStore(cmd.Context(), func(rdb redis.UniversalClient, store *redisstore.Store) error {
				ctx := cmd.Context()
				tokens, err := store.GetTokens(ctx)
				if err != nil {
					return err
				}
				st := countTokenStates(tokens, time.Now(), soon)
				st.Namespace = store.Namespace()
				usage, err := namespaceMemory(ctx, rdb, store.Namespace())
				if err != nil {
					return err
				}
				st.Keys = usage.keys
				if usage.note == "" {
					st.MemoryBytes = &usage.bytes
				}
				st.MemoryNote = usage.note
				if asJSON {
					return writeIndentedJSON(a.stdout, st)
				}
				return st.writeText(a.stdout, soon)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the numbers as JSON")
	cmd.Flags().DurationVar(&soon, "soon", 5*time.Minute, "how close to expiry an access token counts as expiring soon")
	return cmd
}

func countTokenStates(tokens []tokencache.Token, now time.Time, soon time.Duration) tokenStats {
	st := tokenStats{Tokens: len(tokens), Soon: soon.String()}
	for _, t := range tokens {
		switch {
		case t.Expiry.IsZero():
			st.NeverExpiring++
		case !now.Before(t.Expiry):
			if t.RefreshToken != "" {
				st.ExpiredRefreshable++
			}
		case t.ExpiresWithin(now, soon):
			st.ExpiringSoon++
		}
		if t.RefreshToken == "" {
			st.WithoutRefreshToken++
		}
	}
	return st
}

func (st tokenStats) writeText(w io.Writer, soon time.Duration) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "namespace:\t%s\n", st.Namespace)
	fmt.Fprintf(tw, "tokens:\t%d\n", st.Tokens)
	fmt.Fprintf(tw, "access token expiring within %s:\t%d\n", soon, st.ExpiringSoon)
	fmt.Fprintf(tw, "access token expired, refreshable:\t%d\n", st.ExpiredRefreshable)
	fmt.Fprintf(tw, "without refresh token:\t%d\n", st.WithoutRefreshToken)
	fmt.Fprintf(tw, "never expiring:\t%d\n", st.NeverExpiring)
	fmt.Fprintf(tw, "redis keys (%s:*):\t%d\n", st.Namespace, st.Keys)
	if st.MemoryBytes != nil {
		per := ""
		if st.Tokens > 0 {
			per = fmt.Sprintf(", %s per token", bytesIEC(*st.MemoryBytes/int64(st.Tokens)))
		}
		fmt.Fprintf(tw, "redis memory:\t%s (%d bytes%s)\n", bytesIEC(*st.MemoryBytes), *st.MemoryBytes, per)
	} else {
		fmt.Fprintf(tw, "redis memory:\tn/a (%s)\n", st.MemoryNote)
	}
	return tw.Flush()
}

// bytesIEC writes n in binary units: 512 B, 1.5 KiB, 3.2 MiB.
func bytesIEC(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n)/unit, 0
	for f >= unit && i < 3 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGT"[i])
}

// memoryUsage is what namespaceMemory found.
type memoryUsage struct {
	keys  int64
	bytes int64
	note  string // why bytes is unknown; "" when it is known
}

// memoryScanBatch is how many keys SCAN asks for at a time, and how many
// MEMORY USAGE commands go in one pipeline.
const memoryScanBatch = 1000

// namespaceMemory counts the keys whose names start with ns+":" and sums
// their MEMORY USAGE. It SCANs (never KEYS) every master of a cluster, and
// asks each node about its own keys in pipelines. A server that refuses
// MEMORY USAGE (an ACL, or a server without it) gives the key count and a
// note instead of the bytes; a network failure is an error.
func namespaceMemory(ctx context.Context, rdb redis.UniversalClient, ns string) (memoryUsage, error) {
	var (
		mu  sync.Mutex // guards total: a cluster's masters are scanned in parallel
		tot memoryUsage
	)
	scan := func(ctx context.Context, node redis.UniversalClient) error {
		u, err := nodeMemory(ctx, node, ns)
		mu.Lock()
		defer mu.Unlock()
		tot.keys += u.keys
		tot.bytes += u.bytes
		if tot.note == "" {
			tot.note = u.note
		}
		return err
	}
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return scan(ctx, node)
		})
	} else {
		err = scan(ctx, rdb)
	}
	if err != nil {
		return memoryUsage{}, fmt.Errorf("measuring the memory of namespace %s: %w", ns, err)
	}
	return tot, nil
}

// memoryForm is how a server is asked for a key's size: SAMPLES 0 makes
// Redis measure every element of a hash or set instead of estimating from
// five; a server that rejects the option is asked without it.
type memoryForm int

const (
	memoryUnknown memoryForm = iota
	memoryAllSamples
	memoryDefault
	memoryUnsupported
)

func nodeMemory(ctx context.Context, node redis.UniversalClient, ns string) (memoryUsage, error) {
	var (
		u    memoryUsage
		form = memoryUnknown
	)
	iter := node.Scan(ctx, 0, matchPatternEscape(ns)+":*", memoryScanBatch).Iterator()
	batch := make([]string, 0, memoryScanBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		defer func() { batch = batch[:0] }()
		u.keys += int64(len(batch))
		if form == memoryUnknown {
			f, note, err := probeMemoryForm(ctx, node, batch[0])
			if err != nil {
				return err
			}
			form, u.note = f, note
		}
		if form == memoryUnsupported {
			return nil
		}
		cmds := make([]*redis.IntCmd, len(batch))
		_, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, key := range batch {
				if form == memoryAllSamples {
					cmds[i] = p.MemoryUsage(ctx, key, 0)
				} else {
					cmds[i] = p.MemoryUsage(ctx, key)
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		for _, c := range cmds {
			n, err := c.Result()
			switch {
			case errors.Is(err, redis.Nil): // expired or deleted since SCAN found it
			case err != nil:
				return err
			default:
				u.bytes += n
			}
		}
		return nil
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == memoryScanBatch {
			if err := flush(); err != nil {
				return u, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return u, err
	}
	return u, flush()
}

// probeMemoryForm finds how the server answers MEMORY USAGE for key. A
// network failure is an error; a server error means the form is refused.
func probeMemoryForm(ctx context.Context, node redis.UniversalClient, key string) (memoryForm, string, error) {
	err := node.MemoryUsage(ctx, key, 0).Err()
	if err == nil || errors.Is(err, redis.Nil) {
		return memoryAllSamples, "", nil
	}
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return memoryUnknown, "", err
	}
	err = node.MemoryUsage(ctx, key).Err()
	if err == nil || errors.Is(err, redis.Nil) {
		return memoryDefault, "", nil
	}
	if !errors.As(err, &rerr) {
		return memoryUnknown, "", err
	}
	return memoryUnsupported, "the server refused MEMORY USAGE: " + singleLine(rerr.Error()), nil
}

// matchPatternEscape escapes what SCAN MATCH would read as a pattern, so that a
// namespace such as "a*" matches only itself.
func matchPatternEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\', '^', '-':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
