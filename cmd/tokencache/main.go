// Command tokencache administers the tokens a fleet shares in Redis, hands
// a valid access token to scripts, and runs the demo, a worker and a local
// OAuth server.
//
//	tokencache demo                       # the fleet demo, on an embedded Redis
//	tokencache list --redis redis://…     # the tokens of a namespace
//
// Run "tokencache help" for every command. The commands live in the
// packages under internal/; internal/root registers them.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/internal/root"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := root.Run(ctx, os.Args[1:], cli.System())
	stop()
	os.Exit(code)
}
