package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name:    "rerun",
		args:    "RUN_ID",
		summary: "start a new run of a finished run's definition, reusing the results of the tasks not selected",
		long: `Starts a new run with the definition and parameters recorded for RUN_ID
(the workflow file may have changed or be gone). The tasks named with
--from, with --failed every task that failed, timed out or was skipped, and
everything downstream of them run again; every other task is not run: its
result in RUN_ID (its success and outputs, or its failure) is journaled as
the new run's, marked "reused from RUN_ID". A task that never ran in RUN_ID
(it was canceled first) runs too.

The new run's trigger is rerun and it records RUN_ID (history --json:
rerun_of; replay shows both). It is an ordinary run afterwards: a crash or
kill -9 leaves it resumable with picoflow resume, which never runs a reused
task.

RUN_ID must have finished; an interrupted run is resumed instead (picoflow
resume). While a run of the same workflow is live in another process or in
the daemon, rerun refuses (exit 5): a workflow's journal has one writer.

Exit codes: those of picoflow run; 8 unknown run or task.`,
		setup: func(fs *pflag.FlagSet) runFunc {
			var ef execFlags
			ef.add(fs)
			from := fs.StringArray("from", nil, "TASK to run again, with everything downstream of it (repeatable)")
			failed := fs.Bool("failed", false, "run again every task that failed, timed out or was skipped, and everything downstream")
			return func(ctx context.Context, m *Main, g *globals, args []string) error {
				if len(args) != 1 {
					return exitf(ExitUsage, "rerun needs exactly one RUN_ID")
				}
				if len(*from) == 0 && !*failed {
					return exitf(ExitUsage, "rerun needs --from TASK or --failed (say which tasks run again; --from the first task reruns every task)")
				}
				if err := ef.check(); err != nil {
					return err
				}
				return m.rerun(ctx, g, args[0], *from, *failed, ef)
			}
		},
	})
	writesHome["rerun"] = true
}

func (m *Main) rerun(ctx context.Context, g *globals, id string, from []string, failed bool, ef execFlags) error {
	h := home(g.home)
	st, id, err := h.findRun(id)
	if err != nil {
		return err
	}
	orig := st.Runs[id]
	if err := rerunnable(h, orig); err != nil {
		return err
	}
	wf, err := workflow.ParseWith(orig.Source, []byte(orig.Definition), workflowBase(g.cfg))
	if err != nil {
		return withCode(ExitInternal, fmt.Errorf("recorded definition of run %s: %w", id, err))
	}
	if err := knownTasks(wf, from); err != nil {
		return err
	}
	run, reuse, err := engine.RerunPlan(wf, orig, from, failed)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	if len(run) == 0 {
		return exitf(ExitUsage, "run %s has no task that failed, timed out or was skipped: nothing to run again (--from TASK names one)", id)
	}
	j, st, release, err := m.takeWorkflow(g, h, wf, "rerun", engine.OneRun(id))
	if err != nil {
		return err
	}
	defer release()
	if orig = st.Runs[id]; orig == nil || !orig.Status.Finished() {
		return exitf(ExitUsage, "run %s is no longer a finished run of %s", id, wf.Name)
	}
	fmt.Fprintf(m.Stdout, "rerun of %s: reusing %d task(s)%s, running %d: %s\n",
		id, len(reuse), listTail(reuse), len(run), strings.Join(run, ", "))
	eng, done := m.newEngine(g, h, j, wf, ef)
	defer done()
	r, err := eng.Rerun(ctx, wf, orig, reuse)
	return runOutcome(ctx, r, err)
}

// rerunnable refuses a run that has not finished: a live one (its workflow
// is held) and an interrupted or damaged one, which resume finishes.
func rerunnable(h home, r *engine.Run) error {
	switch {
	case r.Status.Finished():
		return nil
	case r.Status == engine.RunRunning && h.workflowHeld(r.Workflow):
		return exitf(ExitLocked, "run %s of %s is still running; rerun it once it has finished", r.ID, r.Workflow)
	}
	state := "interrupted"
	if r.Status == engine.RunDamaged {
		state = "damaged by a journal salvage"
	}
	return exitf(ExitUsage, "run %s of %s did not finish (%s): picoflow resume %s finishes it, and rerun can follow",
		r.ID, r.Workflow, state, r.ID)
}

// listTail is " (a, b, c)" for a short list, else "".
func listTail(names []string) string {
	if len(names) == 0 || len(names) > 8 {
		return ""
	}
	return " (" + strings.Join(names, ", ") + ")"
}

// knownTasks refuses (exit 8) a task name wf does not have, with the
// closest one it has.
func knownTasks(wf *workflow.Workflow, names []string) error {
	all := make([]string, len(wf.Tasks))
	for i, t := range wf.Tasks {
		all[i] = t.Name
	}
	for _, n := range names {
		if _, ok := wf.Index(n); !ok {
			return exitf(ExitNotFound, "workflow %s has no task %q%s", wf.Name, n, suggest(n, all))
		}
	}
	return nil
}

// completeRunTasks lists the tasks of the run args names (rerun --from
// TAB), from the definition the history database keeps for it.
func (m *Main) completeRunTasks(ctx context.Context, c *command, g *globals, args []string) []string {
	if len(args) == 0 {
		return nil
	}
	if _, err := os.Stat(m.completeHome(c, g).db()); err != nil {
		return nil
	}
	db, err := m.queryProjection(ctx, g)
	if err != nil {
		return nil
	}
	defer db.Close()
	r, err := db.Run(ctx, args[0])
	if err != nil || r == nil {
		return nil
	}
	names, _ := definedTasks(ctx, db, r, workflowBase(g.cfg))
	return names
}
