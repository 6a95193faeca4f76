package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/journal"
	"github.com/picoflow/picoflow/projector"
	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name:    "replay",
		args:    "RUN_ID",
		summary: "post-mortem of a run from the journal alone: timeline and final state",
		long: `Prints every transition of a run in order (time, offset from the run's
start, task, attempt, event, exit code, duration; the output tail of failed
attempts; retries with their backoff; interruptions and resumes), then the
state of every task. RUN_ID may be a unique prefix.

--until SEQ or --until RFC3339 stops at that journal entry or moment: the
state as it was then (SEQ counts entries of the run's workflow's journal).
--journal DIR reads a journal copied off a device: a workflow's journal
(HOME/journal/WF), a whole HOME/journal, or the single journal of an older
release; it is only read, never repaired or changed.

--json prints one JSON object per line: each event as
  {"seq","time","offset_ms","run","event","task","attempt","status",
   "exit_code","duration_ms","error","tail","backoff_ms","retry_at",
   "reason","by","pgid","log","trigger","workflow","def_hash","params"}
(absent fields omitted; times RFC 3339, UTC), then one last object
  {"event":"final_state","run","workflow","status","as_of_seq",
   "tasks":[{"name","status","attempts","exit_code","duration_ms",
             "attempt_durations_ms","error","reason"}]}.
A task's exit_code is null until one of its attempts ended; its
duration_ms runs from its first attempt's start to its end (waits between
attempts included; null until it ended), as in history;
attempt_durations_ms has each attempt's own duration.`,
		setup: func(fs *pflag.FlagSet) runFunc {
			asJSON := fs.Bool("json", false, "one JSON object per line")
			until := fs.String("until", "", "stop at journal entry SEQ or at an RFC 3339 time")
			dir := fs.String("journal", "", "read this journal directory instead of the home's journals (read-only)")
			return func(ctx context.Context, m *Main, g *globals, args []string) error {
				if len(args) != 1 {
					return exitf(ExitUsage, "replay needs exactly one RUN_ID")
				}
				srcs, where, err := replaySources(home(g.home), *dir)
				if err != nil {
					return withCode(ExitInternal, err)
				}
				stop, err := parseUntil(*until)
				if err != nil {
					return err
				}
				return replayRun(m.Stdout, m.Stderr, srcs, where, args[0], stop, *asJSON, workflowBase(g.cfg))
			}
		},
	})
}

// untilFunc reports whether an event is past the --until bound.
type untilFunc func(e *journal.Event) bool

func parseUntil(s string) (untilFunc, error) {
	if s == "" {
		return func(*journal.Event) bool { return false }, nil
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return func(e *journal.Event) bool { return e.Seq > n }, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil, exitf(ExitUsage, "--until %q: want a journal sequence number or an RFC 3339 time (2026-11-25T02:00:00Z)", s)
	}
	return func(e *journal.Event) bool { return e.At().After(t) }, nil
}

// replaySources returns the journals replay reads, and how to name them in
// a message: the home's, or those of --journal DIR (a journal, or a
// directory of workflows' journals).
func replaySources(h home, dir string) ([]projector.Source, string, error) {
	if dir == "" {
		srcs, err := h.journals()
		return srcs, "the journals of " + string(h), err
	}
	srcs, err := journalsIn(dir)
	return srcs, "journal " + dir, err
}

// replayRun prints the timeline of one run and its state at the end.
// Damage in a journal is reported on warn, and what verifies is shown.
func replayRun(w, warn io.Writer, srcs []projector.Source, where, id string, past untilFunc, asJSON bool, base workflow.Config) error {
	id, events, err := readRun(srcs, warn, where, id, span{})
	if err != nil {
		return err
	}
	rp, err := foldEvents(id, events, past, parser(base))
	if err != nil {
		return err
	}
	if asJSON {
		return replayJSON(w, rp.run, rp.events[:rp.shown], rp.names)
	}
	return replayText(w, rp.run, rp.events[:rp.shown], rp.names)
}

