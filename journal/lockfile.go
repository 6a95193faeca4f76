package journal

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// LockedError is returned when another process holds a lock file.
type LockedError struct {
	Path  string
	What  string // what the lock guards, for the message; Path when empty
	PID   int    // the holder's PID as it recorded it, 0 if unknown
	Owner string // what the holder said it is doing
}

// Holder names the holder for a message: "pid 812 (run backup)", or
// "another process" when the lock file did not say.
func (e *LockedError) Holder() string {
	if e.PID <= 0 {
		return "another process"
	}
	who := "pid " + strconv.Itoa(e.PID)
	if e.Owner != "" {
		who += " (" + e.Owner + ")"
	}
	return who
}

func (e *LockedError) Error() string {
	who := e.Holder()
	if e.What != "" {
		return fmt.Sprintf("%s is in use by %s", e.What, who)
	}
	return fmt.Sprintf("%s is locked by %s", e.Path, who)
}

// busyWait bounds how long LockFile waits for a lock that is taken. A
// holder that is alive may be about to release it, and a child forked by
// any process of the same program (this one included) holds a copy of the
// descriptor between fork and exec: refusing at once would turn that
// moment into a spurious "in use" error.
const busyWait = 1500 * time.Millisecond

// LockFile takes an exclusive flock on path (creating it) and records
// "PID NOTE" in it. The lock lives as long as the returned file is open and
// dies with the process. A lock that stays taken for busyWait gets
// *LockedError naming the holder. The file is opened close-on-exec (as
// os.OpenFile always does), so no task inherits it past exec.
func LockFile(path, note string) (*os.File, error) {
	f, _, err := lockFile(path, note)
	return f, err
}

// lockFile is LockFile that also reports whether the file existed and was
// empty when the lock was taken: its last holder released it with
// releaseClean.
func lockFile(path, note string) (f *os.File, clean bool, err error) {
	f, err = os.OpenFile(path, os.O_RDWR|syscall.O_CLOEXEC, 0)
	existed := err == nil
	if errors.Is(err, os.ErrNotExist) {
		f, err = os.OpenFile(path, os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC, 0o640)
	}
	if err != nil {
		return nil, false, fmt.Errorf("open lock %s: %w", path, err)
	}
	deadline := time.Now().Add(busyWait)
	for pause := time.Millisecond; ; pause = min(2*pause, 50*time.Millisecond) {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, false, fmt.Errorf("lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, false, LockHolder(path)
		}
		time.Sleep(pause) // a bounded wait for a holder that is letting go
	}
	if fi, err := f.Stat(); err == nil {
		clean = existed && fi.Size() == 0
	}
	// Record the holder for refused processes; not fsynced, it only informs.
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "%d %s\n", os.Getpid(), note)
	}
	return f, clean, nil
}

// releaseClean empties a lock file taken with lockFile before it is
// released: the next holder learns that this one finished its work (not
// fsynced: a stale note only makes the next holder more careful).
func releaseClean(f *os.File) { _ = f.Truncate(0) }

// LockHolder reads who holds the lock at path, as the holder recorded
// itself (PID 0 when the file does not say).
func LockHolder(path string) *LockedError {
	le := &LockedError{Path: path}
	if b, err := os.ReadFile(path); err == nil {
		pid, owner, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
		le.PID, _ = strconv.Atoi(pid)
		le.Owner = owner
	}
	return le
}

// SyncDir fsyncs a directory, so that the names created, renamed or removed
// in it are durable.
func SyncDir(dir string) error { return syncDir(dir) }
