package journal

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestLockFileWaitsForForkedCopy: a child forked while a lock was held
// keeps a copy of its descriptor (here past exec, as ExtraFiles does; in
// production between fork and exec). After the holder lets go, the lock is
// still taken for as long as the child lives, and its recorded holder is a
// live process (this one). LockFile must wait for it, not refuse at once.
func TestLockFileWaitsForForkedCopy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "LOCK")
	f, err := LockFile(path, "first")
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command("sleep", "0.3")
	child.ExtraFiles = []*os.File{f} // the copy a fork leaves
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close() // the holder lets go; the child's copy keeps the flock
	done := make(chan error, 1)
	go func() { done <- child.Wait() }()

	g, err := LockFile(path, "second")
	if err != nil {
		t.Fatalf("the lock was refused while only a forked copy held it: %v", err)
	}
	g.Close()
	<-done
}

// TestLockFileRefusesLiveHolder: a lock that stays taken is refused after
// the bounded wait, naming the holder.
func TestLockFileRefusesLiveHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "LOCK")
	f, err := LockFile(path, "run backup")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = LockFile(path, "run backup")
	var le *LockedError
	if !errors.As(err, &le) || le.PID != os.Getpid() || le.Owner != "run backup" {
		t.Fatalf("got %v, want a LockedError naming pid %d (run backup)", err, os.Getpid())
	}
}
