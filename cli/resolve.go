package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/journal"
	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name:    "resolve",
		args:    "RUN_ID TASK",
		summary: "settle an in-doubt task: --succeeded, --failed or --rerun",
		long: `A task with idempotent: false that was running when PicoFlow stopped is
"in doubt": nobody knows whether its effect happened. Check, then record
the answer; picoflow resume RUN_ID continues the run.`,
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
				}{{*ok, journal.StatusSuccess}, {*failed, journal.StatusFailed}, {*rerun, "rerun"}} {
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
				h := home(g.home)
				j, st, err := h.openJournal("resolve", g)
				if err != nil {
					return err
				}
				defer j.Close()
				id, err := matchRunID(args[0], stateRunIDs(st))
				if err != nil {
					return err
				}
				r := st.Runs[id]
				t := r.Tasks[args[1]]
				if t == nil || t.Status != engine.InDoubt {
					state := "pending"
					if t != nil {
						state = t.Status.String()
					}
					return exitf(ExitUsage, "task %s of run %s is %s, not in doubt", args[1], r.ID, state)
				}
				note := *reason
				if note == "" {
					note = "resolved by operator"
				}
				ev := &journal.Event{Type: journal.TaskResolved, Time: time.Now().UnixNano(), Run: r.ID,
					Task: args[1], Attempt: t.Attempt, Status: status, Reason: note}
				if err := j.Append(ev); err != nil {
					return withCode(ExitInternal, err)
				}
				fmt.Fprintf(m.Stdout, "task %s of run %s resolved as %s; continue with: picoflow resume %s\n", args[1], r.ID, status, r.ID)
				return nil
			}
		},
	})
}
