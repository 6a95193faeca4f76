package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/picoflow/picoflow/projector"
)

// orphanLogs finds the run log directories no run owns: HOME/logs/WF/RUN
// (WF a workflow with a journal) where RUN is neither a run of the history
// database nor a run with any entry in WF's journal. A foreground run
// writes its run_started without an fsync (engine.Options.LazyStart) and
// then creates its log directory: a power cut before the run_started is
// durable can keep the directory and lose the run, and nothing else would
// ever remove it. Only HOME/logs is looked at: a foreground run always
// logs there, the daemon (which may log under paths.logs) makes its
// run_started durable before it creates the directory, and paths.logs
// may be shared with another home, whose runs this home does not know.
//
// A live run's directory is never taken for an orphan, whether its
// run_started is durable or not, and whoever holds the journal: the engine
// writes run_started (to the file, through the page cache every reader
// shares) before it creates the directory, and the journal is read after
// the directories are listed, so a run whose directory is listed is in
// what the scan reads. A journal that cannot be read whole (damage) keeps
// its workflow's directories: a run may hide behind the damage.
func (m *Main) orphanLogs(ctx context.Context, h home, db *projector.DB) ([]projector.Doomed, error) {
	srcs, err := h.journals()
	if err != nil {
		return nil, withCode(ExitInternal, err)
	}
	cands := map[string][]string{} // workflow → run ids of listed directories
	for _, src := range srcs {
		if !safeName(src.Name) {
			continue // an unconverted single journal: gc converts it first; --dry-run reports none
		}
		ids, err := runDirs(filepath.Join(h.logs(), src.Name))
		if err != nil {
			return nil, withCode(ExitInternal, err)
		}
		cands[src.Name] = ids
	}
	inDB, err := db.RunIDs(ctx)
	if err != nil {
		return nil, withCode(ExitInternal, err)
	}
	var out []projector.Doomed
	for _, src := range srcs {
		var unknown []string
		for _, id := range cands[src.Name] {
			if !inDB[id] {
				unknown = append(unknown, id)
			}
		}
		if len(unknown) == 0 {
			continue
		}
		layout, err := projector.ReadLayout(src.Dir) // after the listing: see above
		if err != nil {
			fmt.Fprintf(m.Stderr, "picoflow: log directories of %s without a run left in place: %v\n", src.Name, err)
			continue
		}
		inJournal := map[string]bool{}
		for _, e := range layout.Runs {
			inJournal[e.Run] = true
		}
		for _, id := range unknown {
			if !inJournal[id] {
				out = append(out, projector.Doomed{Run: projector.Run{ID: id, Workflow: src.Name}})
			}
		}
	}
	return out, nil
}

// runDirs lists the names of the directories (not symlinks) in dir.
func runDirs(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list log directories: %w", err)
	}
	var ids []string
	for _, e := range ents {
		if e.IsDir() && safeName(e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}
