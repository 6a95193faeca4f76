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

func (e *LockedError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = "pid " + strconv.Itoa(e.PID)
		if e.Owner != "" {
			who += " (" + e.Owner + ")"
		}
	}
	if e.What != "" {
		return fmt.Sprintf("%s is in use by %s", e.What, who)
	}
	return fmt.Sprintf("%s is locked by %s", e.Path, who)
}

// deadHolderWait bounds how long LockFile waits for a lock whose recorded
// holder has exited: a child it forked may still hold the descriptor for
// the moment between fork and exec.
const deadHolderWait = 3 * time.Second

// LockFile takes an exclusive flock on path (creating it) and records
// "PID NOTE" in it. The lock lives as long as the returned file is open and
// dies with the process. A live holder gets *LockedError at once.
func LockFile(path, note string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	deadline := time.Now().Add(deadHolderWait)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		le := &LockedError{Path: path}
		if b, rerr := os.ReadFile(path); rerr == nil {
			pid, owner, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
			le.PID, _ = strconv.Atoi(pid)
			le.Owner = owner
		}
		if le.PID <= 0 || syscall.Kill(le.PID, 0) != syscall.ESRCH || time.Now().After(deadline) {
			f.Close()
			return nil, le
		}
		time.Sleep(20 * time.Millisecond) // the holder is gone; its lock is about to be
	}
	// Record the holder for refused processes; not fsynced, it only informs.
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "%d %s\n", os.Getpid(), note)
	}
	return f, nil
}
