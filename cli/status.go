package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/projector"
	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name:    "status",
		summary: "show live runs with their tasks, CPU and memory, and the latest finished runs",
		long: `Shows every run that started and has not finished — "running" while a
process holds its workflow, else "interrupted" (picoflow run or resume
continues it) — with each task's state (pending, running, retrying, done,
failed, skipped, in_doubt), elapsed time and, for running tasks, the CPU
and resident memory of their process group; then the 5 most recent
finished runs.

--watch redraws every second until Ctrl-C; with --json it prints one JSON
document per line each second.`,
		setup: func(fs *pflag.FlagSet) runFunc {
			watch := fs.Bool("watch", false, "redraw every second until interrupted")
			asJSON := fs.Bool("json", false, "print the status as JSON")
			return func(ctx context.Context, m *Main, g *globals, args []string) error {
				if len(args) != 0 {
					return exitf(ExitUsage, "status takes no arguments")
				}
				return m.status(ctx, g, *watch, *asJSON)
			}
		},
	})
}

// statusRecent is how many finished runs status shows.
const statusRecent = 5

func (m *Main) status(ctx context.Context, g *globals, watch, asJSON bool) error {
	db, err := m.queryProjection(ctx, g)
	if err != nil {
		return err
	}
	defer db.Close()
	h := home(g.home)
	ps := newProcSampler()
	tty := isTerminal(m.Stdout)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for first := true; ; first = false {
		if !first {
			if _, err := h.catchUp(ctx, db); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return withCode(ExitInternal, err)
			}
		}
		wait := time.Duration(0)
		if first {
			wait = 250 * time.Millisecond // a one-shot status measures CPU over this
		}
		st, err := collectStatus(ctx, db, h, ps, wait, workflowBase(g.cfg), m.now)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return withCode(ExitInternal, err)
		}
		switch {
		case asJSON && watch:
			b, _ := json.Marshal(st)
			fmt.Fprintf(m.Stdout, "%s\n", b)
		case asJSON:
			if err := writeJSON(m.Stdout, st); err != nil {
				return err
			}
		default:
			var b strings.Builder
			if watch && tty {
				b.WriteString("\x1b[H\x1b[2J") // home, clear screen
			}
			writeStatus(&b, st, m.zone())
			if watch && !tty {
				b.WriteString("\n")
			}
			io.WriteString(m.Stdout, b.String())
		}
		if !watch {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// statusJSON is the output of status --json.
type statusJSON struct {
	Now    *string          `json:"now"`
	Live   []liveRunJSON    `json:"live"`
	Recent []runSummaryJSON `json:"recent"`
}

type liveRunJSON struct {
	RunID     string         `json:"run_id"`
	Workflow  string         `json:"workflow"`
	State     string         `json:"state"` // running or interrupted
	StartedAt *string        `json:"started_at"`
	ElapsedMS int64          `json:"elapsed_ms"`
	Trigger   string         `json:"trigger"`
	Resumes   int            `json:"resumes"`
	Note      string         `json:"note,omitempty"` // a cancel in progress: who asked and why
	Tasks     []liveTaskJSON `json:"tasks"`
}

type liveTaskJSON struct {
	Name      string  `json:"name"`
	State     string  `json:"state"`
	Attempt   int     `json:"attempt"`
	StartedAt *string `json:"started_at"` // of the latest attempt
	// ElapsedMS is the running attempt's time so far, or a finished task's
	// duration; null for tasks that did not run.
	ElapsedMS  *int64   `json:"elapsed_ms"`
	RetryAt    *string  `json:"retry_at,omitempty"`
	ExitCode   *int     `json:"exit_code"`
	PGID       int      `json:"pgid,omitempty"`
	Procs      int      `json:"procs,omitempty"`
	CPUPercent *float64 `json:"cpu_percent"`
	RSSBytes   *int64   `json:"rss_bytes"`
	Note       string   `json:"note,omitempty"` // error or reason
}

// taskState maps a task's status to what status shows.
func taskState(status string, attempts int, live bool) string {
	switch status {
	case "success":
		return "done"
	case "failed", "timeout":
		return "failed"
	case "running":
		if !live {
			return "interrupted"
		}
	case "pending":
		// An attempt a shutdown stopped is journaled interrupted and the
		// task is pending again: until a resume starts it, it was
		// interrupted.
		if !live && attempts > 0 {
			return "interrupted"
		}
	}
	return status
}

func collectStatus(ctx context.Context, db *projector.DB, h home, ps *procSampler, wait time.Duration, base workflow.Config, clock func() time.Time) (*statusJSON, error) {
	live, err := db.Live(ctx)
	if err != nil {
		return nil, err
	}
	recent, err := db.Recent(ctx, statusRecent)
	if err != nil {
		return nil, err
	}
	now := clock()
	st := &statusJSON{Now: timeJSON(now), Live: []liveRunJSON{}, Recent: []runSummaryJSON{}}
	held := map[string]bool{}
	pgids := map[int]bool{}
	for i := range live {
		r := &live[i]
		state := h.displayStatus(r, held)
		lr := liveRunJSON{RunID: r.ID, Workflow: r.Workflow, State: state, StartedAt: timeJSON(r.Started),
			ElapsedMS: elapsedMS(now, r.Started), Trigger: r.Trigger, Resumes: r.Resumes}
		if strings.HasPrefix(r.Reason, "canceling:") { // the projector's mark of a run_canceled
			lr.Note = r.Reason
		}
		for _, t := range orderTasks(ctx, db, r, base) {
			lt := liveTaskJSON{Name: t.Name, State: taskState(t.Status, t.Attempts, state == "running"), Attempt: t.Attempts,
				StartedAt: timeJSON(t.AttemptStarted), ExitCode: t.ExitCode, Note: t.Error}
			if lt.Note == "" {
				lt.Note = t.Reason
			}
			switch {
			case lt.State == "running":
				e := elapsedMS(now, t.AttemptStarted)
				lt.ElapsedMS = &e
				if t.PGID > 0 {
					lt.PGID = t.PGID
					pgids[t.PGID] = true
				}
			case lt.State == "retrying":
				lt.RetryAt = timeJSON(t.RetryAt)
			case !t.Finished.IsZero() && !t.Started.IsZero():
				d := t.DurationMS
				lt.ElapsedMS = &d
			}
			lr.Tasks = append(lr.Tasks, lt)
		}
		st.Live = append(st.Live, lr)
	}
	usage := ps.sample(ctx, pgids, wait)
	for i := range st.Live {
		for k := range st.Live[i].Tasks {
			t := &st.Live[i].Tasks[k]
			u, ok := usage[t.PGID]
			if t.PGID == 0 || !ok {
				continue
			}
			t.Procs, t.RSSBytes = u.Procs, &u.RSS
			if u.CPUPercent >= 0 {
				c := float64(int(u.CPUPercent*10+0.5)) / 10
				t.CPUPercent = &c
			}
		}
	}
	for i := range recent {
		r := &recent[i]
		st.Recent = append(st.Recent, runSummary(r, r.Status))
	}
	return st, nil
}

// orderTasks returns a live run's tasks in the order of its definition,
// with the tasks the journal has not mentioned yet as pending. The
// definition is parsed over base, as the run did; without a readable one,
// the journal's order.
func orderTasks(ctx context.Context, db *projector.DB, r *projector.Run, base workflow.Config) []projector.Task {
	names, err := definedTasks(ctx, db, r, base)
	if err != nil {
		return r.Tasks
	}
	return completeTasks(r.Tasks, names, "pending")
}

// definedTasks returns the task names of a run's recorded definition, in
// definition order.
func definedTasks(ctx context.Context, db *projector.DB, r *projector.Run, base workflow.Config) ([]string, error) {
	def, err := db.Definition(ctx, r.DefHash)
	if err != nil {
		return nil, err
	}
	wf, err := workflow.ParseWith(r.Source, []byte(def), base)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(wf.Tasks))
	for i, t := range wf.Tasks {
		names[i] = t.Name
	}
	return names, nil
}

