package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/journal"
	"github.com/picoflow/picoflow/projector"
)

// home is the state directory layout:
//
//	HOME/journal/WF/        the journal of workflow WF (segments, LOCK, damaged/);
//	                        its LOCK is held while a process runs WF or writes its events
//	HOME/journal/LOCK/      a directory: marks the layout and keeps an older
//	                        picoflow from writing a single journal here
//	HOME/journal-v1/        the single journal of a release before per-workflow
//	                        journals, kept after the upgrade converted it
//	HOME/logs/WF/RUN/       one TASK.ATTEMPT.log per attempt
//	HOME/picoflow.db        the SQLite projection of the journals (derived; reindex rebuilds it)
type home string

func (h home) journal() string { return filepath.Join(string(h), "journal") }
func (h home) logs() string    { return filepath.Join(string(h), "logs") }
func (h home) db() string      { return filepath.Join(string(h), "picoflow.db") }

// journalDir is the journal of one workflow: HOME/journal/WF (HOME/journal
// itself for workflow "", an earlier release's single journal).
func journalDir(homeDir, wf string) string { return filepath.Join(homeDir, "journal", wf) }

// journals lists every journal of the home for readers, by name (the
// workflow; "" for the single journal of a home an older release wrote and
// no writer has converted yet). Listing never writes.
func (h home) journals() ([]projector.Source, error) {
	srcs, err := journalsIn(h.journal())
	if srcs == nil && err == nil {
		if old := h.v1Backup(); isV1Journal(old) && pathExists(h.upgradeTmp()) {
			// A conversion stopped between its two renames: read the
			// original until the next writer finishes it.
			return []projector.Source{{Name: "", Dir: old}}, nil
		}
	}
	return srcs, err
}

// journalsIn lists the journals in dir: dir itself when it holds segments
// (named ""; its subdirectories are copies a repair kept), else every
// workflow's journal directory in it.
func journalsIn(dir string) ([]projector.Source, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list journals: %w", err)
	}
	var out []projector.Source
	if hasSegments(ents) {
		return []projector.Source{{Name: "", Dir: dir}}, nil
	}
	for _, e := range ents {
		if e.IsDir() && workflowName(e.Name()) {
			out = append(out, projector.Source{Name: e.Name(), Dir: filepath.Join(dir, e.Name())})
		}
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Name < out[k].Name })
	return out, nil
}

// workflowName reports whether s can be a workflow's name (and so the
// name of its journal directory): lowercase letters, digits, '_' and '-'.
func workflowName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func pathExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// lockedExit turns a journal's LockedError into exit 5 naming the holder.
func lockedExit(wf string, le *journal.LockedError) error {
	return exitf(ExitLocked, "workflow %s is already running in %s; refusing to run it twice", wf, le.Holder())
}

// openWorkflow opens the journal of workflow wf for writing: its lock is
// the workflow's lock, so that one workflow never runs in two processes at
// once while different workflows run side by side. A home an older release
// wrote is converted first. It replays the journal into a state that keeps
// the finished runs detail names whole (nil: none, see engine.State.Detail).
// In a new home it returns once the home's directories are durable.
func (h home) openWorkflow(wf, owner string, g *globals, detail func(string) bool) (*journal.Journal, *engine.State, error) {
	j, st, err := h.holdWorkflow(wf, owner, g, detail)
	if err != nil {
		return nil, nil, err
	}
	if err := j.ready(); err != nil {
		j.Close()
		return nil, nil, err
	}
	return j.Journal, st, nil
}

// heldJournal is the journal of a workflow this process holds and, in a
// new home, the wait for the fsyncs that make the home's directories
// durable (home.markLayout): they go on while the journal opens and the
// engine gets ready, and nothing but a lazy run_started is written before
// they end (startWatch), so that no task starts before every name the
// run's recovery needs is durable. ready returns at once in a home that
// had its layout; it may be called again (it waits once).
type heldJournal struct {
	*journal.Journal
	ready func() error
}

