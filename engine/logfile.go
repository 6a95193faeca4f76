package engine

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/picoflow/picoflow/journal"
)

// Attempt log files without an inode per attempt.
//
// Creating a file allocates an inode, and on some file systems that is
// most of what a short task costs PicoFlow: on an ext4 without a journal,
// as many boards' root file systems are, the allocator looks for an inode
// not recently deleted, 0.7–3 ms a file on the bench machine, 70 % of the
// engine's CPU for 1,000 `true` tasks. Most tasks print nothing. So the
// empty log of an attempt that succeeded is not kept: a later attempt of
// the run renames it to its own log path and writes into it. A rename
// changes directory entries; it allocates nothing.
//
// The task's processes still write straight into a regular file (no pipe
// through PicoFlow: a killed picoflow does not SIGPIPE them, `logs
// --follow` reads the file while they run, a daemon a task started with
// setsid keeps its output; see ARCHITECTURE.md, "Task logs"). A file can
// be reused only when no process has it open: a daemon the task left
// behind may still write to it, `picoflow logs --follow` may still read
// it, and a child forked by another attempt holds every descriptor of
// PicoFlow until its exec closes them. The kernel says so exactly: a
// write lease (F_SETLEASE, F_WRLCK) is granted only on the sole open file
// description of a file, and while it lasts nobody can open the file (an
// open waits for it). The attempt that reuses a log opens it at its old
// path and takes the lease; granted, it checks the file is still empty,
// renames it to its own path and lets go of the lease (claim). If the
// lease is refused, or the file is no longer empty, it stays where it is
// and the attempt creates its own; the refused file is tried again later
// (a forked child lets go of it within microseconds), up to maxReuseTries
// times. Where leases are not supported (NFS,
// fs.leases-enable = 0, other systems than Linux) the run stops trying and
// creates a file per attempt, as before.
//
// So an attempt that succeeded and wrote nothing has no log file; its run
// directory exists. Failed, timed-out and interrupted attempts keep
// theirs, even empty, so that the log path printed with a failure always
// exists; so do the last attempts of a run (their files stay empty).

// maxReuseTries bounds how often a refused free log is tried again.
const maxReuseTries = 3

// logFiles is a run's pool of empty logs of succeeded attempts, oldest
// first (the oldest is the least likely to be held still).
type logFiles struct {
	mu   sync.Mutex
	free []freeLog
	off  bool // leases do not work here: create every log
}

type freeLog struct {
	path  string
	tries int
}

// open returns the log file of an attempt, at path, open for reading and
// writing, empty: a free log renamed to path, else a new file.
func (p *logFiles) open(path string) (*os.File, error) {
	if l, ok := p.take(); ok {
		if f := p.reuse(l, path); f != nil {
			return f, nil
		}
	}
	return openLog(path, syscall.O_CREAT|syscall.O_TRUNC)
}

