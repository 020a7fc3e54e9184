package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokencache/tokencache/internal/cli"
	"github.com/tokencache/tokencache/internal/redistest"
)

// TestVersionOfABuiltBinary builds the command as a release build would
// (go build -buildvcs=true) and checks that version and --version report
// the commit it was built from, and that the binary's exit codes are the
// documented ones. In a git worktree, whose .git is a file that Go's VCS
// stamping does not follow, the binary has no revision; the check of the
// revision then needs a plain clone (CI's).
func TestVersionOfABuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if os.Getenv(redistest.EnvURL) != "" || os.Getenv(redistest.EnvClusterAddrs) != "" {
		t.Skip("no Redis in this test: it runs in the miniredis pass only (make test)")
	}
	bin := filepath.Join(t.TempDir(), "tokencache")
	build := exec.Command("go", "build", "-buildvcs=auto", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var head string
	if git, err := exec.LookPath("git"); err == nil {
		if fi, err := os.Stat(filepath.Join(gitTop(t, git), ".git")); err == nil && fi.IsDir() {
			out, err := exec.Command(git, "rev-parse", "HEAD").Output()
			if err != nil {
				t.Fatal(err)
			}
			head = strings.TrimSpace(string(out))
		}
	}

	out, err := exec.Command(bin, "version", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Version  string `json:"version"`
		Revision string `json:"revision"`
		Time     string `json:"time"`
		Modified bool   `json:"modified"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("version --json: %v\n%s", err, out)
	}
	switch {
	case info.Version == "":
		t.Errorf("version --json = %+v: no version", info)
	case head != "" && (info.Revision != head || info.Time == ""):
		t.Errorf("version --json = %+v, want revision %s and its time", info, head)
	case head == "":
		t.Logf("not a plain git clone: the revision is not checked (version --json = %+v)", info)
	}
	line, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	flag, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(line) != string(flag) || !strings.HasPrefix(string(line), "tokencache "+info.Version) {
		t.Errorf("version %q, --version %q: want the same line with version %s", line, flag, info.Version)
	}
	if head != "" && !strings.Contains(string(line), "commit "+head[:12]) {
		t.Errorf("version %q does not name commit %s", line, head[:12])
	}

	// The exit codes of the binary itself.
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"version"}, cli.ExitOK},
		{[]string{"no-such-command"}, cli.ExitUsage},
		{[]string{"list", "--no-such-flag"}, cli.ExitUsage},
		{[]string{"list", "--redis", "redis://127.0.0.1:1"}, cli.ExitUnreachable},
	} {
		cmd := exec.Command(bin, c.args...)
		cmd.Env = append(os.Environ(), cli.EnvRedisURL+"=")
		err := cmd.Run()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.code {
			t.Errorf("tokencache %v exited %d, want %d", c.args, code, c.code)
		}
	}
}

func gitTop(t *testing.T, git string) string {
	t.Helper()
	out, err := exec.Command(git, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
