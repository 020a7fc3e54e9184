package version

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/tokencache/tokencache/internal/cli"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/tokencache/tokencache", Version: "v0.0.0-20261201221500-0123456789ab+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-12-01T22:15:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	info := fromBuildInfo(bi)
	want := Info{Version: "v0.0.0-20261201221500-0123456789ab+dirty", Revision: "0123456789abcdef0123456789abcdef01234567",
		Time: "2026-12-01T22:15:00Z", Modified: true, GoVersion: "go1.26.8", Platform: info.Platform}
	if info != want {
		t.Errorf("fromBuildInfo = %+v\nwant %+v", info, want)
	}
	if got, w := info.String(), "tokencache v0.0.0-20261201221500-0123456789ab+dirty (commit 0123456789ab, 2026-12-01T22:15:00Z, modified) go1.26.8 "+info.Platform; got != w {
		t.Errorf("String = %q\nwant %q", got, w)
	}
	if got := fromBuildInfo(nil); got.Version != "(devel)" || got.Revision != "" || strings.Contains(got.String(), "commit") {
		t.Errorf("without build info: %+v", got)
	}
}

func TestRunPrintsTheInfo(t *testing.T) {
	var out bytes.Buffer
	f := cli.New(&cli.IOStreams{Out: &out})
	info := Info{Version: "v1.2.3", Revision: "abc", GoVersion: "go1.26", Platform: "linux/amd64"}
	if err := Run(&Options{F: f, JSON: true, Info: func() Info { return info }}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"version": "v1.2.3"`) || !strings.Contains(out.String(), `"revision": "abc"`) {
		t.Errorf("version --json printed %s", out.String())
	}
}