// openLog opens a log file for reading and writing. It is os.OpenFile
// without the attempt to add a regular file to the runtime's poller (an
// epoll_ctl that fails, once per attempt).
func openLog(path string, flag int) (*os.File, error) {
	fd, err := openFD(path, flag)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

func openFD(path string, flag int) (int, error) {
	for {
		fd, err := syscall.Open(path, flag|syscall.O_RDWR|syscall.O_CLOEXEC, 0o640)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

func (p *logFiles) take() (freeLog, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) == 0 || p.off {
		return freeLog{}, false
	}
	l := p.free[0]
	p.free = p.free[1:]
	return l, true
}

func (p *logFiles) put(l freeLog) {
	p.mu.Lock()
	if !p.off {
		p.free = append(p.free, l)
	}
	p.mu.Unlock()
}

// reuse renames the free log l to path and returns it open, or nil when
// it cannot be reused now (it is then still at its own path, or gone) and
// path is free for a new file.
func (p *logFiles) reuse(l freeLog, path string) *os.File {
	f, refused := p.claim(l, path)
	if refused {
		// A child forked while the attempt that wrote the file still had it
		// open holds that attempt's description until its exec: ask once
		// more when the forks in flight are past their exec (ForkLock held
		// for reading).
		syscall.ForkLock.RLock()
		f, refused = p.claim(l, path)
		syscall.ForkLock.RUnlock()
	}
	if refused && l.tries+1 < maxReuseTries {
		p.put(freeLog{l.path, l.tries + 1})
	}
	return f
}

// claim opens the free log l at its own path and takes a write lease on
// it. Granted, nobody else has the file open (no daemon the attempt that
// wrote it left behind, no `logs --follow`, no child forked while that
// attempt had it open), and nobody can open it until the lease ends: an
// open waits for it. Still empty, the file is renamed to path under the
// lease, which then ends, and is returned open. So it never stands at
// path while anybody else may hold it: a kill -9 anywhere leaves it at
// l.path, still free, or at path, empty and held by nobody. refused: the
// lease was refused while the file was empty, which may pass later.
func (p *logFiles) claim(l freeLog, path string) (f *os.File, refused bool) {
	fd, err := openFD(l.path, 0)
	if err != nil {
		return nil, false // removed by hand: create one
	}
	var st syscall.Stat_t
	if err := takeLease(uintptr(fd)); err != nil {
		if !errors.Is(err, syscall.EAGAIN) { // no leases here
			p.mu.Lock()
			p.off = true
			p.mu.Unlock()
		}
		refused = errors.Is(err, syscall.EAGAIN) && syscall.Fstat(fd, &st) == nil && st.Size == 0
		syscall.Close(fd)
		return nil, refused
	}
	if syscall.Fstat(fd, &st) != nil || st.Size != 0 || rename(l.path, path) != nil {
		dropLease(uintptr(fd)) // a child forking now would keep it with fd's description
		syscall.Close(fd)
		return nil, false
	}
	dropLease(uintptr(fd))
	return os.NewFile(uintptr(fd), path), false
}

// rename is os.Rename without its Lstat of newpath (which only refuses to
// replace a directory; rename(2) refuses a file over a directory too).
func rename(oldpath, newpath string) error {
	for {
		err := syscall.Rename(oldpath, newpath)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
		}
		return nil
	}
}

// done closes an attempt's log; the log of an attempt that succeeded and
// wrote nothing becomes free for a later attempt of the run.
func (p *logFiles) done(f *os.File, succeeded bool) {
	free := false
	if succeeded && leasesWork {
		fi, err := f.Stat()
		free = err == nil && fi.Size() == 0
	}
	f.Close()
	if free {
		p.put(freeLog{path: f.Name()})
	}
}

// takeLease is lease; tests replace it to play a file system without leases.
var takeLease = lease

// LogNotKept reports whether an attempt whose log file is missing has none
// because it succeeded without writing anything (status is its journal
// status): its run's log directory is still there. Otherwise the file was
// removed (picoflow gc removes a run's whole log directory).
func LogNotKept(logPath, status string) bool {
	if status != journal.StatusSuccess || logPath == "" {
		return false
	}
	if _, err := os.Lstat(logPath); !errors.Is(err, os.ErrNotExist) {
		return false
	}
	fi, err := os.Stat(filepath.Dir(logPath))
	return err == nil && fi.IsDir()
}

// LogNeverKept reports whether the missing log of an attempt with status was
// never kept rather than removed: the attempt was interrupted (or is
// running in a run no process runs), where picoflow may have been killed
// between journaling its start and opening its file, or between its
// success (its empty file went to another attempt) and journaling it; and
// its run's directory is there (gc removes whole run directories). A
// failed attempt's file always exists once it started (cli's logs and
// the web UI say so instead of blaming gc).
func LogNeverKept(logPath, status string) bool {
	if status != journal.StatusInterrupted && status != "running" {
		return false
	}
	fi, err := os.Stat(filepath.Dir(logPath))
	return err == nil && fi.IsDir()
}
