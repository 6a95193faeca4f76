package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/picoflow/picoflow/cli/config"
	"github.com/picoflow/picoflow/cli/daemon"
	"github.com/picoflow/picoflow/journal"
	"github.com/picoflow/picoflow/projector"
	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name:    "gc",
		summary: "apply the retention policy now: remove old runs' logs, history and journal entries",
		long: `Removes finished runs that are older than retention.history_days or beyond
the newest retention.max_runs_per_workflow of their workflow: their log
directories (HOME/logs/WF/RUN/), their rows in HOME/picoflow.db and, in
each workflow's journal that no other process holds, their journal entries.
Logs of runs older than retention.log_days go earlier; those runs keep
their rows.

Runs that have not finished (running or interrupted) are never touched,
and a journal is only cut before the first entry of the oldest run of it
that is kept, so that what remains always replays. If a daemon or a run
holds a workflow's journal, gc says so and leaves that journal for a later
gc.

gc also removes a log directory HOME/logs/WF/RUN that no run owns: one a
power cut left behind when it lost the start of a foreground run (written
without an fsync until the run's first one). A live run's directory is
never one of them.

  picoflow gc --dry-run
  picoflow gc`,
		setup: func(fs *pflag.FlagSet) runFunc {
			dry := fs.Bool("dry-run", false, "print what would be removed, remove nothing")
			return func(ctx context.Context, m *Main, g *globals, args []string) error {
				if len(args) != 0 {
					return exitf(ExitUsage, "gc takes no arguments")
				}
				return m.gc(ctx, g, *dry)
			}
		},
	})
}

// retentionPolicy turns the configured days into a projector.Policy.
func retentionPolicy(r config.Retention) projector.Policy {
	day := 24 * time.Hour
	return projector.Policy{
		MaxAge:  time.Duration(r.HistoryDays) * day,
		MaxRuns: r.MaxRunsPerWorkflow,
		LogAge:  time.Duration(r.LogDays) * day,
	}
}

func (m *Main) gc(ctx context.Context, g *globals, dry bool) error {
	h := home(g.home)
	cfg := g.cfg
	if cfg == nil {
		cfg = config.Default()
	}
	if !dry {
		if err := h.upgrade(g.log, ""); err != nil {
			return err
		}
	}
	db, err := m.projection(ctx, g)
	if err != nil {
		return err
	}
	defer db.Close()

	r := cfg.Retention
	policy := "runs older than " + days(r.HistoryDays)
	if r.MaxRunsPerWorkflow > 0 {
		policy += fmt.Sprintf(", at most %d runs per workflow", r.MaxRunsPerWorkflow)
	}
	if r.LogDays > 0 {
		policy += ", logs older than " + days(r.LogDays)
	}
	fmt.Fprintf(m.Stdout, "retention: %s\n", policy)
	plan, err := db.PlanRetention(ctx, m.now(), retentionPolicy(r))
	if err != nil {
		return withCode(ExitInternal, err)
	}
	verb := "removed"
	if dry {
		verb = "would remove"
	}
	removed, err := m.dropLogs(h, cfg, plan.Remove, dry)
	if err != nil {
		return err
	}
	logs, err := m.dropLogs(h, cfg, plan.DropLogs, dry)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "%s %d run(s)%s and their logs (%s)\n", verb, len(plan.Remove), perWorkflow(plan.Remove), fmtBytes(removed))
	if len(plan.DropLogs) > 0 {
		fmt.Fprintf(m.Stdout, "%s the logs of %d more run(s) (%s)\n", verb, len(plan.DropLogs), fmtBytes(logs))
	}
	gone := map[string]bool{}
	var ids, logIDs []string
	for _, d := range plan.Remove {
		ids, gone[d.ID] = append(ids, d.ID), true
	}
	for _, d := range plan.DropLogs {
		logIDs = append(logIDs, d.ID)
	}
	if !dry {
		if _, err := db.DeleteRuns(ctx, ids); err != nil {
			return withCode(ExitInternal, err)
		}
		if err := db.MarkLogsRemoved(ctx, logIDs); err != nil {
			return withCode(ExitInternal, err)
		}
	}
	if err := m.gcOrphans(ctx, h, db, verb, dry); err != nil {
		return err
	}
	srcs, err := h.journals()
	if err != nil {
		return withCode(ExitInternal, err)
	}
	oldest := m.now().Add(-retentionPolicy(r).MaxAge)
	var first error // a damaged journal stops its own truncation only
	for _, src := range srcs {
		if err := m.truncateJournal(ctx, h, db, src, gone, oldest, dry); err != nil {
			fmt.Fprintf(m.Stderr, "picoflow: journal %s not truncated: %v\n", firstNonEmpty(src.Name, src.Dir), err)
			first = cmp.Or(first, err)
		}
	}
	return first
}

// gcOrphans removes (or, dry, reports) the log directories no run owns
// (orphanLogs).
func (m *Main) gcOrphans(ctx context.Context, h home, db *projector.DB, verb string, dry bool) error {
	orphans, err := m.orphanLogs(ctx, h, db)
	if err != nil {
		return err
	}
	if len(orphans) == 0 {
		return nil
	}
	size, err := m.dropLogs(h, &config.Config{}, orphans, dry) // HOME/logs only: not paths.logs (orphanLogs)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "%s the log directories of %d run(s)%s that never got into the journal (%s)\n",
		verb, len(orphans), perWorkflow(orphans), fmtBytes(size))
	return nil
}

