package journal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// MkdirDurable creates dir and its missing parents, like os.MkdirAll, and
// fsyncs the parent of every directory it creates: a new directory's name
// is on disk only once its parent is fsynced, and a journal directory
// whose name is lost in a power cut takes every fsynced segment along.
func MkdirDurable(dir string, perm os.FileMode) error {
	dir = filepath.Clean(dir)
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("mkdir %s: not a directory", dir)
		}
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := MkdirDurable(parent, perm); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, perm); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	// Made meanwhile by another process (ErrExist)? It may not have
	// fsynced the parent yet, and what this one writes in dir must not
	// wait for it: fsync the parent all the same.
	return syncDir(filepath.Dir(dir))
}
