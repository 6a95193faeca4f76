package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/projector"
	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name:    "history",
		args:    "[WORKFLOW]",
		summary: "list past runs with status and duration (newest first)",
		long: `Lists runs from HOME/picoflow.db, a projection of the journal that is
brought up to date first. Without --limit, the 10 newest runs of each
workflow (or of WORKFLOW); --limit N shows the N newest runs in all. A run
that has not finished shows as running while a process holds its
workflow, else as interrupted. --tasks lists every task of the run's
definition, those that never started too.

DATE is 2026-11-25 (midnight, local time; for --until the end of that
day), an RFC 3339 time (2026-11-25T08:00:00Z), or an age: 7d, 12h, 30m.

  picoflow history
  picoflow history backup --since 7d --status failed --tasks
  picoflow history --json --limit 0 --since 2026-11-01 --until 2026-11-30`,
		setup: func(fs *pflag.FlagSet) runFunc {
			since := fs.String("since", "", "only runs started at or after DATE")
			until := fs.String("until", "", "only runs started before DATE")
			status := fs.String("status", "", "only runs with this status: success, failed, canceled, running or interrupted")
			limit := fs.Int("limit", 0, "the newest N runs in all; 0 for all (default: the 10 newest of each workflow)")
			tasks := fs.Bool("tasks", false, "show each run's tasks with their timing")
			asJSON := fs.Bool("json", false, "print a JSON array of runs (with tasks)")
			return func(ctx context.Context, m *Main, g *globals, args []string) error {
				if len(args) > 1 {
					return exitf(ExitUsage, "history takes at most one WORKFLOW")
				}
				f := projector.Filter{Limit: *limit, Tasks: *tasks || *asJSON}
				if !fs.Changed("limit") {
					f.PerWorkflow = defaultHistoryPerWorkflow
				}
				if len(args) == 1 {
					f.Workflow = args[0]
				}
				if *limit < 0 {
					return exitf(ExitUsage, "--limit must be 0 (all) or more, not %d", *limit)
				}
				switch *status {
				case "", projector.RunSuccess, projector.RunFailed, projector.RunCanceled, projector.RunDamaged:
					f.Status = *status
				case "running", "interrupted":
					// The database cannot tell them apart: whether a process
					// holds the workflow can.
					f.Status = projector.RunRunning
					want, h, held := *status, home(g.home), map[string]bool{}
					f.Keep = func(r *projector.Run) bool { return h.displayStatus(r, held) == want }
				default:
					return exitf(ExitUsage, "--status must be success, failed, canceled, damaged, running or interrupted, not %q%s", *status,
						suggest(*status, []string{"success", "failed", "canceled", "damaged", "running", "interrupted"}))
				}
				now, loc := m.now(), m.zone()
				var err error
				if *since != "" {
					if f.Since, err = parseWhen(*since, now, loc, false); err != nil {
						return exitf(ExitUsage, "--since: %v", err)
					}
				}
				if *until != "" {
					if f.Until, err = parseWhen(*until, now, loc, true); err != nil {
						return exitf(ExitUsage, "--until: %v", err)
					}
				}
				return m.history(ctx, g, f, *asJSON)
			}
		},
	})
}

// defaultHistoryPerWorkflow is how many runs of each workflow history
// shows without --limit.
const defaultHistoryPerWorkflow = 10

func (m *Main) history(ctx context.Context, g *globals, f projector.Filter, asJSON bool) error {
	db, err := m.queryProjection(ctx, g)
	if err != nil {
		return err
	}
	defer db.Close()
	h, held := home(g.home), map[string]bool{}
	tc := &taskCompleter{ctx: ctx, db: db, base: workflowBase(g.cfg), names: map[string][]string{}}
	if asJSON {
		return streamHistoryJSON(ctx, m.Stdout, db, f, h, held, tc)
	}
	if err := writeHistory(ctx, m.Stdout, db, f, m.zone(), h, held, tc); err != nil {
		return withCode(ExitInternal, err)
	}
	return nil
}

