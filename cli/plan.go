package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/picoflow/picoflow/cli/daemon"
	"github.com/picoflow/picoflow/engine/schedule"
	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name:    "plan",
		args:    "[WORKFLOW|FILE]",
		summary: "print the next fire times of scheduled workflows, and pending catch-up runs",
		long: `Prints, for every workflow in the workflows directory (or the one named,
or the file given), the next --count fire times in its time zone, the last
fire the journal records, and the catch-up runs a daemon starting now would
start. Runs nothing and writes nothing: the journal is read, not opened, so
plan works while the daemon runs.`,
		setup: func(fs *pflag.FlagSet) runFunc {
			count := fs.IntP("count", "n", 5, "fire times per workflow")
			asJSON := fs.Bool("json", false, "print the plan as JSON")
			dir := fs.String("workflows", "", "directory of workflow files (default: as for picoflow daemon)")
			return func(ctx context.Context, m *Main, g *globals, args []string) error {
				if len(args) > 1 {
					return exitf(ExitUsage, "plan takes at most one WORKFLOW name or FILE")
				}
				if *count < 1 {
					return exitf(ExitUsage, "--count must be at least 1")
				}
				h := home(g.home)
				wfs, err := m.loadWorkflows(g, args, *dir)
				if err != nil {
					return err
				}
				st, err := h.replayAll(nil)
				if err != nil {
					return withCode(ExitInternal, fmt.Errorf("read journal: %w", err))
				}
				var plans []plan
				now := time.Now()
				for _, wf := range wfs {
					p, err := makePlan(wf, st.LastFire[wf.Name], now, *count)
					if err != nil {
						return withCode(ExitUsage, err)
					}
					plans = append(plans, p)
				}
				if *asJSON {
					enc := json.NewEncoder(m.Stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(plans)
				}
				printPlans(m.Stdout, plans)
				return nil
			}
		},
	})
}

// plan is one workflow's schedule as picoflow plan shows it.
type plan struct {
	Workflow  string      `json:"workflow"`
	File      string      `json:"file"`
	Schedule  string      `json:"schedule,omitempty"`
	Timezone  string      `json:"timezone,omitempty"`
	Overlap   string      `json:"overlap"`
	Catchup   string      `json:"catchup"`
	Window    string      `json:"catchup_window,omitempty"`
	LastFire  *time.Time  `json:"last_fire,omitempty"`
	Missed    []time.Time `json:"missed,omitempty"`       // oldest and newest missed fire
	CatchupAt []time.Time `json:"catchup_runs,omitempty"` // fires a daemon starting now would run
	Next      []time.Time `json:"next,omitempty"`         // the next fires
	wildcard  bool
}

func makePlan(wf *workflow.Workflow, last, now time.Time, count int) (plan, error) {
	job, err := daemon.JobOf(wf)
	if err != nil {
		return plan{}, err
	}
	p := plan{Workflow: wf.Name, File: wf.Source, Overlap: job.Overlap.String(), Catchup: job.Catchup.Policy.String()}
	if job.Catchup.Window > 0 {
		p.Window = fmtWindow(job.Catchup.Window)
	}
	s := job.Schedule
	if !last.IsZero() {
		l := last
		if s != nil {
			l = l.In(s.Location())
		}
		p.LastFire = &l
	}
	if s == nil {
		return p, nil
	}
	p.Schedule, p.Timezone = wf.Schedule, s.Location().String()
	if s.Location() == time.Local {
		zone, _ := now.Zone()
		p.Timezone = "local time (" + zone + ")"
	}
	m := schedule.ComputeMissed(s, last, now, now, job.Catchup)
	if !m.Latest.IsZero() {
		p.Missed = []time.Time{m.First.In(s.Location()), m.Latest.In(s.Location())}
		for _, t := range m.Run {
			p.CatchupAt = append(p.CatchupAt, t.In(s.Location()))
		}
		last = m.Latest
	}
	anchor := last
	if anchor.IsZero() {
		anchor = now.Truncate(time.Second)
	}
	for t := s.After(anchor, now); !t.IsZero() && len(p.Next) < count; t = s.Next(t) {
		p.Next = append(p.Next, t)
	}
	return p, nil
}

