// Command workers runs a small fleet: it starts several copies of itself as
// separate processes, and they share one user's token through Redis while
// each calls an API as fast as it likes. When the token nears its expiry,
// exactly one of them renews it and the others pick up the new one.
//
// The parent process runs the infrastructure: an embedded Redis (miniredis,
// or yours with --redis) and a local OAuth server (oauthtest) that rotates
// refresh tokens and issues short-lived access tokens, so that a run of a
// few seconds spans several expiries. At the end it prints what the server
// saw: one exchange of the grant code, and one refresh per token generation
// however many workers there are.
//
//	go run ./examples/workers --workers 5 --duration 10s
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
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
		fmt.Fprintln(os.Stderr, "workers:", err)
		os.Exit(1)
	}
}

// run is main without the process around it, so that a test can call it.
// "workers worker …" is the role of a child process; anything else starts
// the fleet.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "worker" {
		return runWorker(ctx, args[1:], stdout)
	}
	return runFleet(ctx, args, stdout)
}

// Environment variables that carry the secrets to the workers: values in
// the environment do not show in the process list, command-line arguments
// do.
const (
	envClientSecret = "WORKERS_CLIENT_SECRET"
	envGrantCode    = "WORKERS_GRANT_CODE"
)

// errBadRedisURL replaces go-redis's parse error, which can quote the URL,
// password included.
var errBadRedisURL = errors.New("--redis: not a valid redis:// or rediss:// URL")

// report is the one JSON line a worker prints when it is done.
type report struct {
	Worker       int `json:"worker"`
	OK           int `json:"ok"`
	Unauthorized int `json:"unauthorized"`
	Failed       int `json:"failed"`
}

// runFleet starts the Redis, the OAuth server and the worker processes,
// waits for the workers and prints the tally.
func runFleet(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("workers", flag.ContinueOnError)
	fs.SetOutput(stdout)
	n := fs.Int("workers", 3, "number of worker processes")
	duration := fs.Duration("duration", 6*time.Second, "how long each worker calls the API")
	interval := fs.Duration("interval", 50*time.Millisecond, "pause between a worker's API calls")
	lifetime := fs.Duration("lifetime", 2*time.Second, "access token lifetime")
	window := fs.Duration("window", 500*time.Millisecond, "renew a token this long before it expires")
	redisURL := fs.String("redis", "", "Redis URL; empty runs an embedded miniredis")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *window >= *lifetime {
		return errors.New("need --workers ≥ 1 and --window shorter than --lifetime")
	}

	// Redis. The workers connect to it over TCP, so miniredis listens on a
	// loopback port like a real server.
	if *redisURL != "" {
		if _, err := redis.ParseURL(*redisURL); err != nil {
			return errBadRedisURL
		}
	} else {
		mr, err := miniredis.Run()
		if err != nil {
			return err
		}
		defer mr.Close()
		*redisURL = "redis://" + mr.Addr()
	}
	// A namespace of this run's own keeps it apart from anything else in
	// the same Redis; the parent deletes its tokens at the end.
	ns := "workers-example-" + randomHex(4)

	// The OAuth server, and a grant code for the user, as if they had just
	// logged in. All workers get the same single-use code.
	srv, base, stopServer, err := startOAuthServer(*lifetime)
	if err != nil {
		return err
	}
	defer stopServer()
	const user = "alice@example.com"
	code := srv.IssueGrant(oauthtest.DefaultClientID, user)

	exe, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d workers for %v; access tokens live %v and are renewed in their last %v\n",
		*n, *duration, *lifetime, *window)

	type child struct {
		cmd            *exec.Cmd
		stdout, stderr bytes.Buffer
	}
	children := make([]*child, *n)
	start := time.Now()
	for i := range children {
		c := &child{}
		c.cmd = exec.CommandContext(ctx, exe, "worker",
			"--id", strconv.Itoa(i+1),
			"--redis", *redisURL,
			"--namespace", ns,
			"--token-url", srv.TokenURL(),
			"--api-url", base+oauthtest.WhoAmIPath,
			"--client-id", oauthtest.DefaultClientID,
			"--user", user,
			"--duration", duration.String(),
			"--interval", interval.String(),
			"--window", window.String(),
		)
		c.cmd.Env = append(os.Environ(),
			envClientSecret+"="+oauthtest.DefaultClientSecret,
			envGrantCode+"="+code)
		c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
		if err := c.cmd.Start(); err != nil {
			return fmt.Errorf("start worker %d: %w", i+1, err)
		}
		children[i] = c
	}

	var total report
	var failures []string
	for i, c := range children {
		if err := c.cmd.Wait(); err != nil {
			failures = append(failures, fmt.Sprintf("worker %d: %v: %s", i+1, err, strings.TrimSpace(c.stderr.String())))
			continue
		}
		var rep report
		if err := json.Unmarshal(lastLine(c.stdout.Bytes()), &rep); err != nil {
			failures = append(failures, fmt.Sprintf("worker %d: no report: %v", i+1, err))
			continue
		}
		fmt.Fprintf(stdout, "worker %d: %d calls ok, %d unauthorized, %d failed\n", rep.Worker, rep.OK, rep.Unauthorized, rep.Failed)
		total.OK += rep.OK
		total.Unauthorized += rep.Unauthorized
		total.Failed += rep.Failed
	}
	elapsed := time.Since(start)

	// Clean up this run's tokens; its lock and note keys expire on their own.
	if opt, err := redis.ParseURL(*redisURL); err == nil {
		rdb := redis.NewClient(opt)
		_ = redisstore.New(rdb, redisstore.WithNamespace(ns)).DeleteTokens(context.WithoutCancel(ctx))
		_ = rdb.Close()
	}
	if len(failures) > 0 {
		return errors.New(strings.Join(failures, "\n"))
	}

	// A token generation lasts about lifetime-window before it is renewed,
	// and renewals happen only while the workers make calls.
	st := srv.Stats()
	expiries := int(*duration / *lifetime)
	expected := int(math.Ceil(float64(*duration)/float64(*lifetime-*window))) - 1
	fmt.Fprintf(stdout, "API calls: ok=%d unauthorized=%d failed=%d (in %v)\n",
		total.OK, total.Unauthorized, total.Failed, elapsed.Round(100*time.Millisecond))
	fmt.Fprintf(stdout, "token server: exchanges=%d refreshes=%d reuses=%d rejected=%d\n",
		st.Exchanges, st.Refreshes, st.Reuses, st.InvalidGrants)
	fmt.Fprintf(stdout, "expiries: a %v token runs out %d times in %v; renewed %v early it needs about %d refreshes for the whole fleet, where %d uncoordinated workers would make about %d\n",
		*lifetime, expiries, *duration, *window, expected, *n, expected**n)
	return nil
}

