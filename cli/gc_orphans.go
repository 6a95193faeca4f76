package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/picoflow/picoflow/cli/config"
	"github.com/picoflow/picoflow/projector"
)

// orphanLogs finds the run log directories no run owns: LOGS/WF/RUN (LOGS
// is HOME/logs or paths.logs, WF a workflow with a journal) where RUN is
// neither a run of the history database nor a run with any entry in WF's
// journal. A foreground run writes its run_started without an fsync
// (engine.Options.LazyStart) and then creates its log directory: a power
// cut before the run_started is durable can keep the directory and lose
// the run, and nothing else would ever remove it.
//
// A live run's directory is never taken for an orphan, whether its
// run_started is durable or not, and whoever holds the journal: the engine
// writes run_started (to the file, through the page cache every reader
// shares) before it creates the directory, and the journal is read after
// the directories are listed, so a run whose directory is listed is in
// what the scan reads. A journal that cannot be read whole (damage) keeps
// its workflow's directories: a run may hide behind the damage.
func (m *Main) orphanLogs(ctx context.Context, h home, cfg *config.Config, db *projector.DB) ([]projector.Doomed, error) {
	srcs, err := h.journals()
	if err != nil {
		return nil, withCode(ExitInternal, err)
	}
	roots := []string{h.logs()}
	if cfg.Paths.Logs != "" {
		roots = append(roots, cfg.Paths.Logs)
	}
	cands := map[string][]string{} // workflow → run ids of listed directories
	for _, src := range srcs {
		if !safeName(src.Name) {
			continue // an unconverted single journal: gc converts it first; --dry-run reports none
		}
		for _, root := range roots {
			ids, err := runDirs(filepath.Join(root, src.Name))
			if err != nil {
				return nil, withCode(ExitInternal, err)
			}
			cands[src.Name] = append(cands[src.Name], ids...)
		}
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
	sort.Slice(out, func(i, k int) bool { return out[i].Workflow+"/"+out[i].ID < out[k].Workflow+"/"+out[k].ID })
	return dedupDoomed(out), nil
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

// dedupDoomed drops the repeats of a sorted list (a run with a directory
// under both HOME/logs and paths.logs is listed twice).
func dedupDoomed(ds []projector.Doomed) []projector.Doomed {
	out := ds[:0]
	for i, d := range ds {
		if i == 0 || d.ID != ds[i-1].ID || d.Workflow != ds[i-1].Workflow {
			out = append(out, d)
		}
	}
	return out
}