func printPlans(w io.Writer, plans []plan) {
	const layout = "2006-01-02 15:04:05 MST"
	for i, p := range plans {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if p.Schedule == "" {
			fmt.Fprintf(w, "%s  (%s)  no schedule: runs only when triggered\n", p.Workflow, p.File)
			continue
		}
		pol := "overlap " + p.Overlap + ", catch-up " + p.Catchup
		if p.Window != "" {
			pol += " within " + p.Window
		}
		fmt.Fprintf(w, "%s  %q in %s  (%s)\n", p.Workflow, p.Schedule, p.Timezone, pol)
		if p.LastFire != nil {
			fmt.Fprintf(w, "  last fire  %s\n", p.LastFire.Format(layout))
		}
		if len(p.Missed) == 2 {
			fmt.Fprintf(w, "  missed     %s .. %s\n", p.Missed[0].Format(layout), p.Missed[1].Format(layout))
			if len(p.CatchupAt) == 0 {
				fmt.Fprintf(w, "  catch-up   none (a daemon starting now journals them as skipped)\n")
			}
			for j, t := range p.CatchupAt {
				label := ""
				if j == 0 {
					label = "catch-up"
				}
				fmt.Fprintf(w, "  %-9s  %s  (runs when the daemon starts)\n", label, t.Format(layout))
			}
		}
		for j, t := range p.Next {
			label := ""
			if j == 0 {
				label = "next"
			}
			fmt.Fprintf(w, "  %-9s  %s\n", label, t.Format(layout))
		}
	}
}

// fmtWindow formats a duration without trailing zero units: 6h, 90m, 1h30m.
func fmtWindow(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// loadDir loads every workflow file of dir over base; invalid files are
// reported on stderr and left out.
func loadDir(m *Main, dir string, base workflow.Config) ([]*workflow.Workflow, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, exitf(ExitUsage, "workflows directory: %v (pass --workflows DIR)", err)
	}
	var out []*workflow.Workflow
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") || !(strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
			continue
		}
		wf, err := workflow.LoadWith(filepath.Join(dir, n), base)
		if err != nil {
			fmt.Fprintf(m.Stderr, "picoflow: skipping invalid %s:\n%v\n", filepath.Join(dir, n), err)
			continue
		}
		out = append(out, wf)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// loadWorkflows loads the workflow that args names — a FILE, or a
// WORKFLOW name looked up in dir (default: the daemon's workflows
// directory) — or, without args, every workflow of dir.
func (m *Main) loadWorkflows(g *globals, args []string, dir string) ([]*workflow.Workflow, error) {
	if len(args) == 1 && isFileArg(args[0]) {
		wf, err := workflow.LoadWith(args[0], workflowBase(g.cfg))
		if err != nil {
			return nil, invalid(m, err)
		}
		return []*workflow.Workflow{wf}, nil
	}
	if dir == "" {
		dir = firstNonEmpty(globalConfig(g).Paths.WorkflowsDir, defaultWorkflowsDir(home(g.home)))
	}
	wfs, err := loadDir(m, dir, workflowBase(g.cfg))
	if err != nil {
		return nil, err
	}
	if len(args) == 1 {
		if wfs = pick(wfs, args[0]); wfs == nil {
			return nil, exitf(ExitNotFound, "no workflow %q in %s", args[0], dir)
		}
	}
	return wfs, nil
}

func pick(wfs []*workflow.Workflow, name string) []*workflow.Workflow {
	for _, wf := range wfs {
		if wf.Name == name {
			return []*workflow.Workflow{wf}
		}
	}
	return nil
}

// isFileArg tells a workflow file from a workflow name.
func isFileArg(s string) bool {
	return strings.ContainsRune(s, '/') || strings.HasSuffix(s, ".yaml") || strings.HasSuffix(s, ".yml")
}