// writeHistory prints the runs f selects as a table and, with f.Tasks,
// each run's tasks under it. The runs are read first, without tasks, to
// size the columns; the tasks are then streamed a page of runs at a time.
func writeHistory(ctx context.Context, w io.Writer, db *projector.DB, f projector.Filter, loc *time.Location,
	h home, held map[string]bool, tc *taskCompleter) error {
	withTasks := f.Tasks
	f.Tasks = false
	runs, err := db.History(ctx, f)
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		fmt.Fprintln(w, "no runs match")
		return nil
	}
	cells := func(r *projector.Run) []string {
		dur := "-"
		if !r.Finished.IsZero() {
			dur = fmtDuration(r.DurationMS)
		}
		row := []string{r.ID, r.Workflow, h.displayStatus(r, held), r.Started.In(loc).Format(time.DateTime), dur, r.Trigger}
		if r.Status == "canceled" || strings.HasPrefix(r.Reason, "canceling:") {
			row = append(row, r.Reason) // who canceled it, and why
		}
		return row
	}
	t := &table{}
	t.add("RUN", "WORKFLOW", "STATUS", "STARTED", "DURATION", "TRIGGER")
	for i := range runs {
		t.add(cells(&runs[i])...)
	}
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	if !withTasks {
		t.write(bw)
		return nil
	}
	// The runs are listed again, with their tasks, one at a time: a run's
	// line is its aligned line from the table, unless it changed since.
	lines := t.lines()
	fmt.Fprintln(bw, lines[0])
	aligned := make(map[string]string, len(runs))
	for i := range runs {
		aligned[strings.Join(cells(&runs[i]), "\t")] = lines[i+1]
	}
	f.Tasks = true
	return db.EachRun(ctx, f, func(r *projector.Run) error {
		tc.complete(r)
		c := cells(r)
		line, ok := aligned[strings.Join(c, "\t")]
		if !ok {
			line = strings.Join(c, "  ")
		}
		fmt.Fprintln(bw, line)
		writeTasks(bw, r.Tasks, loc, h.displayStatus(r, held) == "interrupted")
		return nil
	})
}

// writeTasks writes the task lines of one run of history --tasks.
func writeTasks(w io.Writer, tasks []projector.Task, loc *time.Location, interrupted bool) {
	t := &table{indent: "    "}
	for _, k := range tasks {
		attempts, code, start, dur := "", "", "", ""
		switch k.Attempts {
		case 0:
		case 1:
			attempts = "1 attempt"
		default:
			attempts = strconv.Itoa(k.Attempts) + " attempts"
			if len(k.AttemptDurationsMS) > 1 {
				durs := make([]string, len(k.AttemptDurationsMS))
				for i, d := range k.AttemptDurationsMS {
					durs[i] = fmtDuration(d)
				}
				attempts += " (" + strings.Join(durs, ", ") + ")"
			}
		}
		if k.ExitCode != nil {
			code = "exit " + strconv.Itoa(*k.ExitCode)
		}
		if !k.Started.IsZero() {
			start = k.Started.In(loc).Format(time.TimeOnly)
		}
		if !k.Finished.IsZero() && !k.Started.IsZero() {
			dur = fmtDuration(k.DurationMS)
		}
		note := k.Error
		if note == "" {
			note = k.Reason
		}
		t.add(k.Name, historyTaskStatus(k.Status, k.Attempts, interrupted), attempts, code, start, dur, note)
	}
	t.write(w)
}

// runSummaryJSON is the one JSON shape of a run: history --json and the
// web API (/api/runs) print it with the run's tasks (runJSON), status
// --json lists recent runs with it. duration_ms is null until the run ended.
type runSummaryJSON struct {
	RunID      string  `json:"run_id"`
	Workflow   string  `json:"workflow"`
	Status     string  `json:"status"`
	StartedAt  *string `json:"started_at"`
	FinishedAt *string `json:"finished_at"`
	DurationMS *int64  `json:"duration_ms"`
	Trigger    string  `json:"trigger"`
	RerunOf    string  `json:"rerun_of,omitempty"` // trigger rerun: the run it reran
	Reason     string  `json:"reason,omitempty"`   // a canceled run: who asked and why
}

