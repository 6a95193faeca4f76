package engine

import (
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// TaskStatus is a task's state within a run.
type TaskStatus uint8

const (
	Pending  TaskStatus = iota // not started, or waiting to start again after an interruption
	Running                    // an attempt is in flight
	Retrying                   // an attempt failed; the next waits for RetryAt
	Success
	Failed   // final: retries exhausted or not retryable
	TimedOut // final: the last attempt timed out
	Skipped  // final: never ran because an upstream task failed
	InDoubt  // an interrupted non-idempotent attempt awaits `picoflow resolve`
	Canceled // final: the run was canceled before the task ran or while it ran
)

var taskStatusNames = [...]string{"pending", "running", "retrying", "success", "failed", "timeout", "skipped", "in_doubt", "canceled"}

func (s TaskStatus) String() string {
	if int(s) < len(taskStatusNames) {
		return taskStatusNames[s]
	}
	return fmt.Sprintf("status(%d)", s)
}

// Final reports whether the status can no longer change in this run.
func (s TaskStatus) Final() bool {
	return s == Success || s == Failed || s == TimedOut || s == Skipped || s == Canceled
}

// TaskState is what the journal says about one task of a run.
//
// A run holds one per task, 100,000 of them in a big DAG: its times are
// unix nanoseconds (0: never) read through methods, its numbers are 32
// bits, and what it says in words (Text: errors, tails, reasons, outputs),
// which few tasks of a big DAG have, is behind a pointer: 64 bytes a task.
// It keeps no log path: the TaskStarted event in the journal has it (the
// projector and `picoflow logs` read it there), and a path per task is
// ~100 bytes more.
type TaskState struct {
	Status   TaskStatus
	Attempt  int32 // number of the latest attempt started (1-based)
	Failures int32 // attempts that failed or timed out: retries used + 1 when final
	ExitCode int32
	PGID     int32

	retryAt, started, finished, firstStarted int64 // unix nanoseconds; 0: none

	// text is nil while every field of it is empty. It is never changed
	// in place: the run loop's staged copies share it with the run's state.
	text *TaskText
}

// TaskText is what the journal says about a task in words, and its retry
// wait.
type TaskText struct {
	Error   string
	Tail    string
	Outputs map[string]string
	Reason  string // why skipped / in doubt / interrupted
	// ReusedFrom is the run whose result a rerun reused instead of running
	// the task ("" when it ran in this run).
	ReusedFrom string
	Backoff    time.Duration // the wait that RetryAt ends, as configured
}

// Text returns what the journal says about the task in words.
func (t *TaskState) Text() TaskText {
	if t.text == nil {
		return TaskText{}
	}
	return *t.text
}

// Outputs returns the outputs of the task's success (nil: none).
func (t *TaskState) Outputs() map[string]string {
	if t.text == nil {
		return nil
	}
	return t.text.Outputs
}

// setText replaces the task's text with what edit makes of a copy of it:
// a copy, because staged copies of the state share the old one. Nothing
// is allocated while the text stays empty.
func (t *TaskState) setText(edit func(*TaskText)) {
	var x TaskText
	if t.text != nil {
		x = *t.text
	}
	edit(&x)
	if x.Error == "" && x.Tail == "" && x.Outputs == nil && x.Reason == "" && x.ReusedFrom == "" && x.Backoff == 0 {
		t.text = nil
		return
	}
	t.text = &x
}

// nanoTime is a TaskState time: the zero time for 0.
func nanoTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// RetryAt is when a retrying task's next attempt is due.
func (t *TaskState) RetryAt() time.Time { return nanoTime(t.retryAt) }

// Started is when the latest attempt started.
func (t *TaskState) Started() time.Time { return nanoTime(t.started) }

// Finished is when the latest attempt ended (zero while it runs).
func (t *TaskState) Finished() time.Time { return nanoTime(t.finished) }

// FirstStarted is when the first attempt started: a task's duration runs
// from it to Finished, waits between attempts included.
func (t *TaskState) FirstStarted() time.Time { return nanoTime(t.firstStarted) }

// RunStatus is a run's state.
type RunStatus uint8

const (
	RunRunning RunStatus = iota // started and not finished: live, or interrupted
	RunSuccess
	RunFailed
	RunCanceled
	// RunDamaged: salvaging the journal lost events that may be this run's.
	// It is never resumed automatically; the tasks whose success survived
	// stay succeeded if an operator resumes it.
	RunDamaged
)

func (s RunStatus) String() string {
	return [...]string{"running", "success", "failed", "canceled", "damaged"}[s]
}

// Run is the state of one run, rebuilt from its events.
type Run struct {
	ID         string
	Workflow   string
	DefHash    string
	Definition string
	Source     string
	Trigger    string
	RerunOf    string // trigger rerun: the run this one reran
	Params     map[string]string
	Status     RunStatus
	Started    time.Time
	Finished   time.Time
	Resumes    int    // how many times a process took the run over
	FirstSeq   uint64 // journal entry of RunStarted
	LastSeq    uint64 // journal entry of the newest event of the run
	Damage     string // why a salvage marked the run damaged ("" when it did not)
	// Canceled is when a run_canceled event was journaled (zero: never):
	// no task of the DAG starts again; its handlers may still run.
	Canceled     time.Time
	CanceledBy   string
	CancelReason string
	Tasks        map[string]*TaskState // nil in a summary (Summarized)

	summary bool // see Summarized
}

// Summarized reports whether the run is kept as a summary: it finished, and
// the State that replayed it was not asked for its details (State.Detail),
// so it holds no task states (Tasks is nil) and no definition (Definition
// is ""; DefHash names it). A finished 100,000-task run is ~15 MB of task
// states and definition, and a home keeps many: whoever needs one run's
// details folds the journal again with a Detail that names it.
func (r *Run) Summarized() bool { return r.summary }

// summarize drops the task states and the definition of a run.
func (r *Run) summarize() {
	r.Tasks, r.Definition, r.summary = nil, "", true
}

// Task returns the state of a task, creating a pending one if the journal
// has not mentioned it yet.
func (r *Run) Task(name string) *TaskState {
	t := r.Tasks[name]
	if t == nil {
		t = &TaskState{}
		r.Tasks[name] = t
	}
	return t
}

// Counts returns how many tasks are in each status, given the run's task
// names (tasks the journal never mentioned count as pending); nil for a
// summary, which holds no task.
func (r *Run) Counts(names []string) map[TaskStatus]int {
	if r.summary {
		return nil
	}
	c := make(map[TaskStatus]int)
	for _, n := range names {
		if t := r.Tasks[n]; t != nil {
			c[t.Status]++
		} else {
			c[Pending]++
		}
	}
	return c
}

// State is the reduction of a whole journal: every run it still holds.
type State struct {
	Runs    map[string]*Run
	LastSeq uint64
	// LastFire is the newest schedule fire time per workflow (daemon).
	LastFire map[string]time.Time
	// Detail says which finished runs keep their task states and their
	// definition (nil: none). Every other run becomes a summary once its
	// run_finished is applied (Run.Summarized): a fold of a home holds its
	// unfinished runs whole and the others at a few hundred bytes each.
	// A run that has not finished is always whole.
	Detail func(run string) bool

	// ends are the runs a first scan saw finish (FoldDir, FoldJournal):
	// those Detail does not name are summaries from their run_started on.
	ends map[string]bool
	// finishing is the run of the run_started Open replays next when it
	// ends further on (journal.Options.Finished): a summary from its start
	// unless Detail names it.
	finishing string
	// unfinished holds every run Apply started that has not finished, and
	// some that have (compactUnfinished drops them once unfinished holds
	// twice the runs it kept last time, plus 64): Interrupted looks at
	// these, not at every run of a long history.
	unfinished []*Run
	kept       int
	// last is the run of the latest run event applied: the events of a
	// run mostly follow each other, and a replay of a long history then
	// looks few of them up in Runs (which never loses a run).
	last *Run
}

// compactUnfinished drops the runs that finished from unfinished (a run
// that finished never runs again: RunResumed only takes over a damaged
// one) and returns it.
func (s *State) compactUnfinished() []*Run {
	keep := s.unfinished[:0]
	for _, r := range s.unfinished {
		if r.Status == RunRunning || r.Status == RunDamaged {
			keep = append(keep, r)
		}
	}
	clear(s.unfinished[len(keep):])
	s.unfinished, s.kept = keep, len(keep)
	return keep
}

// run returns the run id, nil when the state holds none.
func (s *State) run(id string) *Run {
	if s.last != nil && s.last.ID == id {
		return s.last
	}
	r := s.Runs[id]
	if r != nil {
		s.last = r
	}
	return r
}

// AllRuns is a State.Detail that keeps every run whole: the fold the
// projector's conformance test compares, and that of one run's events.
func AllRuns(string) bool { return true }

// OneRun returns a State.Detail that keeps run id whole.
func OneRun(id string) func(string) bool { return func(run string) bool { return run == id } }

// NewState returns an empty state.
func NewState() *State {
	return &State{Runs: make(map[string]*Run), LastFire: make(map[string]time.Time)}
}

// Interrupted returns the runs that started and never finished, oldest first.
func (s *State) Interrupted() []*Run {
	var out []*Run
	for _, r := range s.compactUnfinished() {
		if r.Status == RunRunning {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FirstSeq < out[j].FirstSeq })
	return out
}

// Apply folds one event into the state. It does no I/O and reads no clock:
// replaying the same events always rebuilds the same state. An event that
// does not fit the state (a task event for an unknown run) is an error that
// names the journal entry.
func (s *State) Apply(e *journal.Event) error {
	s.LastSeq = e.Seq
	switch e.Type {
	case journal.RunStarted:
		if _, dup := s.Runs[e.Run]; dup {
			return fmt.Errorf("entry %d: run %s started twice", e.Seq, e.Run)
		}
		r := &Run{
			ID: e.Run, Workflow: e.Workflow, DefHash: e.DefHash, Definition: e.Definition,
			Source: e.Source, Trigger: e.Trigger, RerunOf: e.RerunOf, Params: e.Params, Started: e.At(),
			FirstSeq: e.Seq, LastSeq: e.Seq,
		}
		if s.summaryFromStart(e.Run) {
			r.summarize() // it ends further on: none of its tasks is kept meanwhile
		} else {
			r.Tasks = make(map[string]*TaskState)
		}
		s.Runs[e.Run], s.last = r, r
		if s.unfinished = append(s.unfinished, r); len(s.unfinished) >= 2*s.kept+64 {
			s.compactUnfinished()
		}
		return nil
	case journal.ScheduleFired, journal.ScheduleSkipped:
		if ft := time.Unix(0, e.FireTime); ft.After(s.LastFire[e.Workflow]) {
			s.LastFire[e.Workflow] = ft
		}
		return nil
	}
	r := s.run(e.Run)
	if r == nil {
		return fmt.Errorf("entry %d: %s for unknown run %q", e.Seq, e.Type, e.Run)
	}
	r.LastSeq = e.Seq
	if err := r.Apply(e); err != nil {
		return err
	}
	if e.Type == journal.RunFinished && !s.detailed(r.ID) {
		r.summarize()
	}
	return nil
}

// detailed reports whether run is kept whole once finished (Detail).
func (s *State) detailed(run string) bool { return s.Detail != nil && s.Detail(run) }

// Apply folds one event of this run into its state.
func (r *Run) Apply(e *journal.Event) error {
	switch e.Type {
	case journal.RunFinished:
		switch e.Status {
		case journal.StatusSuccess:
			r.Status = RunSuccess
		case journal.StatusCanceled:
			r.Status = RunCanceled
		default:
			r.Status = RunFailed
		}
		r.Finished = e.At()
		for _, t := range r.Tasks { // nothing is in flight in a finished run
			if !t.Status.Final() {
				t.Status = Canceled
			}
		}
	case journal.RunResumed:
		r.Resumes++
		if r.Status == RunDamaged {
			r.Status = RunRunning // an operator took it over
		}
	case journal.RunCanceled:
		if r.Canceled.IsZero() {
			r.Canceled, r.CanceledBy, r.CancelReason = e.At(), e.By, e.Reason
		}
	case journal.RunDamaged:
		r.Damage = e.Reason
		if r.Status == RunRunning {
			r.Status = RunDamaged
		}
	case journal.TaskStarted, journal.TaskProcess, journal.TaskFinished, journal.TaskRetrying,
		journal.TaskSkipped, journal.TaskInDoubt, journal.TaskResolved:
		if r.summary {
			return nil // a finished run's tasks: the engine journals none after its end
		}
		r.Task(e.Task).apply(e)
	default:
		return fmt.Errorf("entry %d: unexpected %s event for run %s", e.Seq, e.Type, r.ID)
	}
	return nil
}

// apply folds one task event into the task's state: the one rule for what
// each event does to a task, used by Run.Apply and by the run loop to plan
// on a staged copy before the events are committed.
func (t *TaskState) apply(e *journal.Event) {
	switch e.Type {
	case journal.TaskStarted:
		t.Status, t.Attempt, t.PGID = Running, int32(e.Attempt), 0
		t.started, t.finished = e.Time, 0
		if t.firstStarted == 0 {
			t.firstStarted = t.started
		}
		t.ExitCode = 0
		if t.text != nil {
			t.setText(func(x *TaskText) { x.Error, x.Tail, x.Reason = "", "", "" })
		}
	case journal.TaskProcess:
		if int(t.Attempt) == e.Attempt {
			t.PGID = int32(e.PGID)
		}
	case journal.TaskFinished:
		t.ExitCode, t.finished = int32(e.ExitCode), e.Time
		success := e.Status == journal.StatusSuccess
		if t.text != nil || e.Error != "" || e.Tail != "" || e.Reason != "" || (success && (e.Outputs != nil || e.ReusedFrom != "")) {
			t.setText(func(x *TaskText) {
				x.Error, x.Tail, x.Reason = e.Error, e.Tail, e.Reason
				if success {
					x.Outputs, x.ReusedFrom = e.Outputs, e.ReusedFrom
				}
			})
		}
		t.finishedStatus(e.Status)
	case journal.TaskRetrying:
		t.Status, t.Failures = Retrying, t.Failures+1
		t.ExitCode, t.finished = int32(e.ExitCode), e.Time
		t.retryAt = e.RetryAt
		t.setText(func(x *TaskText) {
			x.Error, x.Tail = e.Error, e.Tail
			x.Backoff = time.Duration(e.BackoffMS) * time.Millisecond
		})
	case journal.TaskSkipped:
		t.Status = Skipped
		t.setReason(e.Reason)
		if e.Status == journal.StatusCanceled {
			t.Status = Canceled
		}
	case journal.TaskInDoubt:
		t.Status = InDoubt
		t.setReason(e.Reason)
	case journal.TaskResolved:
		t.setReason(e.Reason)
		switch e.Status {
		case journal.StatusSuccess:
			t.Status = Success
		case journal.StatusFailed:
			t.Status, t.Failures = Failed, t.Failures+1
		default: // journal.StatusRerun
			t.Status = Pending
		}
	}
}

// finishedStatus is the status a task_finished of that status leaves.
func (t *TaskState) finishedStatus(status string) {
	switch status {
	case journal.StatusSuccess:
		t.Status = Success
	case journal.StatusTimeout:
		t.Status = TimedOut
		t.Failures++
	case journal.StatusInterrupted:
		t.Status = Pending // runs again on resume; not counted as a failure
	case journal.StatusCanceled:
		t.Status = Canceled // stopped by a cancel; not counted as a failure
	default:
		t.Status = Failed
		t.Failures++
	}
}

func (t *TaskState) setReason(reason string) {
	if t.text != nil || reason != "" {
		t.setText(func(x *TaskText) { x.Reason = reason })
	}
}

// Replay reduces events from a journal directory (read-only) into a State
// that keeps the finished runs detail names whole (nil: none; AllRuns).
func Replay(dir string, detail func(run string) bool) (*State, error) {
	s := NewState()
	s.Detail = detail
	err := s.FoldDir(dir, journal.ScanOptions{})
	return s, err
}

// SalvageKeep returns the journal.SalvageOptions.Keep of a salvage: it
// keeps every event except those of a run whose run_started was lost, which
// no reducer can replay (the run has no definition to resume either). It
// counts what it leaves out per run in orphans.
func SalvageKeep(orphans map[string]int) func(*journal.Event) bool {
	started := map[string]bool{}
	return func(e *journal.Event) bool {
		switch {
		case e.Type == journal.RunStarted:
			started[e.Run] = true
		case e.Type == journal.ScheduleFired || e.Type == journal.ScheduleSkipped || started[e.Run]:
		default:
			orphans[e.Run]++
			return false
		}
		return true
	}
}

// DamagedRuns returns a run_damaged event for every run of a salvaged
// journal (reduced to s) whose events may be missing: a run with events on
// both sides of a gap, or an unfinished run with a gap after its last
// event.
func DamagedRuns(s *State, gaps []journal.Gap, now time.Time) []*journal.Event {
	var out []*journal.Event
	runs := make([]*Run, 0, len(s.Runs))
	for _, r := range s.Runs {
		runs = append(runs, r)
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].FirstSeq < runs[j].FirstSeq })
	for _, r := range runs {
		for _, g := range gaps {
			across := g.After != 0 && r.FirstSeq <= g.Before && r.LastSeq >= g.After
			after := r.Status == RunRunning && g.Before >= r.LastSeq
			if !across && !after {
				continue
			}
			out = append(out, &journal.Event{Type: journal.RunDamaged, Time: now.UnixNano(), Run: r.ID,
				Reason: fmt.Sprintf("journal salvage: entries lost %s (damage in %s at offset %d, entry %d)",
					gapPlace(g), filepath.Base(g.Damage.Segment), g.Damage.Offset, g.Damage.Index)})
			break
		}
	}
	return out
}

func gapPlace(g journal.Gap) string {
	switch {
	case g.Before == 0:
		return fmt.Sprintf("before entry %d", g.After)
	case g.After == 0:
		return fmt.Sprintf("after entry %d", g.Before)
	}
	return fmt.Sprintf("between entries %d and %d", g.Before, g.After)
}