// runWorker is one worker process: it gets the shared token and calls the
// API until its time is up, then prints a report.
func runWorker(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stdout)
	id := fs.Int("id", 0, "worker number, for the report")
	redisURL := fs.String("redis", "", "Redis URL")
	ns := fs.String("namespace", "tokencache", "key namespace")
	tokenURL := fs.String("token-url", "", "token endpoint")
	apiURL := fs.String("api-url", "", "URL to GET")
	clientID := fs.String("client-id", "", "OAuth client ID")
	user := fs.String("user", "", "user signature")
	duration := fs.Duration("duration", 5*time.Second, "how long to call the API")
	interval := fs.Duration("interval", 50*time.Millisecond, "pause between calls")
	window := fs.Duration("window", refresher.DefaultRefreshWindow, "refresh window")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opt, err := redis.ParseURL(*redisURL)
	if err != nil {
		return errBadRedisURL
	}
	opt.ContextTimeoutEnabled = true
	rdb := redis.NewClient(opt)
	defer rdb.Close()

	// What every process of a real fleet does once at start-up.
	store := redisstore.New(rdb, redisstore.WithNamespace(*ns))
	locker := lock.New(rdb, lock.WithNamespace(*ns))
	defer locker.Close()
	r := refresher.New(store, locker, refresher.NewHTTPEndpoint(*tokenURL), refresher.WithRefreshWindow(*window))
	defer r.Close()

	// All workers start at once with the same grant code. One of them
	// exchanges it; the rest wait for that exchange and read its token.
	tok, err := r.Token(ctx, tokencache.Token{
		UserName:     *user,
		ClientID:     *clientID,
		ClientSecret: os.Getenv(envClientSecret),
		GrantToken:   os.Getenv(envGrantCode),
		RedirectURL:  oauthtest.DefaultRedirectURL,
	})
	if err != nil {
		return err
	}
	client := oauth2.NewClient(ctx, r.TokenSource(ctx, tokencache.Token{ID: tok.ID}))

	rep := report{Worker: *id}
	for end := time.Now().Add(*duration); time.Now().Before(end); {
		switch status, err := get(ctx, client, *apiURL); {
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			rep.Failed++
		case status == http.StatusOK:
			rep.OK++
		case status == http.StatusUnauthorized:
			rep.Unauthorized++
		default:
			rep.Failed++
		}
		select {
		case <-time.After(*interval):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return json.NewEncoder(stdout).Encode(rep)
}

// get GETs url with client and returns the status code.
func get(ctx context.Context, client *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body) // so the connection is reused
	resp.Body.Close()
	return resp.StatusCode, nil
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

// lastLine returns the last non-empty line of b.
func lastLine(b []byte) []byte {
	var last []byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			last = append(last[:0], line...)
		}
	}
	return last
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
