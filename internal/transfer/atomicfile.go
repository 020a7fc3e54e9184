package transfer

import (
	"io"
	"os"
	"path/filepath"
)

// writeFileAtomically writes path through a temporary file in the same
// directory, renamed over path once complete. The file is created 0600
// (os.CreateTemp's mode) and stays so when private; otherwise it becomes
// 0644.
func writeFileAtomically(path string, private bool, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err := write(f); err != nil {
		return err
	}
	if !private {
		if err := f.Chmod(0o644); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
