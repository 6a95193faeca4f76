package daemon

import (
	"errors"
	"fmt"
	"github.com/picoflow/picoflow/journal"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// LockedError is returned by Run when another daemon holds the home.
type LockedError struct {
	Path string
	PID  int // 0 when the lock file did not say
}

func (e *LockedError) Error() string {
	who := "another picoflow daemon"
	if e.PID > 0 {
		who += " (pid " + strconv.Itoa(e.PID) + ")"
	}
	return fmt.Sprintf("%s already runs for this home (lock %s); stop it first, or use picoflow trigger to start runs through it", who, e.Path)
}

// instanceLock is the single-instance lock: an exclusive flock on
// HOME/daemon.lock, which holds the PID of the holder. The kernel drops it
// when the process dies, so a stale file never blocks a restart.
type instanceLock struct{ f *os.File }

func acquireLock(path string) (*instanceLock, error) {
	f, err := journal.LockFile(path, "picoflow daemon")
	var le *journal.LockedError
	if errors.As(err, &le) {
		return nil, &LockedError{Path: path, PID: le.PID}
	}
	if err != nil {
		return nil, fmt.Errorf("daemon lock: %w", err)
	}
	return &instanceLock{f: f}, nil
}

func (l *instanceLock) release() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.Fields(string(b) + " 0")[0])
	return pid
}

// Holder returns the PID of the daemon holding the lock at path, -1 when a
// daemon holds it but the file names none, and 0 when no daemon runs. It
// probes with a shared lock, which it releases at once.
func Holder(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		return 0 // nobody holds it exclusively; closing releases ours
	}
	if pid := readPID(path); pid > 0 {
		return pid
	}
	return -1
}