// completeTasks returns tasks in the order of names, with a task of names
// that has no row (it never started) added with status missing.
func completeTasks(tasks []projector.Task, names []string, missing string) []projector.Task {
	byName := map[string]projector.Task{}
	for _, t := range tasks {
		byName[t.Name] = t
	}
	out := make([]projector.Task, 0, len(names))
	for _, n := range names {
		t, ok := byName[n]
		if !ok {
			t = projector.Task{Name: n, Status: missing}
		}
		delete(byName, n)
		out = append(out, t)
	}
	for _, t := range tasks { // tasks of the journal the definition lacks
		if _, ok := byName[t.Name]; ok {
			out = append(out, t)
		}
	}
	return out
}

func writeStatus(w io.Writer, st *statusJSON, loc *time.Location) {
	if len(st.Live) == 0 {
		fmt.Fprintln(w, "no live runs")
	} else if !haveProc() {
		fmt.Fprintln(w, "note: CPU and RSS of tasks come from /proc, which this system lacks (Linux only); not shown")
	}
	for _, r := range st.Live {
		done := 0
		for _, t := range r.Tasks {
			if t.State == "done" || t.State == "skipped" {
				done++
			}
		}
		started, _ := time.Parse(time.RFC3339Nano, *r.StartedAt)
		fmt.Fprintf(w, "%s  %s  %s  started %s  elapsed %s  %d/%d tasks done", r.RunID, r.Workflow, r.State,
			started.In(loc).Format(time.DateTime), fmtDuration(r.ElapsedMS), done, len(r.Tasks))
		if r.Resumes > 0 {
			fmt.Fprintf(w, "  resumed %d×", r.Resumes)
		}
		fmt.Fprintln(w)
		if r.Note != "" {
			fmt.Fprintf(w, "    %s\n", r.Note)
		}
		if r.State == "interrupted" {
			fmt.Fprintf(w, "    no process runs it: picoflow resume %s continues it\n", r.RunID)
		}
		t := &table{indent: "    "}
		for _, k := range r.Tasks {
			elapsed, attempt, res := "", "", ""
			if k.ElapsedMS != nil {
				elapsed = fmtDuration(*k.ElapsedMS)
			}
			if k.RetryAt != nil {
				at, _ := time.Parse(time.RFC3339Nano, *k.RetryAt)
				elapsed = "retry at " + at.In(loc).Format(time.TimeOnly)
			}
			if k.Attempt > 1 {
				attempt = "attempt " + strconv.Itoa(k.Attempt)
			}
			if k.RSSBytes != nil {
				res = "rss " + fmtBytes(*k.RSSBytes)
				if k.CPUPercent != nil {
					res = fmt.Sprintf("cpu %.1f%%  %s", *k.CPUPercent, res)
				}
			}
			t.add(k.Name, k.State, elapsed, attempt, res, k.Note)
		}
		t.write(w)
	}
	fmt.Fprintln(w)
	if len(st.Recent) == 0 {
		fmt.Fprintln(w, "no finished runs")
		return
	}
	fmt.Fprintln(w, "RECENT")
	t := &table{}
	t.add("RUN", "WORKFLOW", "STATUS", "STARTED", "DURATION", "TRIGGER")
	for _, r := range st.Recent {
		started, _ := time.Parse(time.RFC3339Nano, *r.StartedAt)
		var took int64
		if r.DurationMS != nil {
			took = *r.DurationMS
		}
		row := []string{r.RunID, r.Workflow, r.Status, started.In(loc).Format(time.DateTime), fmtDuration(took), r.Trigger}
		if r.Reason != "" {
			row = append(row, r.Reason) // who canceled it, and why
		}
		t.add(row...)
	}
	t.write(w)
}

// elapsedMS is the time from start to now, never negative: after a reboot
// with the clock behind (no RTC), now may be before a recorded start.
func elapsedMS(now, start time.Time) int64 { return max(now.Sub(start).Milliseconds(), 0) }
