package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/projector"
	"github.com/spf13/pflag"
)

func init() {
	c := &command{
		name:    "list",
		args:    "",
		summary: "list the workflows: schedule, next fire, last run (alias ls)",
		long: `Prints one line per workflow of the workflows directory, soonest next fire
first (like systemctl list-timers): its schedule and time zone, the next
fire, the status of its newest run with its start and duration, and its
file. It reads the workflow files and the home (the journals for the last
fire, the history database for the last run), so it gives the same answer
with or without a daemon running, and writes nothing but the history
database's catch-up.

  picoflow list
  picoflow ls --workflows /etc/picoflow/workflows --json`,
		setup: func(fs *pflag.FlagSet) runFunc {
			asJSON := fs.Bool("json", false, "print a JSON array, one object per workflow")
			dir := fs.String("workflows", "", "directory of workflow files (default: as for picoflow daemon)")
			return func(ctx context.Context, m *Main, g *globals, args []string) error {
				if len(args) > 0 {
					return exitf(ExitUsage, "list takes no arguments (see --workflows)")
				}
				entries, err := m.list(ctx, g, *dir)
				if err != nil {
					return err
				}
				if *asJSON {
					return writeJSON(m.Stdout, entries)
				}
				writeList(m.Stdout, entries, m.now(), m.zone())
				return nil
			}
		},
	}
	register(c)
	alias := *c
	alias.name, alias.summary, alias.long = "ls", "alias of picoflow list", ""
	register(&alias)
}

// listEntry is one workflow as list shows it.
type listEntry struct {
	Workflow string     `json:"workflow"`
	Schedule string     `json:"schedule,omitempty"`
	Timezone string     `json:"timezone,omitempty"`
	Next     *time.Time `json:"next"`
	LastRun  *listRun   `json:"last_run"`
	File     string     `json:"file"`
}

// listRun is the newest run of a workflow.
type listRun struct {
	RunID      string    `json:"run_id"`
	Status     string    `json:"status"`
	Trigger    string    `json:"trigger"`
	StartedAt  time.Time `json:"started_at"`
	DurationMS *int64    `json:"duration_ms"` // null while it has not finished
}

func (m *Main) list(ctx context.Context, g *globals, dir string) ([]listEntry, error) {
	wfs, err := m.loadWorkflows(g, nil, dir)
	if err != nil {
		return nil, err
	}
	h := home(g.home)
	last := map[string]*listRun{}
	lastFire := map[string]time.Time{}
	if _, err := os.Stat(string(h)); err == nil {
		st, err := h.replayAll(nil)
		if err != nil {
			return nil, withCode(ExitInternal, fmt.Errorf("read journal: %w", err))
		}
		lastFire = st.LastFire
		if last, err = m.lastRuns(ctx, g); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, withCode(ExitInternal, err)
	}
	now := m.now()
	out := make([]listEntry, 0, len(wfs))
	for _, wf := range wfs {
		e, err := listOne(wf, lastFire[wf.Name], now)
		if err != nil {
			return nil, err
		}
		e.LastRun = last[wf.Name]
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool { // soonest first, unscheduled last
		a, b := out[i].Next, out[j].Next
		return a != nil && (b == nil || a.Before(*b))
	})
	return out, nil
}

func listOne(wf *workflow.Workflow, lastFire, now time.Time) (listEntry, error) {
	e := listEntry{Workflow: wf.Name, File: wf.Source}
	p, err := makePlan(wf, lastFire, now, 1)
	if err != nil {
		return e, withCode(ExitUsage, err)
	}
	e.Schedule, e.Timezone = p.Schedule, p.Timezone
	switch {
	case len(p.CatchupAt) > 0: // a daemon starting now runs it at once
		e.Next = &now
	case len(p.Next) > 0:
		e.Next = &p.Next[0]
	}
	return e, nil
}

// lastRuns returns the newest run of each workflow in the history.
func (m *Main) lastRuns(ctx context.Context, g *globals) (map[string]*listRun, error) {
	db, err := m.queryProjection(ctx, g)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	runs, err := db.History(ctx, projector.Filter{PerWorkflow: 1})
	if err != nil {
		return nil, withCode(ExitInternal, err)
	}
	h, held := home(g.home), map[string]bool{}
	out := make(map[string]*listRun, len(runs))
	for i := range runs {
		r := &runs[i]
		lr := &listRun{RunID: r.ID, Status: h.displayStatus(r, held), Trigger: r.Trigger, StartedAt: r.Started}
		if !r.Finished.IsZero() {
			lr.DurationMS = &r.DurationMS
		}
		out[r.Workflow] = lr
	}
	return out, nil
}

func writeList(w io.Writer, entries []listEntry, now time.Time, loc *time.Location) {
	const layout = "2006-01-02 15:04:05 MST"
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKFLOW\tSCHEDULE\tNEXT\tLEFT\tLAST RUN\tSTARTED\tDURATION\tFILE")
	for _, e := range entries {
		sched, next, left := "-", "-", "-"
		if e.Schedule != "" {
			sched = fmt.Sprintf("%s (%s)", e.Schedule, e.Timezone)
		}
		if e.Next != nil {
			next, left = e.Next.In(loc).Format(layout), age(e.Next.Sub(now))
		}
		status, started, dur := "-", "-", "-"
		if r := e.LastRun; r != nil {
			status, started = r.Status, r.StartedAt.In(loc).Format(layout)+" ("+age(now.Sub(r.StartedAt))+" ago)"
			if r.DurationMS != nil {
				dur = ms(*r.DurationMS)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Workflow, sched, next, left, status, started, dur, e.File)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d workflow(s).\n", len(entries))
}

// age is a rounded, short duration: 45s, 12m, 3h5m, 2d4h.
func age(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}
