// Package root builds the tokencache command tree and runs it: every
// command is registered here, explicitly, and the exit status of every run
// comes from cli.ExitCode.
package root

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache/internal/admin"
	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/internal/demo"
	"github.com/tokencache/tokencache/internal/doctor"
	"github.com/tokencache/tokencache/internal/healthcheck"
	"github.com/tokencache/tokencache/internal/oauthserver"
	"github.com/tokencache/tokencache/internal/tokencmd"
	"github.com/tokencache/tokencache/internal/transfer"
	"github.com/tokencache/tokencache/internal/version"
	"github.com/tokencache/tokencache/internal/worker"
)

// NewCmdRoot returns the tokencache command with every subcommand.
func NewCmdRoot(f *cli.Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "tokencache",
		Short: "Share OAuth tokens across a fleet of workers through Redis",
		Long: `tokencache shares OAuth tokens across a fleet of workers through Redis and
refreshes each one once per expiry across the fleet. This command administers
the tokens, hands a valid access token to scripts, and runs the demo, a worker
and a local OAuth server.

Exit status: 0 success, 1 failure, 2 usage error, 3 not found, 4 Redis or the
durable record unreachable.`,
		Version:       version.Read().String(),
		SilenceUsage:  true,
		SilenceErrors: true,
		// Every setting not given as a flag comes from its environment variable.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return f.Settings.Resolve(cmd) },
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &cli.UsageError{Err: err} })
	root.AddGroup(
		&cobra.Group{ID: "tokens", Title: "Tokens:"},
		&cobra.Group{ID: "ops", Title: "Operations:"},
		&cobra.Group{ID: "run", Title: "Run:"},
	)
	add := func(group string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = group
			root.AddCommand(c)
		}
	}
	add("tokens",
		admin.NewCmdList(f, nil),
		admin.NewCmdShow(f, nil),
		tokencmd.NewCmdToken(f, nil),
		admin.NewCmdRevoke(f, nil),
		admin.NewCmdPurge(f, nil),
		admin.NewCmdStats(f, nil),
		transfer.NewCmdExport(f, nil),
		transfer.NewCmdImport(f, nil),
	)
	add("ops",
		admin.NewCmdReindex(f, nil),
		doctor.NewCmdDoctor(f, nil),
		healthcheck.NewCmdHealthcheck(f, nil),
		version.NewCmdVersion(f, nil),
	)
	add("run",
		demo.NewCmdDemo(f, nil),
		worker.NewCmdWorker(f, nil),
		oauthserver.NewCmdOAuthServer(f, nil),
	)
	root.AddCommand(demo.NewCmdDemoWorker(f, nil)) // hidden: started by demo
	root.SetHelpCommandGroupID("ops")
	root.SetCompletionCommandGroupID("ops")
	return root
}

// Run executes the command line args with the streams of io and returns the
// exit status. A failure prints one line, "tokencache: …", on stderr.
func Run(ctx context.Context, args []string, io *cli.IOStreams) int {
	return RunWith(ctx, cli.New(io), args)
}

// RunWith is Run with a Factory of the caller's (tests replace parts of it).
func RunWith(ctx context.Context, f *cli.Factory, args []string) int {
	root := NewCmdRoot(f)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return cli.ExitOK
	}
	err = classify(err)
	if !errors.Is(err, cli.ErrSilent) {
		fmt.Fprintln(f.IO.ErrOut, "tokencache:", err)
	}
	return cli.ExitCode(err)
}

// classify marks the errors cobra itself returns for a wrong command line
// (unknown command, wrong arguments to a command without its own check)
// as usage errors. Cobra has no types for them; their text is stable.
func classify(err error) error {
	var usage *cli.UsageError
	if errors.As(err, &usage) {
		return err
	}
	msg := err.Error()
	for _, prefix := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "invalid argument", "flag needs an argument"} {
		if strings.HasPrefix(msg, prefix) {
			return &cli.UsageError{Err: err}
		}
	}
	return err
}
