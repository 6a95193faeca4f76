package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/picoflow/picoflow/cli/dag"
	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/journal"
)

type kv struct{ Key, Value string }

type runPage struct {
	page
	ID, Workflow, Trigger, Status, Started, Duration, Source, DefHash string
	RerunOf                                                           string // a rerun: the run it reran
	Params                                                            []kv
	Tasks                                                             []taskRow
	Travel                                                            travel
	Legend                                                            []string // the task statuses shown

	// Drawn while the page is written, not held as text: the DAG's nodes,
	// the Gantt's inputs and the journal rows.
	nodes       []dag.Node
	names       []string
	events      []*journal.Event
	shown       int
	start, asOf time.Time
}

// travel is the time-travel bar: the entry the page is folded to, its
// neighbours among the run's entries, and the slider's range.
type travel struct {
	Seq, First, Last, Prev, Next uint64
	Latest                       bool // folded to the run's newest entry
	Step, Steps                  int  // 1-based position among the run's entries
	AsOf                         string
}

type taskRow struct {
	Name, Status, Exit, Duration, Note, LogHref string
	Attempts                                    int
	Outputs                                     []kv
}

type eventRow struct {
	Seq                               uint64
	Offset, Task, Label, Exit, Detail string
	Attempt                           int
	Current, Later                    bool
	Href                              string
}

// run serves /runs/RUN_ID[?seq=N].
func (s *Server) run(w http.ResponseWriter, r *http.Request) {
	seq, err := seqParam(r)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	rn, err := s.opts.Source.Run(r.Context(), r.PathValue("run"), seq)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	p := s.runPage(rn)
	s.write(w, r, http.StatusOK, func(m *markup) { m.runPage(p) })
}

func (s *Server) runPage(rn *Run) runPage {
	st := rn.State
	shown := rn.Events[:rn.Shown]
	last := shown[len(shown)-1]
	latest := rn.Shown == len(rn.Events)
	interrupted := latest && st.Status == engine.RunRunning && !rn.Live
	p := runPage{page: page{Title: "Run " + st.ID, Nav: "runs"}, ID: st.ID, Workflow: st.Workflow,
		Trigger: st.Trigger, Status: runStatus(st, interrupted), Started: s.when(st.Started),
		Source: st.Source, DefHash: st.DefHash, RerunOf: st.RerunOf}
	asOf := last.At()
	switch {
	case !st.Finished.IsZero():
		p.Duration = Duration(st.Finished.Sub(st.Started).Milliseconds())
	case latest && rn.Live:
		asOf = s.opts.Now()
		p.Duration = Duration(asOf.Sub(st.Started).Milliseconds()) + " so far"
	}
	for _, k := range sortedKeys(st.Params) {
		p.Params = append(p.Params, kv{k, st.Params[k]})
	}
	base := "/runs/" + url.PathEscape(st.ID)
	p.Travel = travel{Seq: last.Seq, First: rn.Events[0].Seq, Last: rn.Events[len(rn.Events)-1].Seq, Latest: latest,
		Step: rn.Shown, Steps: len(rn.Events), AsOf: s.when(last.At())}
	if rn.Shown > 1 {
		p.Travel.Prev = rn.Events[rn.Shown-2].Seq
	}
	if !latest {
		p.Travel.Next = rn.Events[rn.Shown].Seq
	}
	nodes := make([]dag.Node, len(rn.Names))
	index := make(map[string]int, len(rn.Names))
	for i, n := range rn.Names {
		index[n] = i
	}
	for i, n := range rn.Names {
		row := s.taskRow(base, n, st.Tasks[n], interrupted)
		p.Tasks = append(p.Tasks, row)
		nodes[i] = dag.Node{Name: n, Status: row.Status, Tooltip: nodeTip(row), Href: row.LogHref}
		if rn.Def != nil {
			if t, ok := rn.Def.Index(n); ok {
				for _, d := range rn.Def.Deps(t) {
					if j, ok := index[rn.Def.Tasks[d].Name]; ok {
						nodes[i].Deps = append(nodes[i].Deps, j)
					}
				}
			}
		}
	}
	seen := map[string]bool{}
	for _, t := range p.Tasks {
		if !seen[t.Status] {
			seen[t.Status] = true
			p.Legend = append(p.Legend, t.Status)
		}
	}
	slices.Sort(p.Legend)
	p.nodes, p.names, p.events, p.shown, p.start, p.asOf = nodes, rn.Names, rn.Events, rn.Shown, st.Started, asOf
	return p
}