// replayed is one run folded from the journal up to a bound: what replay
// prints and what the web UI's run page and /api/runs/RUN_ID show.
type replayed struct {
	run    *engine.Run      // the state after events[:shown]
	events []*journal.Event // every event of the run, in journal order
	shown  int              // how many of events were folded
	names  []string         // the run's tasks in definition order
	wf     *workflow.Workflow
}

// defParser parses the definition a run recorded (nil when it does not
// parse).
type defParser func(r *engine.Run) *workflow.Workflow

// parser parses over base, as the run did.
func parser(base workflow.Config) defParser {
	return func(r *engine.Run) *workflow.Workflow {
		wf, err := workflow.ParseWith(r.Source, []byte(r.Definition), base)
		if err != nil {
			return nil
		}
		return wf
	}
}

// span bounds the journal entries a scan for one run reads, when the
// projection knows them: the run's journal (its workflow's) from its first
// entry to its last (0: no bound).
type span struct {
	journal     string
	first, last uint64
}

// bounded returns the one source sp bounds the scan to, if any: the run's
// workflow's journal, or the only journal of the home.
func (sp span) bounded(srcs []projector.Source) (projector.Source, bool) {
	if sp.first == 0 {
		return projector.Source{}, false
	}
	for _, s := range srcs {
		if s.Name == sp.journal || len(srcs) == 1 {
			return s, true
		}
	}
	return projector.Source{}, false
}

// readRun returns the id of the run that id names (a unique prefix) and
// its events, read from the journals srcs (within sp when it bounds them).
// Damage is reported on warn; what verifies is read.
func readRun(srcs []projector.Source, warn io.Writer, where, id string, sp span) (string, []*journal.Event, error) {
	opts := journal.ScanOptions{OnDamage: func(de *journal.DamageError) error {
		fmt.Fprintf(warn, "picoflow: %v; shown: what verifies (picoflow journal verify)\n", de)
		return nil
	}}
	if s, ok := sp.bounded(srcs); ok {
		srcs, opts.From = []projector.Source{s}, sp.first
	} else {
		sp.last = 0
	}
	var events []*journal.Event
	ids := map[string]bool{}
	for _, src := range srcs {
		found := false
		err := journal.Scan(src.Dir, opts, func(e *journal.Event) error {
			if sp.last > 0 && e.Seq > sp.last {
				return journal.ErrStop
			}
			if e.Type == journal.RunStarted {
				ids[e.Run] = true
			}
			if e.Run != "" && strings.HasPrefix(e.Run, id) {
				events = append(events, e)
				found = true
			}
			return nil
		})
		if err != nil {
			return "", nil, withCode(ExitInternal, fmt.Errorf("read journal %s: %w", src.Dir, err))
		}
		if found && ids[id] {
			break // a run lives in one journal
		}
	}
	all := make([]string, 0, len(ids))
	for r := range ids {
		all = append(all, r)
	}
	var err error
	if id, err = matchRunID(id, all); err != nil {
		var ee *exitError
		if errors.As(err, &ee) && ee.code == ExitNotFound {
			return "", nil, exitf(ExitNotFound, "no run %q in %s (picoflow history lists the runs)", id, where)
		}
		return "", nil, err
	}
	own := events[:0]
	for _, e := range events {
		if e.Run == id {
			own = append(own, e)
		}
	}
	return id, own, nil
}

// foldEvents folds the events of run id with the engine's reducer until
// past says stop.
func foldEvents(id string, events []*journal.Event, past untilFunc, parse defParser) (*replayed, error) {
	rp := &replayed{}
	st := engine.NewState()
	st.Detail = engine.AllRuns // the events of one run: it is the one shown
	rp.events = events
	for i, e := range events {
		if past(e) || rp.shown < i {
			continue
		}
		if err := st.Apply(e); err != nil {
			return nil, withCode(ExitInternal, err)
		}
		rp.shown++
	}
	if rp.run = st.Runs[id]; rp.run == nil {
		return nil, exitf(ExitNotFound, "run %s had not started by then", id)
	}
	rp.wf = parse(rp.run)
	rp.names = taskNames(rp.run, rp.wf)
	return rp, nil
}

