package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// A home written by a release before per-workflow journals has one journal
// with its segments directly in HOME/journal. The first writer of the new
// release converts it (see ARCHITECTURE.md, "Upgrading a home"):
//
//  1. under HOME/upgrade.lock, open the old journal for writing (its lock
//     keeps an old picoflow out; opening repairs a torn tail as before);
//  2. copy every entry, in order, into HOME/.journal-v2.tmp/WF/ (one
//     journal per workflow, numbered from 1), fsync each, create the
//     LOCK marker directory, fsync the directory;
//  3. rename HOME/journal to HOME/journal-v1 and fsync HOME;
//  4. rename HOME/.journal-v2.tmp to HOME/journal and fsync HOME.
//
// A crash before 3 leaves the old journal in place and a temporary copy
// that the next writer removes (rolled back, then done again); a crash
// between 3 and 4 leaves HOME/journal missing, and the next writer finishes
// with step 4. Readers read the old journal until step 4. The old journal
// stays in HOME/journal-v1 (the user may delete it; nothing reads it).

func (h home) upgradeTmp() string  { return filepath.Join(string(h), ".journal-v2.tmp") }
func (h home) v1Backup() string    { return filepath.Join(string(h), "journal-v1") }
func (h home) upgradeLock() string { return filepath.Join(string(h), "upgrade.lock") }

// layoutMarker is HOME/journal/LOCK, a directory: an older release opens
// it as its journal lock file and fails instead of writing a single
// journal next to the workflows' journals.
func (h home) layoutMarker() string { return filepath.Join(h.journal(), "LOCK") }

// upgradeWait bounds how long a writer waits for another one's conversion.
const upgradeWait = 5 * time.Minute

// upgrade converts the home to per-workflow journals if it needs it, and
// marks a new home's layout; given a workflow (else ""), it creates that
// workflow's journal directory in a new home with the layout, so that the
// two share one fsync of HOME/journal. It is cheap when there is nothing
// to do.
func (h home) upgrade(log *slog.Logger, wf string) error {
	wait, err := h.startUpgrade(log, wf)
	if err != nil {
		return err
	}
	return wait()
}

// startUpgrade is upgrade that returns once a new home's directories
// exist, its fsyncs still under way: the caller opens the workflow's
// journal meanwhile (its first segment's fsync overlaps them) and calls
// wait before anything of the journal counts (openWorkflow). wait returns
// nil at once when the home had its layout.
func (h home) startUpgrade(log *slog.Logger, wf string) (wait func() error, err error) {
	if !h.needsUpgrade() {
		return h.markLayout(wf)
	}
	if err := journal.MkdirDurable(string(h), 0o750); err != nil {
		return nil, withCode(ExitInternal, err)
	}
	deadline := time.Now().Add(upgradeWait)
	var lock *os.File
	for {
		f, err := journal.LockFile(h.upgradeLock(), "upgrade")
		var le *journal.LockedError
		if errors.As(err, &le) && time.Now().Before(deadline) {
			continue // another writer converts; LockFile waited a moment already
		}
		if err != nil {
			return nil, withCode(ExitInternal, fmt.Errorf("upgrade %s: %w", h, err))
		}
		lock = f
		break
	}
	defer lock.Close()
	if !h.needsUpgrade() { // another writer did it while we waited
		return noWait, nil
	}
	if err := h.convert(log); err != nil {
		return nil, withCode(ExitInternal, fmt.Errorf("upgrade %s to per-workflow journals: %w; the old journal is unchanged", h, err))
	}
	return noWait, nil
}

func noWait() error { return nil }

