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
)

// TestVersionOfABuiltBinary builds the command from a clean clone of this
// commit, as a release build would, and checks that version and --version
// report the commit it was built from, and that the binary's exit codes
// are the documented ones.
func TestVersionOfABuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git")
	}
	head, err := exec.Command(git, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skip("not in a git checkout")
	}
	root, err := exec.Command(git, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatal(err)
	}
	// A clone: a worktree's .git is a file, which Go's VCS stamping does
	// not follow, and a clone holds no uncommitted change.
	dir := filepath.Join(t.TempDir(), "src")
	if out, err := exec.Command(git, "clone", "-q", "--no-hardlinks", strings.TrimSpace(string(root)), dir).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	if out, err := exec.Command(git, "-C", dir, "checkout", "-q", strings.TrimSpace(string(head))).CombinedOutput(); err != nil {
		t.Fatalf("git checkout: %v\n%s", err, out)
	}
	bin := filepath.Join(t.TempDir(), "tokencache")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, "./cmd/tokencache")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
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
	if info.Revision != strings.TrimSpace(string(head)) || info.Time == "" || info.Modified || info.Version == "" {
		t.Errorf("version --json = %+v, want revision %s, a time, unmodified", info, head)
	}
	line, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	flag, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(line) != string(flag) || !strings.Contains(string(line), "commit "+info.Revision[:12]) {
		t.Errorf("version %q, --version %q: want the same line naming commit %s", line, flag, info.Revision[:12])
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