func runStatus(st *engine.Run, interrupted bool) string {
	switch {
	case interrupted:
		return "interrupted"
	case st.Status == engine.RunRunning:
		return "running"
	}
	return st.Status.String()
}

func (s *Server) taskRow(base, name string, t *engine.TaskState, interrupted bool) taskRow {
	row := taskRow{Name: name, Status: "pending"}
	if t == nil {
		return row
	}
	row.Status, row.Attempts = t.Status.String(), int(t.Attempt)
	if interrupted && t.Status == engine.Running {
		row.Status = "interrupted"
	}
	if !t.Finished().IsZero() && t.Status != engine.Running {
		row.Exit = strconv.Itoa(int(t.ExitCode))
		if !t.Started().IsZero() {
			row.Duration = Duration(t.Finished().Sub(t.Started()).Milliseconds())
		}
	}
	text := t.Text()
	row.Note = text.Error
	if row.Note == "" {
		row.Note = text.Reason
	}
	if t.Status == engine.Retrying {
		row.Note = strings.TrimPrefix(row.Note+"; retry at "+s.when(t.RetryAt()), "; ")
	}
	for _, k := range sortedKeys(text.Outputs) {
		row.Outputs = append(row.Outputs, kv{k, text.Outputs[k]})
	}
	if t.Attempt > 0 {
		row.LogHref = base + "/tasks/" + url.PathEscape(name) + "/log?attempt=" + strconv.Itoa(int(t.Attempt))
	}
	return row
}

func nodeTip(t taskRow) string {
	parts := []string{t.Name, t.Status}
	if t.Attempts > 0 {
		parts = append(parts, fmt.Sprintf("attempts %d", t.Attempts))
	}
	if t.Exit != "" {
		parts = append(parts, "exit code "+t.Exit)
	}
	if t.Duration != "" {
		parts = append(parts, "duration "+t.Duration)
	}
	if t.Note != "" {
		parts = append(parts, t.Note)
	}
	return strings.Join(parts, " · ")
}

func eventRowOf(base string, e *journal.Event, start time.Time, current, later bool) eventRow {
	row := eventRow{Seq: e.Seq, Offset: "+" + Duration(e.At().Sub(start).Milliseconds()), Task: e.Task,
		Attempt: e.Attempt, Label: e.Type.String(), Current: current, Later: later,
		Href: base + "?seq=" + strconv.FormatUint(e.Seq, 10)}
	if e.Status != "" {
		row.Label += ": " + e.Status
	}
	if e.Type == journal.TaskFinished || e.Type == journal.TaskRetrying {
		row.Exit = strconv.Itoa(e.ExitCode)
	}
	var notes []string
	switch e.Type {
	case journal.TaskRetrying:
		notes = append(notes, e.Error, "backoff "+Duration(e.BackoffMS))
	case journal.TaskFinished:
		notes = append(notes, e.Error)
	case journal.TaskStarted:
		if e.Resumed {
			notes = append(notes, "resumed")
		}
	case journal.RunCanceled:
		notes = append(notes, "by "+e.By)
	}
	notes = append(notes, e.Reason)
	notes = slices.DeleteFunc(notes, func(s string) bool { return s == "" })
	row.Detail = strings.Join(notes, "; ")
	return row
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