// taskNames lists the run's tasks in definition order, from wf, the
// definition recorded in the journal parsed over the base the run used;
// tasks the journal mentions but the definition does not (it failed to
// parse: wf is nil) are appended in name order.
func taskNames(r *engine.Run, wf *workflow.Workflow) []string {
	var names []string
	seen := map[string]bool{}
	if wf != nil {
		for _, t := range wf.Tasks {
			names = append(names, t.Name)
			seen[t.Name] = true
		}
	}
	var extra []string
	for n := range r.Tasks {
		if !seen[n] {
			extra = append(extra, n)
		}
	}
	sort.Strings(extra)
	return append(names, extra...)
}

func replayText(w io.Writer, r *engine.Run, evs []*journal.Event, names []string) error {
	fmt.Fprintf(w, "run %s  workflow %s  trigger %s\n", r.ID, r.Workflow, firstNonEmpty(r.Trigger, "-"))
	fmt.Fprintf(w, "definition %s  from %s\n", workflow.ShortHash(r.DefHash), firstNonEmpty(r.Source, "-"))
	fmt.Fprintf(w, "started %s\n\n", stamp(r.Started))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tOFFSET\tTASK\tATT\tEVENT\tEXIT\tDURATION\tDETAIL")
	for _, e := range evs {
		att, exit, dur := "", "", ""
		if e.Attempt > 0 {
			att = strconv.Itoa(e.Attempt)
		}
		if (e.Type == journal.TaskFinished || e.Type == journal.TaskRetrying) && e.ReusedFrom == "" {
			exit = strconv.Itoa(e.ExitCode)
			dur = ms(e.DurationMS)
		}
		if e.Type == journal.RunFinished {
			dur = ms(e.DurationMS)
		}
		fmt.Fprintf(tw, "%d\t%s\t+%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.At().Format("15:04:05.000"),
			offset(e.At().Sub(r.Started)), firstNonEmpty(e.Task, "-"), att, eventLabel(e), exit, dur, detail(e))
		if t := strings.TrimRight(e.Tail, "\n"); t != "" {
			for _, l := range strings.Split(t, "\n") {
				fmt.Fprintf(tw, "\t\t\t\t\t\t\t\t| %s\n", l)
			}
		}
	}
	tw.Flush()
	asOf := r.LastSeq
	fmt.Fprintf(w, "\nstate as of entry %d: run %s\n", asOf, runState(r))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tSTATUS\tATTEMPTS\tEXIT\tDURATION\tDETAIL")
	for _, n := range names {
		t := r.Tasks[n]
		if t == nil {
			fmt.Fprintf(tw, "%s\tpending\t0\t\t\t\n", n)
			continue
		}
		exit, dur := "", ""
		if t.Status != engine.Pending && t.Status != engine.Skipped && t.Status != engine.Running {
			exit = strconv.Itoa(int(t.ExitCode))
		}
		if d := taskDurationMS(t); d != nil {
			dur = ms(*d)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", n, t.Status, t.Attempt, exit, dur, firstNonEmpty(t.Text().Reason, t.Text().Error))
	}
	return tw.Flush()
}

func runState(r *engine.Run) string {
	if r.Status == engine.RunRunning && !r.Canceled.IsZero() {
		return "canceling (asked by " + r.CanceledBy + "; its handlers may still run)"
	}
	if r.Status == engine.RunRunning {
		return "unfinished (running, or interrupted and resumable)"
	}
	return r.Status.String()
}

func eventLabel(e *journal.Event) string {
	switch e.Type {
	case journal.TaskFinished, journal.RunFinished, journal.TaskResolved:
		return e.Type.String() + ":" + e.Status
	case journal.TaskRetrying:
		return "task_retrying:" + e.Status
	}
	return e.Type.String()
}

func detail(e *journal.Event) string {
	var parts []string
	switch e.Type {
	case journal.RunStarted:
		if e.RerunOf != "" {
			parts = append(parts, "rerun of "+e.RerunOf)
		}
		if len(e.Params) > 0 {
			keys := make([]string, 0, len(e.Params))
			for k := range e.Params {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				parts = append(parts, k+"="+e.Params[k])
			}
		}
	case journal.TaskStarted:
		if e.Resumed {
			parts = append(parts, "resumed after interruption")
		}
		parts = append(parts, "log "+e.LogPath)
	case journal.TaskProcess:
		parts = append(parts, "pgid "+strconv.Itoa(e.PGID))
	case journal.RunCanceled:
		parts = append(parts, "by "+e.By)
	case journal.TaskRetrying:
		parts = append(parts, e.Error, "backoff "+ms(e.BackoffMS)+" until "+time.Unix(0, e.RetryAt).Format("15:04:05.000"))
	case journal.TaskFinished:
		parts = append(parts, e.Error)
		if len(e.Outputs) > 0 {
			keys := make([]string, 0, len(e.Outputs))
			for k := range e.Outputs {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			parts = append(parts, "outputs "+strings.Join(keys, ","))
		}
	}
	parts = append(parts, e.Reason)
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "; ")
}

func offset(d time.Duration) string {
	return fmt.Sprintf("%.3fs", d.Seconds())
}

func stamp(t time.Time) string { return t.Format("2006-01-02 15:04:05.000 MST") }

// replayEvent is the stable JSON form of one event (see the command help).
type replayEvent struct {
	Seq        uint64            `json:"seq"`
	Time       string            `json:"time"`
	OffsetMS   int64             `json:"offset_ms"`
	Run        string            `json:"run"`
	Event      string            `json:"event"`
	Task       string            `json:"task,omitempty"`
	Attempt    int               `json:"attempt,omitempty"`
	Status     string            `json:"status,omitempty"`
	ExitCode   *int              `json:"exit_code,omitempty"`
	DurationMS *int64            `json:"duration_ms,omitempty"`
	Error      string            `json:"error,omitempty"`
	Tail       string            `json:"tail,omitempty"`
	BackoffMS  int64             `json:"backoff_ms,omitempty"`
	RetryAt    string            `json:"retry_at,omitempty"`
	By         string            `json:"by,omitempty"` // run_canceled: who asked
	Reason     string            `json:"reason,omitempty"`
	PGID       int               `json:"pgid,omitempty"`
	Log        string            `json:"log,omitempty"`
	Trigger    string            `json:"trigger,omitempty"`
	Workflow   string            `json:"workflow,omitempty"`
	DefHash    string            `json:"def_hash,omitempty"`
	Resumed    bool              `json:"resumed,omitempty"`
	Params     map[string]string `json:"params,omitempty"`
	RerunOf    string            `json:"rerun_of,omitempty"`
	ReusedFrom string            `json:"reused_from,omitempty"`
}

type replayTask struct {
	Name               string  `json:"name"`
	Status             string  `json:"status"`
	Attempts           int     `json:"attempts"`
	ExitCode           *int    `json:"exit_code"`   // null until an attempt ended
	DurationMS         *int64  `json:"duration_ms"` // first start to end; null until the task ended
	AttemptDurationsMS []int64 `json:"attempt_durations_ms"`
	Error              string  `json:"error,omitempty"`
	Reason             string  `json:"reason,omitempty"`
	ReusedFrom         string  `json:"reused_from,omitempty"`
}

// taskDurationMS is a task's duration as history shows it: from its first
// attempt's start to its end, never negative; nil until it ended.
func taskDurationMS(t *engine.TaskState) *int64 {
	if t.Finished().IsZero() || t.FirstStarted().IsZero() {
		return nil
	}
	d := max(t.Finished().Sub(t.FirstStarted()).Milliseconds(), 0)
	return &d
}

// attemptDurations collects the duration of each attempt that ended, by
// task, in journal order. As in the history database, an end without a
// duration (under a millisecond, or journaled by a resume) counts from
// the attempt's start to its end.
func attemptDurations(evs []*journal.Event) map[string][]int64 {
	out := map[string][]int64{}
	started := map[string]time.Time{}
	for _, e := range evs {
		switch e.Type {
		case journal.TaskStarted:
			started[e.Task] = e.At()
		case journal.TaskFinished, journal.TaskRetrying:
			if e.ReusedFrom != "" {
				continue // a rerun's reused result: no attempt in this run
			}
			d := e.DurationMS
			if s, ok := started[e.Task]; ok && d == 0 {
				d = max(e.At().Sub(s).Milliseconds(), 0)
			}
			out[e.Task] = append(out[e.Task], d)
		}
	}
	return out
}

type replayFinal struct {
	Event    string       `json:"event"`
	Run      string       `json:"run"`
	Workflow string       `json:"workflow"`
	Status   string       `json:"status"`
	AsOfSeq  uint64       `json:"as_of_seq"`
	Tasks    []replayTask `json:"tasks"`
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func replayJSON(w io.Writer, r *engine.Run, evs []*journal.Event, names []string) error {
	enc := json.NewEncoder(w)
	for _, e := range evs {
		o := replayEvent{Seq: e.Seq, Time: rfc3339(e.At()), OffsetMS: e.At().Sub(r.Started).Milliseconds(),
			Run: e.Run, Event: e.Type.String(), Task: e.Task, Attempt: e.Attempt, Status: e.Status,
			Error: e.Error, Tail: e.Tail, BackoffMS: e.BackoffMS, Reason: e.Reason, By: e.By, PGID: e.PGID,
			Log: e.LogPath, Trigger: e.Trigger, Workflow: e.Workflow, DefHash: e.DefHash, Resumed: e.Resumed, Params: e.Params,
			RerunOf: e.RerunOf, ReusedFrom: e.ReusedFrom}
		if (e.Type == journal.TaskFinished || e.Type == journal.TaskRetrying) && e.ReusedFrom == "" {
			code, d := e.ExitCode, e.DurationMS
			o.ExitCode, o.DurationMS = &code, &d
		}
		if e.Type == journal.RunFinished {
			d := e.DurationMS
			o.DurationMS = &d
		}
		if e.RetryAt != 0 {
			o.RetryAt = rfc3339(time.Unix(0, e.RetryAt))
		}
		if err := enc.Encode(o); err != nil {
			return err
		}
	}
	f := replayFinal{Event: "final_state", Run: r.ID, Workflow: r.Workflow, Status: r.Status.String(),
		AsOfSeq: r.LastSeq, Tasks: []replayTask{}}
	if r.Status == engine.RunRunning {
		f.Status = "unfinished"
	}
	durs := attemptDurations(evs)
	for _, n := range names {
		t := r.Tasks[n]
		if t == nil {
			f.Tasks = append(f.Tasks, replayTask{Name: n, Status: "pending", AttemptDurationsMS: []int64{}})
			continue
		}
		text := t.Text()
		rt := replayTask{Name: n, Status: t.Status.String(), Attempts: int(t.Attempt), DurationMS: taskDurationMS(t),
			AttemptDurationsMS: durs[n], Error: text.Error, Reason: text.Reason, ReusedFrom: text.ReusedFrom}
		if rt.AttemptDurationsMS == nil {
			rt.AttemptDurationsMS = []int64{}
		} else {
			code := int(t.ExitCode)
			rt.ExitCode = &code
		}
		f.Tasks = append(f.Tasks, rt)
	}
	return enc.Encode(f)
}
