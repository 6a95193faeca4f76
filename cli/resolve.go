package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/picoflow/picoflow/cli/daemon"
	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name:    "resolve",
		args:    "RUN_ID TASK",
		summary: "settle an in-doubt task: --succeeded, --failed or --rerun",
		long: `A task with idempotent: false that was running when PicoFlow stopped is
"in doubt": nobody knows whether its effect happened. Check, then record
the answer; picoflow resume RUN_ID continues the run.

While a daemon runs another run of the same workflow it holds that
workflow's journal: resolve hands the answer to it over HOME/daemon.sock
and reports the same result.`,
		setup: func(fs *pflag.FlagSet) runFunc {
			ok := fs.Bool("succeeded", false, "the task's effect happened: treat it as succeeded")
			failed := fs.Bool("failed", false, "treat the task as failed (its dependents are skipped)")
			rerun := fs.Bool("rerun", false, "run the task again")
			reason := fs.String("reason", "", "a note recorded in the journal")
			return func(ctx context.Context, m *Main, g *globals, args []string) error {
				if len(args) != 2 {
					return exitf(ExitUsage, "resolve needs RUN_ID and TASK")
				}
				status := ""
				for _, c := range []struct {
					set bool
					s   string
				}{{*ok, daemon.ResolveSucceeded}, {*failed, daemon.ResolveFailed}, {*rerun, daemon.ResolveRerun}} {
					if c.set {
						if status != "" {
							return exitf(ExitUsage, "give exactly one of --succeeded, --failed, --rerun")
						}
						status = c.s
					}
				}
				if status == "" {
					return exitf(ExitUsage, "give exactly one of --succeeded, --failed, --rerun")
				}
				id, err := m.resolve(ctx, g, args[0], args[1], status, *reason)
				if err != nil {
					return err
				}
				fmt.Fprintf(m.Stdout, "task %s of run %s resolved as %s; continue with: picoflow resume %s\n", args[1], id, status, id)
				return nil
			}
		},
	})
}

// resolve journals the resolution of an in-doubt task in its workflow's
// journal, or hands it to the daemon that holds that journal. run may be a
// unique prefix; resolve returns the run's id.
func (m *Main) resolve(ctx context.Context, g *globals, run, task, status, note string) (string, error) {
	h := home(g.home)
	all, err := h.replayAll(nil)
	if err != nil {
		return "", withCode(ExitInternal, err)
	}
	id, err := matchRunID(run, stateRunIDs(all))
	if err != nil {
		return "", err
	}
	if err := runHasTask(all.Runs[id], task, g); err != nil {
		return "", err
	}
	wf := all.Runs[id].Workflow
	j, st, err := h.openWorkflow(wf, "resolve", g, nil)
	var ee *exitError
	if errors.As(err, &ee) && ee.code == ExitLocked && daemon.Holder(h.daemonLock()) != 0 {
		return id, h.handOver(ctx, daemon.Request{Op: daemon.OpResolve, Workflow: wf, Run: id,
			Task: task, Status: status, Reason: note})
	}
	if err != nil {
		return "", err
	}
	defer j.Close()
	if err := daemon.Resolve(j, st, id, task, status, note, m.now()); err != nil {
		return "", refused(err)
	}
	return id, nil
}

// runHasTask refuses (exit 8) a task the run's definition does not have,
// with the closest name it has; the engine would answer that the task is
// pending, not in doubt. Where the definition does not parse, the engine
// answers.
func runHasTask(r *engine.Run, task string, g *globals) error {
	if r.Tasks[task] != nil {
		return nil
	}
	wf, err := workflow.ParseWith(r.Source, []byte(r.Definition), workflowBase(g.cfg))
	if err != nil {
		return nil
	}
	names := taskNames(r, wf)
	if slices.Contains(names, task) {
		return nil
	}
	return exitf(ExitNotFound, "run %s has no task %q%s", r.ID, task, suggest(task, names))
}

// refused maps a daemon.RefusedError (or any other error) to its exit code.
func refused(err error) error {
	var re *daemon.RefusedError
	if errors.As(err, &re) {
		return withCode(triggerExit(re.Code), err)
	}
	return withCode(ExitInternal, err)
}

// handOver sends a write to the daemon, which holds the journal it goes
// to, and turns a refusal into the exit code of the same refusal here.
func (h home) handOver(ctx context.Context, req daemon.Request) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := daemon.Call(ctx, h.daemonSocket(), req)
	if err != nil {
		return withCode(ExitInternal, fmt.Errorf("hand %s over to the daemon, which holds the journal of %s: %w", req.Op, req.Workflow, err))
	}
	if !resp.OK {
		return withCode(triggerExit(resp.Code), errors.New(resp.Error))
	}
	return nil
}
