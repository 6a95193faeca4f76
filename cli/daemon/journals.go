package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// journals holds the journals of the workflows that have a live run in
// this daemon or an event to write, each open once however many of its
// runs are live. A journal is closed as soon as nothing needs it, so the
// daemon's memory does not grow with the number of workflows, and a
// workflow the daemon does not run is free for `picoflow run` in another
// process. Only the loop acquires and releases.
type journals struct {
	dir   func(workflow string) string
	openJ func(dir, workflow string, opts journal.Options) (*journal.Journal, error)
	opts  journal.Options

	mu     sync.Mutex // guards open, closed and frozen (the metrics writer reads them)
	open   map[string]*held
	closed journal.Stats // counters of the journals closed so far
	frozen bool          // freeze: no journal opens from now on
}

// errFrozen is acquire's error after freeze.
var errFrozen = errors.New("the daemon is exiting (forced): its journals are frozen")

type held struct {
	j    *journal.Journal
	refs int
}

func newJournals(dir func(string) string, open func(string, string, journal.Options) (*journal.Journal, error),
	opts journal.Options) *journals {
	if open == nil {
		open = func(dir, _ string, opts journal.Options) (*journal.Journal, error) { return journal.Open(dir, opts) }
	}
	return &journals{dir: dir, openJ: open, opts: opts, open: map[string]*held{}}
}

// BusyError means another process holds a workflow's journal: it runs
// that workflow.
type BusyError struct {
	Workflow string
	Lock     *journal.LockedError // who holds it
}

func (e *BusyError) Error() string {
	return "workflow " + e.Workflow + " is running in " + e.Lock.Holder()
}

// acquire returns the journal of wf, opening it (and taking its lock) if
// no run of wf holds it yet. A journal held by another process is a
// *BusyError, at once when the lock names a live process other than this
// one (a child of ours between fork and exec may hold a copy of a lock we
// released: then the lock's own bounded wait applies).
func (s *journals) acquire(wf string) (*journal.Journal, error) {
	s.mu.Lock()
	if s.frozen {
		s.mu.Unlock()
		return nil, errFrozen
	}
	h := s.open[wf]
	if h != nil {
		h.refs++
		s.mu.Unlock()
		return h.j, nil
	}
	s.mu.Unlock()
	if le := s.holder(wf); le != nil && le.PID > 0 && le.PID != os.Getpid() {
		return nil, &BusyError{Workflow: wf, Lock: le}
	}
	dir := s.dir(wf)
	_, serr := os.Stat(dir)
	j, err := s.openJ(dir, wf, s.opts)
	var le *journal.LockedError
	if errors.As(err, &le) {
		return nil, &BusyError{Workflow: wf, Lock: le}
	}
	if err == nil && errors.Is(serr, os.ErrNotExist) {
		if err = journal.SyncDir(filepath.Dir(dir)); err != nil { // the new journal's name
			j.Close()
		}
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.frozen { // froze while it opened
		s.mu.Unlock()
		j.Close()
		return nil, errFrozen
	}
	s.open[wf] = &held{j: j, refs: 1}
	s.mu.Unlock()
	return j, nil
}

// freeze freezes every open journal at once (journal.Freeze: a forced
// exit kills the tasks next, and their deaths must not be journaled as
// their outcomes) and makes acquire fail from now on. It reports whether
// every journal synced within wait.
func (s *journals) freeze(wait time.Duration) bool {
	s.mu.Lock()
	s.frozen = true
	open := make([]*journal.Journal, 0, len(s.open))
	for _, h := range s.open {
		open = append(open, h.j)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	var unsynced atomic.Bool
	for _, j := range open {
		wg.Go(func() {
			if !j.Freeze(wait) {
				unsynced.Store(true)
			}
		})
	}
	wg.Wait()
	return !unsynced.Load()
}

// holder probes the lock of wf's journal without waiting: who holds it,
// as the lock file says, or nil when it is free.
func (s *journals) holder(wf string) *journal.LockedError {
	path := filepath.Join(s.dir(wf), "LOCK")
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close() // releases the probe's lock, if it got it
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		return nil
	}
	return journal.LockHolder(path)
}

// release drops one reference to wf's journal and closes it when it was
// the last.
func (s *journals) release(wf string) error {
	s.mu.Lock()
	h := s.open[wf]
	if h == nil {
		s.mu.Unlock()
		return nil
	}
	h.refs--
	if h.refs > 0 {
		s.mu.Unlock()
		return nil
	}
	delete(s.open, wf)
	st := h.j.Stats()
	s.closed.Entries += st.Entries
	s.closed.BytesWritten += st.BytesWritten
	s.closed.Fsyncs += st.Fsyncs
	s.mu.Unlock()
	return h.j.Close()
}

// count returns how many journals are open.
func (s *journals) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// stats sums the counters of every journal the daemon opened.
func (s *journals) stats() journal.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.closed
	for _, h := range s.open {
		st := h.j.Stats()
		t.Entries += st.Entries
		t.BytesWritten += st.BytesWritten
		t.Fsyncs += st.Fsyncs
	}
	return t
}

// closeAll closes every journal still open (shutdown).
func (s *journals) closeAll() error {
	s.mu.Lock()
	open := s.open
	s.open = map[string]*held{}
	s.mu.Unlock()
	var err error
	for _, h := range open {
		if cerr := h.j.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
