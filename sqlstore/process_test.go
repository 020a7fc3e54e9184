package sqlstore_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tokencache/tokencache"
	"github.com/tokencache/tokencache/sqlstore"
)

// envChild makes the test binary a child of TestProcessesShareOneSQLiteFile:
// it holds the DSN and table the child saves into.
const envChild = "SQLSTORE_TEST_CHILD"

// TestProcessesShareOneSQLiteFile runs several processes that open one
// SQLite file at once (migrating it) and save the same identity many times:
// the file's locks keep one token, with one revision per save.
func TestProcessesShareOneSQLiteFile(t *testing.T) {
	if os.Getenv(envChild) != "" {
		t.Skip("in a child process")
	}
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "shared.db")
	const children, saves = 3, 20
	cmds := make([]*exec.Cmd, children)
	for i := range cmds {
		cmds[i] = exec.Command(os.Args[0], "-test.run=^TestChildSaves$", "-test.count=1")
		cmds[i].Env = append(os.Environ(), envChild+"="+dsn, "SQLSTORE_TEST_SAVES="+strconv.Itoa(saves), fmt.Sprint("SQLSTORE_TEST_CHILD_N=", i))
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("child %d: %v", i, err)
		}
	}
	s, err := sqlstore.Open(bg(), dsn, sqlstore.WithTable("shared"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	all, err := s.GetTokens(bg())
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].Version != children*saves {
		t.Errorf("after %d processes saved one identity %d times each: %d tokens, first at version %v; want one at %d",
			children, saves, len(all), versionOf(all), children*saves)
	}
}

func versionOf(toks []tokencache.Token) any {
	if len(toks) == 0 {
		return "none"
	}
	return toks[0].Version
}

// TestChildSaves is the child's half of TestProcessesShareOneSQLiteFile.
func TestChildSaves(t *testing.T) {
	dsn := os.Getenv(envChild)
	if dsn == "" {
		t.Skip("only as a child of TestProcessesShareOneSQLiteFile")
	}
	saves, _ := strconv.Atoi(os.Getenv("SQLSTORE_TEST_SAVES"))
	s, err := sqlstore.Open(bg(), dsn, sqlstore.WithTable("shared"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range saves {
		tok := tokencache.Token{UserName: "shared-user", ClientID: "c", RefreshToken: fmt.Sprint("r-", os.Getenv("SQLSTORE_TEST_CHILD_N"), "-", i)}
		if err := s.SaveToken(bg(), &tok); err != nil {
			t.Fatal(err)
		}
	}
}
