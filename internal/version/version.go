// Package version reports what build of tokencache is running, from the
// build information the Go toolchain stamps into every binary: the module
// version, and the VCS revision, its time and whether the tree was modified.
package version

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tokencache/tokencache/internal/cli"
)

// Info is what a binary knows about its build.
type Info struct {
	Version   string `json:"version"`            // module version: v1.2.3, a pseudo-version, or "(devel)"
	Revision  string `json:"revision,omitempty"` // VCS commit
	Time      string `json:"time,omitempty"`     // commit time, RFC 3339
	Modified  bool   `json:"modified"`           // the tree had uncommitted changes
	GoVersion string `json:"go"`
	Platform  string `json:"platform"`
}

// Read returns the running binary's Info.
func Read() Info {
	bi, _ := debug.ReadBuildInfo()
	return fromBuildInfo(bi)
}

// fromBuildInfo reads bi (nil when the binary has none).
func fromBuildInfo(bi *debug.BuildInfo) Info {
	info := Info{Version: "(devel)", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		return info
	}
	if v := bi.Main.Version; v != "" {
		info.Version = v
	}
	info.GoVersion = bi.GoVersion
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// String is one line: "tokencache v1.2.3 (commit 0123abcd, 2026-12-01T21:00:00Z, modified) go1.26 linux/amd64".
func (i Info) String() string {
	var parts []string
	if i.Revision != "" {
		rev := i.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		parts = append(parts, "commit "+rev)
	}
	if i.Time != "" {
		parts = append(parts, i.Time)
	}
	if i.Modified {
		parts = append(parts, "modified")
	}
	s := "tokencache " + i.Version
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s + " " + i.GoVersion + " " + i.Platform
}

// Options are the settings of the version command.
type Options struct {
	F    *cli.Factory
	JSON bool
	Info func() Info // Read unless a test replaces it
}

// NewCmdVersion returns the version command.
func NewCmdVersion(f *cli.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	o := &Options{F: f, Info: Read}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, VCS revision and build time of this binary",
		Long: `Print the module version and the VCS revision and time this binary was built
from (as "tokencache --version" does), read from the build information Go
stamps into the binary. A build from a modified tree says "modified"; a build
without VCS information (go build -buildvcs=false) shows the version only.`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return Run(o)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print the build information as JSON")
	return cmd
}

// Run prints the version.
func Run(o *Options) error {
	info := o.Info()
	if o.JSON {
		enc := json.NewEncoder(o.F.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	_, err := fmt.Fprintln(o.F.IO.Out, info.String())
	return err
}
