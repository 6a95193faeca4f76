package schedule

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// Overlap is what happens when a fire is due while a run of the same
// workflow is still running.
type Overlap uint8

const (
	OverlapSkip  Overlap = iota // the fire is skipped and journaled as such (default)
	OverlapQueue                // the fire waits and runs when the previous run ends (at most QueueCap wait)
	OverlapAllow                // the fire starts a run at once, alongside the previous one
)

var overlapNames = [...]string{"skip", "queue", "allow"}

func (o Overlap) String() string {
	if int(o) < len(overlapNames) {
		return overlapNames[o]
	}
	return fmt.Sprintf("overlap(%d)", o)
}

// ParseOverlap parses skip, queue or allow ("" is skip).
func ParseOverlap(s string) (Overlap, error) {
	if s == "" {
		return OverlapSkip, nil
	}
	for i, n := range overlapNames {
		if s == n {
			return Overlap(i), nil
		}
	}
	return 0, fmt.Errorf("overlap policy %q: want skip, queue or allow", s)
}

// Triggers, as recorded on runs (journal RunStarted.Trigger).
const (
	TriggerSchedule = "schedule"
	TriggerCatchup  = "catchup"
	TriggerManual   = "manual"
)

// Reasons of Skip actions; journaled at the start of ScheduleSkipped.Reason
// and used as a metric label.
const (
	ReasonOverlap   = "overlap"    // overlap: skip, and a run is running or waiting
	ReasonQueueFull = "queue_full" // overlap: queue, and QueueCap fires wait already
	ReasonMissed    = "missed"     // the fire passed while the daemon was not running, and catch-up does not run it
)

// Defaults of a Scheduler.
const (
	DefaultLateAfter = time.Minute
	DefaultQueueCap  = 8
)

// Errors of Trigger.
var (
	ErrUnknown = errors.New("no such workflow")
	ErrBusy    = errors.New("a run of the workflow is in progress")
)

// Job is a workflow as the scheduler sees it.
type Job struct {
	Name     string
	Schedule *Schedule // nil: the workflow only runs when triggered
	Overlap  Overlap
	Catchup  Catchup
}

// Fire is one reason to start a run.
type Fire struct {
	Workflow string
	Time     time.Time // the scheduled fire time; the request time for a manual trigger
	Trigger  string    // TriggerSchedule, TriggerCatchup or TriggerManual
}

// Kind is what an Action asks the daemon to do.
type Kind uint8

const (
	Start Kind = iota // journal ScheduleFired (unless manual), then start a run
	Skip              // journal ScheduleSkipped with the reason
	Queue             // nothing to journal: the fire waits for the previous run
)

func (k Kind) String() string { return [...]string{"start", "skip", "queue"}[k] }

// Action is a decision of the scheduler for the daemon to carry out.
type Action struct {
	Kind   Kind
	Fire   Fire
	Reason string // Skip: one of the Reason constants
	Detail string // a sentence for the journal and the log
}

// Scheduler decides, for every workflow, when runs start. It is a pure
// state machine driven by the daemon's loop: Set (definitions, at start
// and on reload), Tick (time passed), Trigger (manual run), Resumed and
// Ended (runs outside its decisions). It is not safe for concurrent use.
type Scheduler struct {
	// LateAfter is how long after its time a fire may still start as a
	// regular one. Older fires — the daemon was stopped, the machine slept,
	// the clock jumped — are missed, and the catch-up policy decides.
	LateAfter time.Duration
	// QueueCap bounds the fires waiting under overlap: queue.
	QueueCap int

	jobs map[string]*job
}

// job is the state of one workflow name; it outlives its definition so
// that runs resumed or still running after a reload are counted.
type job struct {
	def     *Job
	last    time.Time // newest fire decided (started, queued or skipped), or when the job appeared
	next    time.Time // next regular fire; zero: none
	running int
	queue   []Fire
}