// holdWorkflow is openWorkflow that returns before a new home's
// directories are durable: the caller calls ready before anything of the
// journal counts.
func (h home) holdWorkflow(wf, owner string, g *globals, detail func(string) bool) (heldJournal, *engine.State, error) {
	layout, err := h.startUpgrade(g.log, wf)
	if err != nil {
		return heldJournal{}, nil, err
	}
	// startUpgrade made the journal's directory in a new home, and the
	// layout's fsyncs run while Open makes the first segment (and fsyncs
	// the directory); journal.Open makes the directory durably in a home
	// that has its layout (MkdirDurable). Open replays the journal into
	// st as it checks it (one read), reading ahead for the runs that
	// finish (engine.State.OpenOptions).
	dir := journalDir(string(h), wf)
	st := engine.NewState()
	st.Detail = detail
	j, err := openJournal(dir, wf, st.OpenOptions(journal.Options{Owner: owner}))
	if err != nil {
		lerr := layout()
		if j != nil {
			j.Close()
		}
		var le *journal.LockedError
		if errors.As(err, &le) {
			return heldJournal{}, nil, lockedExit(wf, le)
		}
		if lerr != nil {
			return heldJournal{}, nil, lerr
		}
		return heldJournal{}, nil, journalErr(err, wf)
	}
	if rep := j.Repaired; rep.Truncated {
		g.log.Warn("journal repaired: dropped a torn tail left by a crash", "journal", j.Dir(),
			"segment", rep.Segment, "offset", rep.Offset, "bytes", rep.Dropped,
			"last_good", rep.LastGood, "copy", rep.Copy, "cause", rep.Cause)
	}
	return heldJournal{Journal: j, ready: sync.OnceValue(layout)}, st, nil
}

// replayAll folds every journal of the home into one state (read-only)
// that keeps the finished runs detail names whole (nil: none): the others
// are summaries, so that a home's history of big runs costs no memory
// here (engine.State.Detail).
func (h home) replayAll(detail func(string) bool) (*engine.State, error) {
	srcs, err := h.journals()
	if err != nil {
		return nil, err
	}
	st := engine.NewState()
	st.Detail = detail
	skip := func(*journal.DamageError) error { return nil } // finding a run; writers open its journal, which reports damage
	for _, s := range srcs {
		if err := st.FoldDir(s.Dir, journal.ScanOptions{OnDamage: skip}); err != nil {
			return nil, fmt.Errorf("replay journal %s: %w", s.Dir, err)
		}
	}
	return st, nil
}

// catchUp brings the projection up to date with every journal of the home.
func (h home) catchUp(ctx context.Context, db *projector.DB) (int, error) {
	return db.CatchUpAll(ctx, h.journals)
}

// journalDirs lists the directories of every journal of the home.
func (h home) journalDirs() ([]string, error) {
	srcs, err := h.journals()
	dirs := make([]string, len(srcs))
	for i, s := range srcs {
		dirs[i] = s.Dir
	}
	return dirs, err
}

// writesHome names the commands that write the home: they check first that
// it is writable, so that a read-only home gives one error naming it
// rather than the first failing mkdir deep inside.
var writesHome = map[string]bool{"run": true, "resume": true, "resolve": true, "cancel": true, "daemon": true, "gc": true, "reindex": true}

// checkWritable reports, as exit 7, a home that cannot be written: the home
// itself, or the nearest existing parent it would be created in. It writes
// nothing (access(2) with W_OK).
func (h home) checkWritable() error {
	dir := filepath.Clean(string(h))
	for {
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	const wOK = 2
	err := syscall.Access(dir, wOK)
	if err == nil {
		return nil
	}
	hint := "PicoFlow writes only under its home: pass a writable --home DIR (or set PICOFLOW_HOME)"
	if dir != filepath.Clean(string(h)) {
		return exitf(ExitInternal, "home %s cannot be created: %s is not writable (%v); %s", h, dir, err, hint)
	}
	return exitf(ExitInternal, "home %s is not writable (%v); %s", h, err, hint)
}