// markLayout creates HOME/journal/LOCK in a new home, and HOME/journal/WF
// for workflow wf (unless ""); it returns once the directories exist, with
// their fsyncs under way on a goroutine, and wait for their end. The
// names of HOME and HOME/journal must be durable before a journal in them
// counts, and another process takes the marker as the sign that they are:
// so HOME's parent and HOME are fsynced before the marker is made,
// whoever created them (a process creating the same new home at the same
// time may not have fsynced them yet), and one fsync of HOME/journal then
// covers the marker and the workflow's directory. A new home costs three
// fsyncs here (MkdirDurable would spend four: HOME/journal once per name),
// in two rounds (syncLayout), while the caller opens the journal.
func (h home) markLayout(wf string) (wait func() error, err error) {
	if pathExists(h.layoutMarker()) {
		return noWait, nil // journal.Open creates a new workflow's directory durably
	}
	fail := func(err error) error {
		return withCode(ExitInternal, fmt.Errorf("create %s: %w", h.journal(), err))
	}
	top, err := h.makeLayout(wf)
	if err != nil {
		return nil, fail(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.syncLayout(top, journal.SyncDir) }()
	return func() error {
		if err := <-done; err != nil {
			return fail(err)
		}
		return nil
	}, nil
}

// makeLayout creates HOME's parent durably, then HOME, HOME/journal and
// the workflow's journal directory (wf "": none), without an fsync: it
// returns HOME's parent for syncLayout. It makes the workflow's log
// directory HOME/logs/WF too, which the engine would make with the run's
// (logs are never fsynced): here, before the layout's fsyncs, rather than
// while they commit, when a mkdir may wait for the file system's journal.
func (h home) makeLayout(wf string) (string, error) {
	top := filepath.Dir(filepath.Clean(string(h)))
	if err := journal.MkdirDurable(top, 0o750); err != nil { // HOME's parent: as for any home
		return "", err
	}
	dirs := []string{string(h), h.journal()}
	if wf != "" {
		dirs = append(dirs, journalDir(string(h), wf), h.logs(), filepath.Join(h.logs(), wf))
	}
	for _, d := range dirs {
		if err := mkdirExisting(d); err != nil {
			return "", err
		}
	}
	return top, nil
}

// syncLayout makes the names makeLayout created durable with sync (an
// fsync of a directory), and the marker after them: HOME's parent and
// HOME are fsynced at once (neither name needs the other durable first,
// and a journaling file system commits both in one transaction), then
// the marker is made and HOME/journal fsynced.
func (h home) syncLayout(top string, sync func(dir string) error) error {
	topDone := make(chan error, 1)
	go func() { topDone <- sync(top) }()
	err := sync(string(h))
	if terr := <-topDone; err == nil {
		err = terr
	}
	if err != nil {
		return err
	}
	if err := mkdirExisting(h.layoutMarker()); err != nil {
		return err
	}
	return sync(h.journal())
}

// mkdirExisting creates a directory whose parent exists; one that exists
// already is fine.
func mkdirExisting(dir string) error {
	err := os.Mkdir(dir, 0o750)
	if errors.Is(err, fs.ErrExist) {
		if fi, serr := os.Stat(dir); serr == nil && !fi.IsDir() {
			return fmt.Errorf("mkdir %s: not a directory", dir)
		}
		return nil
	}
	return err
}

// needsUpgrade reports whether HOME/journal holds an old single journal, or
// a conversion was cut short. In a converted or new home it lists nothing.
func (h home) needsUpgrade() bool {
	if pathExists(h.upgradeTmp()) {
		return true
	}
	// The layout marker is a directory made only where no old journal
	// was, and an older release cannot start one beside it (it opens LOCK
	// as its lock file): with it, there is nothing to list. An old
	// journal's LOCK is a file.
	if fi, err := os.Lstat(h.layoutMarker()); err == nil && fi.IsDir() {
		return false
	}
	return isV1Journal(h.journal())
}

// isV1Journal reports whether dir holds segments directly.
func isV1Journal(dir string) bool {
	ents, err := os.ReadDir(dir)
	return err == nil && hasSegments(ents)
}

// hasSegments reports whether a directory listing has a segment file: a
// 20-digit name, or the temporary file of a wal truncation.
func hasSegments(ents []os.DirEntry) bool {
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() {
			continue
		}
		if len(n) == 20 {
			if _, err := strconv.ParseUint(n, 10, 64); err == nil {
				return true
			}
		}
		if filepath.Ext(n) == ".START" || filepath.Ext(n) == ".END" {
			return true
		}
	}
	return false
}