// New returns a Scheduler. lastFire is the newest fire per workflow the
// journal records (engine.State.LastFire): missed fires are computed from
// it when a workflow is first Set.
func New(lastFire map[string]time.Time) *Scheduler {
	s := &Scheduler{LateAfter: DefaultLateAfter, QueueCap: DefaultQueueCap, jobs: make(map[string]*job)}
	for name, t := range lastFire {
		s.jobs[name] = &job{last: t}
	}
	return s
}

func (s *Scheduler) job(name string) *job {
	j := s.jobs[name]
	if j == nil {
		j = &job{}
		s.jobs[name] = j
	}
	return j
}

// Set installs the definitions of every workflow. A workflow seen for the
// first time gets its missed fires computed (catch-up); one whose schedule
// changed is rescheduled from now; a workflow left out is no longer
// scheduled (its running runs are untouched, its waiting fires dropped).
func (s *Scheduler) Set(jobs []Job, now time.Time) []Action {
	var acts []Action
	seen := make(map[string]bool, len(jobs))
	for i := range jobs {
		d := jobs[i]
		seen[d.Name] = true
		j := s.job(d.Name)
		old := j.def
		j.def = &d
		switch {
		case d.Schedule == nil:
			j.next = time.Time{}
		case old == nil || old.Schedule == nil:
			acts = s.catchUp(j, j.last, now, now, acts)
			if j.last.IsZero() {
				j.last = now.Truncate(time.Second) // anchors @every
			}
			j.next = d.Schedule.After(j.last, now)
		case old.Schedule.String() != d.Schedule.String() || old.Schedule.Location().String() != d.Schedule.Location().String():
			j.next = d.Schedule.After(j.last, now)
		}
	}
	for name, j := range s.jobs {
		if !seen[name] && j.def != nil {
			j.def, j.next, j.queue = nil, time.Time{}, nil
		}
	}
	return acts
}

// catchUp appends the actions for the fires of j missed in (last, until].
func (s *Scheduler) catchUp(j *job, last, until, now time.Time, acts []Action) []Action {
	d := j.def
	m := ComputeMissed(d.Schedule, last, until, now, d.Catchup)
	if m.Latest.IsZero() {
		return acts
	}
	if m.Latest.After(j.last) {
		j.last = m.Latest
	}
	if len(m.Run) == 0 {
		why := "catchup: none"
		if d.Catchup.Policy != CatchupNone {
			why = fmt.Sprintf("older than the catch-up window of %s", d.Catchup.Window)
		}
		return append(acts, Action{Kind: Skip, Fire: Fire{d.Name, m.Latest, TriggerSchedule}, Reason: ReasonMissed,
			Detail: fmt.Sprintf("%s: fires from %s to %s passed while the daemon was not running (%s)",
				ReasonMissed, m.First.Format(time.RFC3339), m.Latest.Format(time.RFC3339), why)})
	}
	for _, t := range m.Run {
		acts = s.fire(j, Fire{d.Name, t, TriggerCatchup}, acts)
	}
	return acts
}

// Tick decides every fire due at now. Fires more than LateAfter old are
// treated as missed (see catch-up).
func (s *Scheduler) Tick(now time.Time) []Action {
	var acts []Action
	for _, name := range s.names() {
		j := s.jobs[name]
		if j.def == nil || j.def.Schedule == nil || j.next.IsZero() || j.next.After(now) {
			continue
		}
		sch := j.def.Schedule
		if late := now.Add(-s.LateAfter); j.next.Before(late) {
			acts = s.catchUp(j, j.last, late.Add(-time.Nanosecond), now, acts)
			j.next = sch.After(j.last, j.last)
		}
		for !j.next.IsZero() && !j.next.After(now) {
			acts = s.fire(j, Fire{name, j.next, TriggerSchedule}, acts)
			j.last = j.next
			j.next = sch.Next(j.next)
		}
	}
	return acts
}