func runSummary(r *projector.Run, status string) runSummaryJSON {
	j := runSummaryJSON{RunID: r.ID, Workflow: r.Workflow, Status: status,
		StartedAt: timeJSON(r.Started), FinishedAt: timeJSON(r.Finished), Trigger: r.Trigger, RerunOf: r.RerunOf}
	if !r.Finished.IsZero() {
		d := r.DurationMS
		j.DurationMS = &d
	}
	if r.Status == "canceled" || strings.HasPrefix(r.Reason, "canceling:") {
		j.Reason = r.Reason
	}
	return j
}

// runJSON is one run of history --json: the summary and the tasks.
type runJSON struct {
	runSummaryJSON
	Tasks []taskJSON `json:"tasks"`
}

type taskJSON struct {
	Name               string  `json:"name"`
	Status             string  `json:"status"`
	Attempts           int     `json:"attempts"`
	ExitCode           *int    `json:"exit_code"`
	StartedAt          *string `json:"started_at"`
	FinishedAt         *string `json:"finished_at"`
	DurationMS         *int64  `json:"duration_ms"`
	AttemptDurationsMS []int64 `json:"attempt_durations_ms"`
	ReusedFrom         string  `json:"reused_from,omitempty"`
}

// streamHistoryJSON writes the runs f selects as a JSON array, one run
// at a time (an export of a long history stays small in memory). The
// output is what json.Encoder with a two-space indent writes.
func streamHistoryJSON(ctx context.Context, w io.Writer, db *projector.DB, f projector.Filter, h home, held map[string]bool,
	tc *taskCompleter) error {
	bw := bufio.NewWriter(w)
	n := 0
	err := db.EachRun(ctx, f, func(r *projector.Run) error {
		tc.complete(r)
		b, err := json.MarshalIndent(toRunJSON(r, h.displayStatus(r, held)), "  ", "  ")
		if err != nil {
			return err
		}
		sep := ",\n  "
		if n == 0 {
			sep = "[\n  "
		}
		n++
		bw.WriteString(sep)
		_, err = bw.Write(b)
		return err
	})
	if err != nil {
		return withCode(ExitInternal, err)
	}
	if n == 0 {
		bw.WriteString("[]\n")
	} else {
		bw.WriteString("\n]\n")
	}
	return bw.Flush()
}

func toRunJSON(r *projector.Run, status string) runJSON {
	j := runJSON{runSummaryJSON: runSummary(r, status), Tasks: make([]taskJSON, 0, len(r.Tasks))}
	for k := range r.Tasks {
		t := &r.Tasks[k]
		tj := taskJSON{Name: t.Name, Status: historyTaskStatus(t.Status, t.Attempts, status == "interrupted"), Attempts: t.Attempts,
			ExitCode: t.ExitCode, StartedAt: timeJSON(t.Started), FinishedAt: timeJSON(t.Finished),
			AttemptDurationsMS: t.AttemptDurationsMS, ReusedFrom: t.ReusedFrom}
		if tj.AttemptDurationsMS == nil {
			tj.AttemptDurationsMS = []int64{}
		}
		if !t.Finished.IsZero() && !t.Started.IsZero() {
			tj.DurationMS = &t.DurationMS
		}
		j.Tasks = append(j.Tasks, tj)
	}
	return j
}

// taskCompleter adds to a run the tasks of its recorded definition that
// have no row because they never started: pending while the run is
// unfinished, canceled once it ended without them. Definitions are parsed
// once per hash.
type taskCompleter struct {
	ctx   context.Context
	db    *projector.DB
	base  workflow.Config
	names map[string][]string // by definition hash; nil when it does not parse
}

func (c *taskCompleter) complete(r *projector.Run) {
	names, ok := c.names[r.DefHash]
	if !ok {
		names, _ = definedTasks(c.ctx, c.db, r, c.base)
		c.names[r.DefHash] = names
	}
	if names == nil {
		return
	}
	missing := "pending"
	if !r.Finished.IsZero() {
		missing = "canceled"
	}
	r.Tasks = completeTasks(r.Tasks, names, missing)
}

// historyTaskStatus is a task's status as history shows it: a task that
// was running when its run was interrupted is interrupted, whether PicoFlow
// died under it (running) or a shutdown stopped it (journaled interrupted:
// pending again, with an attempt behind it).
func historyTaskStatus(status string, attempts int, interrupted bool) string {
	if interrupted && (status == "running" || status == "pending" && attempts > 0) {
		return "interrupted"
	}
	return status
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