// convert does the conversion, or finishes or rolls back one cut short.
// The caller holds the upgrade lock.
func (h home) convert(log *slog.Logger) error {
	tmp := h.upgradeTmp()
	if pathExists(tmp) && !pathExists(h.journal()) && pathExists(h.v1Backup()) {
		log.Warn("finishing an upgrade of the journal that was cut short", "home", string(h))
		return h.swapIn()
	}
	if err := os.RemoveAll(tmp); err != nil { // a copy a crash left half-done
		return err
	}
	if !isV1Journal(h.journal()) {
		return nil
	}
	ents, _ := os.ReadDir(h.journal())
	for _, e := range ents {
		if e.IsDir() && workflowName(e.Name()) {
			return fmt.Errorf("%s holds both a single journal and per-workflow journals (an older picoflow wrote it after the upgrade); move one aside", h.journal())
		}
	}
	old, err := openJournal(h.journal(), "", journal.Options{Owner: "upgrade"})
	if err != nil {
		return err
	}
	defer old.Close()
	n, runs, err := splitJournal(old, tmp, log)
	if err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Mkdir(filepath.Join(tmp, "LOCK"), 0o750); err != nil {
		return err
	}
	if err := journal.SyncDir(tmp); err != nil {
		return err
	}
	backup := h.v1Backup()
	if pathExists(backup) {
		backup += "-" + strconv.FormatInt(time.Now().Unix(), 10)
	}
	if err := os.Rename(h.journal(), backup); err != nil {
		return err
	}
	if err := journal.SyncDir(string(h)); err != nil {
		return err
	}
	if err := h.swapIn(); err != nil {
		return err
	}
	log.Warn("upgraded the home to one journal per workflow; the old journal is kept",
		"home", string(h), "entries", n, "runs", runs, "old", backup)
	return nil
}

// swapIn is the last step: the converted journals become HOME/journal.
func (h home) swapIn() error {
	if err := os.Rename(h.upgradeTmp(), h.journal()); err != nil {
		return err
	}
	return journal.SyncDir(string(h))
}

// splitJournal copies every entry of old into one journal per workflow
// under dir and returns the entries and runs copied. Entries of a run
// whose start is gone (never written by a release) are dropped with a
// warning.
func splitJournal(old *journal.Journal, dir string, log *slog.Logger) (int, int, error) {
	out := map[string]*journal.Journal{}
	defer func() {
		for _, j := range out {
			j.Close()
		}
	}()
	runWF := map[string]string{}
	n, dropped := 0, 0
	err := old.ReadFrom(0, func(e *journal.Event) error {
		wf := e.Workflow
		if e.Type == journal.RunStarted {
			runWF[e.Run] = wf
		} else if e.Run != "" {
			wf = runWF[e.Run]
		}
		if !workflowName(wf) {
			dropped++
			return nil
		}
		j := out[wf]
		if j == nil {
			var err error
			if j, err = openJournal(filepath.Join(dir, wf), wf, journal.Options{Owner: "upgrade"}); err != nil {
				return err
			}
			out[wf] = j
		}
		e.Seq = 0
		n++
		return j.AppendLazy(e)
	})
	if err != nil {
		return 0, 0, err
	}
	for wf, j := range out {
		delete(out, wf)
		if err := j.Close(); err != nil { // fsyncs the entries
			return 0, 0, err
		}
	}
	if dropped > 0 {
		log.Warn("upgrade: entries that belong to no workflow were not copied", "entries", dropped)
	}
	return n, len(runWF), nil
}
