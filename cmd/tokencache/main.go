// Command tokencache runs the tokencache demo and administers the tokens a
// fleet shares in Redis.
//
//	tokencache demo                       # the fleet demo, on an embedded Redis
//	tokencache list --redis redis://…     # the tokens of a namespace
//
// Run "tokencache help" for every command.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// app holds what every command shares: the global flags and the streams,
// which tests replace.
type app struct {
	redisURL  string // --redis, or TOKENCACHE_REDIS_URL
	namespace string // --namespace

	stdin          io.Reader
	stdout, stderr io.Writer
}

// commands lists the constructors of the subcommands; each file of this
// package adds its own in an init function, so that commands stay in files
// of their own.
var commands []func(*app) *cobra.Command

func register(newCmd func(*app) *cobra.Command) { commands = append(commands, newCmd) }

// Environment variables the command reads.
const (
	envRedisURL  = "TOKENCACHE_REDIS_URL"
	envNamespace = "TOKENCACHE_NAMESPACE"
)

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:           "tokencache",
		Short:         "Share OAuth tokens across a fleet of workers through Redis",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	flags := root.PersistentFlags()
	flags.StringVar(&a.redisURL, "redis", envOr(envRedisURL, "redis://127.0.0.1:6379/0"),
		"Redis URL: redis:// or rediss:// (TLS), with user:password@ for ACLs (env "+envRedisURL+")")
	// The default may come from the environment with a password in it: help
	// shows it masked.
	flags.Lookup("redis").DefValue = urlWithoutPassword(a.redisURL)
	flags.StringVar(&a.namespace, "namespace", envOr(envNamespace, "tokencache"),
		"key namespace of the token store (env "+envNamespace+")")
	for _, newCmd := range commands {
		root.AddCommand(newCmd(a))
	}
	return root
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// run executes the command line args and returns the exit code: 0 on
// success, 1 on failure, with a one-line error on stderr.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRootCmd(a)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "tokencache:", err)
		return 1
	}
	return 0
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
