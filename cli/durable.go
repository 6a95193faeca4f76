package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// mkdirDurable creates dir and its missing parents, like os.MkdirAll, and
// fsyncs the parent of every directory it creates: a new directory's name
// is only on disk once its parent is fsynced, and a home whose name was
// lost in a power cut takes everything fsynced inside it along.
func mkdirDurable(dir string, perm os.FileMode) error {
	dir = filepath.Clean(dir)
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("mkdir %s: not a directory", dir)
		}
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirDurable(parent, perm); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, perm); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // another process made it: it fsyncs the parent
		}
		return err
	}
	return syncDir(filepath.Dir(dir))
}

// syncDir fsyncs a directory, so that the entries created, renamed or
// removed in it survive a power cut.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