// truncateJournal cuts one journal before the first entry that a kept run
// (or a run that straddles the cut) needs, keeping each workflow's newest
// schedule event from after oldest (the scheduler computes missed fires
// from it). It holds the journal while it cuts; a journal the daemon holds
// (a run of its workflow is live there) is cut by the daemon, and one
// another process holds is left for a later gc.
func (m *Main) truncateJournal(ctx context.Context, h home, db *projector.DB, src projector.Source, gone map[string]bool,
	oldest time.Time, dry bool) error {
	name := "journal " + firstNonEmpty(src.Name, src.Dir)
	var j *journal.Journal
	by := ""
	if !dry {
		var err error
		j, err = openJournal(src.Dir, src.Name, journal.Options{Owner: "gc"})
		var le *journal.LockedError
		switch {
		case errors.As(err, &le) && src.Name != "" && le.PID > 0 && le.PID == daemon.Holder(h.daemonLock()):
			by = ", by the daemon, which holds it"
		case errors.As(err, &le):
			fmt.Fprintf(m.Stdout, "%s: not truncated: %v; a later gc will truncate it\n", name, err)
			return nil
		case err != nil:
			return journalErr(err, src.Name)
		default:
			defer j.Close()
		}
	}
	first, last, cut, err := planCut(ctx, db, src, gone, oldest)
	if err != nil {
		return err
	}
	switch {
	case last == 0:
		fmt.Fprintf(m.Stdout, "%s: empty\n", name)
		return nil
	case cut <= first:
		fmt.Fprintf(m.Stdout, "%s: nothing to truncate (entries %d–%d are still needed)\n", name, first, last)
		return nil
	case dry:
		fmt.Fprintf(m.Stdout, "%s: would truncate entries %d–%d, it would start at entry %d\n", name, first, cut-1, cut)
		return nil
	}
	before := dirSize(src.Dir)
	if j != nil {
		err = j.TruncateFront(cut)
	} else {
		err = h.handOver(ctx, daemon.Request{Op: daemon.OpTruncate, Workflow: src.Name, Before: cut})
	}
	if err != nil {
		return withCode(ExitInternal, err)
	}
	fmt.Fprintf(m.Stdout, "%s: truncated entries %d–%d (%s%s), it starts at entry %d\n",
		name, first, cut-1, fmtBytes(max(0, before-dirSize(src.Dir))), by, cut)
	return nil
}

// planCut reads the journal's layout and returns its first and last entry
// and the cut. A run is kept when retention keeps its rows, or when the
// projection had not reached its start (it began after the catch-up: a run
// the database does not know yet, not one retention removed).
func planCut(ctx context.Context, db *projector.DB, src projector.Source, gone map[string]bool, oldest time.Time) (first, last, cut uint64, err error) {
	layout, err := projector.ReadLayout(src.Dir)
	if err != nil {
		return 0, 0, 0, withCode(ExitInternal, err)
	}
	inDB, err := db.RunIDs(ctx)
	if err != nil {
		return 0, 0, 0, withCode(ExitInternal, err)
	}
	seen, err := db.Position(ctx, src.Name)
	if err != nil {
		return 0, 0, 0, withCode(ExitInternal, err)
	}
	start := map[string]uint64{}
	for _, e := range layout.Runs {
		start[e.Run] = e.First
	}
	var pins []uint64
	for _, f := range layout.Fires {
		if !f.Time.Before(oldest) {
			pins = append(pins, f.Seq)
		}
	}
	keep := func(run string) bool { return !gone[run] && (inDB[run] || start[run] > seen) }
	cut = projector.Cut(layout.Runs, keep, pins, layout.Last)
	return layout.First, layout.Last, cut, nil
}

// dropLogs removes (or, dry, measures) the log directories of runs.
func (m *Main) dropLogs(h home, cfg *config.Config, runs []projector.Doomed, dry bool) (int64, error) {
	var total int64
	for _, d := range runs {
		for _, dir := range runLogDirs(h, cfg, d) {
			total += dirSize(dir)
			if dry {
				continue
			}
			if err := os.RemoveAll(dir); err != nil {
				return total, withCode(ExitInternal, fmt.Errorf("remove logs of run %s: %w", d.ID, err))
			}
		}
	}
	return total, nil
}

// runLogDirs returns the log directories of a run: where its attempts
// wrote (from the journal) and where the configured logs directory puts
// them. Only directories named LOGS/WF/RUN are returned, so that a strange
// path in a journal can never make gc remove anything else.
func runLogDirs(h home, cfg *config.Config, d projector.Doomed) []string {
	if !safeName(d.ID) || !safeName(d.Workflow) {
		return nil
	}
	cands := append([]string{filepath.Join(h.logs(), d.Workflow, d.ID)}, d.LogDirs...)
	if cfg.Paths.Logs != "" {
		cands = append(cands, filepath.Join(cfg.Paths.Logs, d.Workflow, d.ID))
	}
	seen := map[string]bool{}
	var out []string
	for _, c := range cands {
		c = filepath.Clean(c)
		if seen[c] || filepath.Base(c) != d.ID || filepath.Base(filepath.Dir(c)) != d.Workflow {
			continue
		}
		seen[c] = true
		if _, err := os.Lstat(c); err == nil {
			out = append(out, c)
		}
	}
	return out
}

func safeName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}

// dirSize is the size of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func days(n int) string {
	if n == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}

// perWorkflow summarises runs by workflow: " (backup 7, report 5)".
func perWorkflow(runs []projector.Doomed) string {
	if len(runs) == 0 {
		return ""
	}
	n := map[string]int{}
	for _, d := range runs {
		n[d.Workflow]++
	}
	names := make([]string, 0, len(n))
	for w := range n {
		names = append(names, w)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, w := range names {
		parts[i] = fmt.Sprintf("%s %d", w, n[w])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