// fire decides one due fire by the overlap policy. Catch-up fires run one
// at a time, in order, whatever the policy.
func (s *Scheduler) fire(j *job, f Fire, acts []Action) []Action {
	idle := j.running == 0 && len(j.queue) == 0
	switch {
	case f.Trigger == TriggerCatchup && idle:
		j.running++
		return append(acts, Action{Kind: Start, Fire: f})
	case f.Trigger == TriggerCatchup:
		j.queue = append(j.queue, f)
		return append(acts, Action{Kind: Queue, Fire: f, Detail: "catch-up runs one at a time"})
	case j.def.Overlap == OverlapAllow || idle:
		j.running++
		return append(acts, Action{Kind: Start, Fire: f})
	case j.def.Overlap == OverlapQueue && s.waiting(j) < s.QueueCap:
		j.queue = append(j.queue, f)
		return append(acts, Action{Kind: Queue, Fire: f, Detail: "overlap: queue, the previous run is still running"})
	case j.def.Overlap == OverlapQueue:
		return append(acts, Action{Kind: Skip, Fire: f, Reason: ReasonQueueFull,
			Detail: fmt.Sprintf("%s: %d fires already wait for the running one (overlap: queue)", ReasonQueueFull, s.QueueCap)})
	}
	return append(acts, Action{Kind: Skip, Fire: f, Reason: ReasonOverlap,
		Detail: ReasonOverlap + ": the previous run is still running (overlap: skip)"})
}

// waiting counts the regular fires queued for j.
func (s *Scheduler) waiting(j *job) int {
	n := 0
	for _, f := range j.queue {
		if f.Trigger == TriggerSchedule {
			n++
		}
	}
	return n
}

// Trigger starts a manual run now. A workflow whose overlap policy is not
// allow refuses while one of its runs is in progress, unless force.
func (s *Scheduler) Trigger(name string, now time.Time, force bool) (Action, error) {
	j := s.jobs[name]
	if j == nil || j.def == nil {
		return Action{}, fmt.Errorf("%w %q", ErrUnknown, name)
	}
	if !force && j.def.Overlap != OverlapAllow && (j.running > 0 || len(j.queue) > 0) {
		return Action{}, fmt.Errorf("%w (%s: %d running, %d waiting; overlap: %s)", ErrBusy, name, j.running, len(j.queue), j.def.Overlap)
	}
	j.running++
	return Action{Kind: Start, Fire: Fire{name, now, TriggerManual}}, nil
}

// Resumed counts a run that runs outside the scheduler's decisions (an
// interrupted run the daemon resumed), so that the overlap policy sees it.
// It may be called before the workflow is Set.
func (s *Scheduler) Resumed(name string) { s.job(name).running++ }

// Ended records the end of a run of name (started by an Action, a
// Trigger or Resumed) and returns the start of the next waiting fire, if
// any.
func (s *Scheduler) Ended(name string) []Action {
	j := s.jobs[name]
	if j == nil {
		return nil
	}
	if j.running > 0 {
		j.running--
	}
	if len(j.queue) == 0 || j.def == nil || (j.running > 0 && j.def.Overlap != OverlapAllow) {
		return nil
	}
	f := j.queue[0]
	j.queue = j.queue[1:]
	j.running++
	return []Action{{Kind: Start, Fire: f}}
}

// NextWake returns the earliest next fire of all workflows (zero: none).
func (s *Scheduler) NextWake() time.Time {
	var t time.Time
	for _, j := range s.jobs {
		if !j.next.IsZero() && (t.IsZero() || j.next.Before(t)) {
			t = j.next
		}
	}
	return t
}

// Status is a workflow's scheduling state.
type Status struct {
	Name    string
	Next    time.Time // zero: not scheduled
	Last    time.Time // newest fire decided
	Running int
	Queued  int
}

// Status returns the state of every workflow that has a definition or a
// run, by name.
func (s *Scheduler) Status() []Status {
	var out []Status
	for _, name := range s.names() {
		j := s.jobs[name]
		if j.def == nil && j.running == 0 {
			continue
		}
		out = append(out, Status{Name: name, Next: j.next, Last: j.last, Running: j.running, Queued: len(j.queue)})
	}
	return out
}

// Queued returns the number of fires waiting, over all workflows.
func (s *Scheduler) Queued() int {
	n := 0
	for _, j := range s.jobs {
		n += len(j.queue)
	}
	return n
}

func (s *Scheduler) names() []string {
	names := make([]string, 0, len(s.jobs))
	for n := range s.jobs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
