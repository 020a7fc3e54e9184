package oauthserver

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteSecretFile(t *testing.T) {
	name := filepath.Join(t.TempDir(), "f")
	if err := writeSecretFile(name, "x\n"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("mode %v: readable by others", fi.Mode())
	}
	if b, err := os.ReadFile(name); err != nil || string(b) != "x\n" {
		t.Errorf("content %q, %v", b, err)
	}
}
