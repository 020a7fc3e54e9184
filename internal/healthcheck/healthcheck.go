// Package healthcheck is the healthcheck command: a probe for container
// health checks, of an HTTP health endpoint or of the store itself.
package healthcheck

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache/internal/cli"
)

// Options are the settings of healthcheck.
type Options struct {
	F       *cli.Factory
	URL     string
	Timeout time.Duration
	Quiet   bool
}

// NewCmdHealthcheck returns the healthcheck command; runF replaces Run in tests.
func NewCmdHealthcheck(f *cli.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	o := &Options{F: f}
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Probe a worker's or oauth-server's /healthz, or the store, for container health checks",
		Long: `With --url, GET that URL (a worker's --metrics-addr /healthz, or oauth-server's
/healthz) and exit 0 when it answers 200, 1 when it answers anything else, 4
when it cannot be reached. Without --url, open the store of the settings (PING
Redis, and the durable record with --durable) and exit 0 or 4.

It needs no shell or HTTP client in the image, so distroless containers can
use it: healthcheck: test: ["CMD", "/tokencache", "healthcheck", "--url", "http://127.0.0.1:9464/healthz"].`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Timeout <= 0 {
				return cli.UsageErrorf("--timeout %v: want a positive duration", o.Timeout)
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return Run(cmd.Context(), o)
		},
	}
	f.Settings.AddStoreFlags(cmd)
	cmd.Flags().StringVar(&o.URL, "url", "", "HTTP health endpoint to probe instead of the store")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 3*time.Second, "how long to wait for an answer")
	cmd.Flags().BoolVarP(&o.Quiet, "quiet", "q", false, "print nothing on success")
	return cmd
}

// Run probes.
func Run(ctx context.Context, o *Options) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if o.URL == "" {
		return o.F.WithStore(ctx, func(c *cli.Conn) error {
			if !o.Quiet {
				fmt.Fprintf(o.F.IO.Out, "ok: Redis at %s answers\n", c.Endpoint.Where)
			}
			return nil
		})
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.URL, nil)
	if err != nil {
		return cli.UsageErrorf("--url: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return &cli.UnreachableError{Err: fmt.Errorf("%s does not answer: %w", o.URL, err)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	msg := strings.Join(strings.Fields(string(body)), " ")
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s: %s", o.URL, resp.Status, msg)
	}
	if !o.Quiet {
		fmt.Fprintf(o.F.IO.Out, "ok: %s answered %s\n", o.URL, resp.Status)
	}
	return nil
}
