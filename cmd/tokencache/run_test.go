package main

import (
	"context"
	"io"

	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/internal/root"
)

// run runs a command line as main does, with the given streams, and returns
// its exit status: the end-to-end tests of this package drive the whole
// command tree through it.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return root.Run(ctx, args, &cli.IOStreams{In: stdin, Out: stdout, ErrOut: stderr})
}
