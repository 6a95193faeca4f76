package engine

import (
	"container/heap"
	"time"

	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/executors"
	"github.com/picoflow/picoflow/journal"
)

// The scheduling decisions of the run loop. They read task states through
// view (the state once the pending batch is applied) and change them only
// by staging events: the run's state changes when the batch is committed.

// init derives the scheduling indexes from the run's state, which may be
// fresh or rebuilt from the journal of an interrupted run.
func (x *runner) init() {
	now := x.e.opts.Clock()
	reserve(x.r, x.wf.Tasks)
	for i, t := range x.wf.Tasks {
		x.tasks[i] = x.r.Task(t.Name)
	}
	x.canceling = !x.r.Canceled.IsZero()
	x.canceledBy = cancelReason(CancelRequest{By: x.r.CanceledBy, Reason: x.r.CancelReason})
	x.tallyAll()
	if x.canceling && !x.dagSettled() {
		x.cancelLeft(now) // a crash cut the cancel short: what resume made pending again
	}
	for i := range x.wf.DAG() { // in definition order
		st := x.view(i)
		switch {
		case st.Status == Retrying && x.canceling:
			// canceled while it waited: the cancel's events cover it
		case st.Status == Retrying:
			// RetryAt is absolute: after a reboot with the clock behind (a
			// board without an RTC) it may be hours away. Never wait longer
			// than the backoff that was configured.
			at := st.RetryAt()
			if latest := now.Add(st.Text().Backoff); at.After(latest) {
				at = latest
			}
			heap.Push(&x.retries, retryItem{task: i, at: at})
		case st.Status == Pending && len(x.wf.Deps(i)) == 0 && !x.canceling:
			x.queued[i] = true
			x.ready = append(x.ready, i)
		case st.Status == Pending:
			x.decide(i, now)
		}
	}
}

// finish stages the end of the run once nothing can run any more. A run
// held by in-doubt tasks does not finish.
func (x *runner) finish(now time.Time) {
	for i := range x.tasks {
		if !x.view(i).Status.Final() {
			return // in doubt, held behind an in-doubt task, or stopped before its handlers
		}
	}
	ev := &journal.Event{Type: journal.RunFinished, Time: now.UnixNano(), Run: x.r.ID, Status: x.runStatus(),
		DurationMS: max(now.Sub(x.r.Started).Milliseconds(), 0)} // the clock may have gone back
	if x.canceling {
		ev.Reason = x.canceledBy
	}
	x.pending = append(x.pending, ev)
}

// handle stages the events of an attempt's result, then makes the
// scheduling changes they call for, planned on the staged state.
func (x *runner) handle(a attemptResult) {
	x.applyProcs() // the attempt sent its TaskProcess before its result
	x.running--
	x.freeSlots(1)
	now := x.e.opts.Clock()
	t := x.wf.Tasks[a.task]
	if x.neverRan[a.task] { // nothing ran: interrupted, never in doubt
		delete(x.neverRan, a.task)
		x.stage(a.task, &journal.Event{Type: journal.TaskFinished, Time: now.UnixNano(), Run: x.r.ID, Task: t.Name,
			Attempt: a.attempt, Status: journal.StatusInterrupted, ExitCode: -1,
			Reason: "picoflow was stopping when this attempt was to start: it never ran"})
		return
	}
	x.cores.note(a.res.CPU, a.took, x.e.cpus())
	ev, retryAt := x.resultEvent(a, now)
	x.stage(a.task, ev)
	switch st := x.view(a.task).Status; {
	case st == Retrying:
		heap.Push(&x.retries, retryItem{task: a.task, at: retryAt})
	case st.Final():
		x.settled(a.task, now) // the trigger rules of its dependents
	case a.res.Status == executors.Interrupted && !t.Idempotent: // killed part-way: it may have had its effect
		x.stage(a.task, &journal.Event{Type: journal.TaskInDoubt, Time: now.UnixNano(),
			Run: x.r.ID, Task: t.Name, Attempt: a.attempt,
			Reason: "interrupted by a shutdown while running and not idempotent: settle it with picoflow resolve"})
	}
}

// resultEvent returns the event that journals an attempt's result: the
// task finished, or retries at retryAt.
func (x *runner) resultEvent(a attemptResult, now time.Time) (ev *journal.Event, retryAt time.Time) {
	t := x.wf.Tasks[a.task]
	redact := x.e.opts.Redact
	ev = &journal.Event{Type: journal.TaskFinished, Time: now.UnixNano(), Run: x.r.ID, Task: t.Name,
		Attempt: a.attempt, ExitCode: a.res.ExitCode, DurationMS: a.took.Milliseconds(), Reason: a.warn}
	if a.res.Err != nil {
		ev.Error = redact(a.res.Err.Error())
	}
	switch a.res.Status {
	case executors.Success:
		ev.Status = journal.StatusSuccess
		if len(a.outputs) > 0 {
			ev.Outputs = make(map[string]string, len(a.outputs))
			for k, v := range a.outputs {
				ev.Outputs[k] = redact(v)
			}
		}
		return ev, time.Time{}
	case executors.Interrupted:
		ev.Status = journal.StatusInterrupted
		if x.canceling { // stopped by a cancel's grace: final, never in doubt
			ev.Status = journal.StatusCanceled
		}
		return ev, time.Time{}
	}
	ev.Tail, ev.Status = redact(a.tail), a.res.Status.String()
	if n := int(x.view(a.task).Failures) + 1; !a.res.NoRetry && n <= int(t.Retry) && !x.canceling {
		wait := max(x.wf.Config.Backoff.Delay(n), a.res.RetryAfter)
		retryAt = now.Add(wait)
		ev.Type, ev.RetryAt, ev.BackoffMS = journal.TaskRetrying, retryAt.UnixNano(), wait.Milliseconds()
	}
	return ev, retryAt
}

// retryHeap orders retrying tasks by deadline.
type retryItem struct {
	task int
	at   time.Time
}

type retryHeap []retryItem

func (h retryHeap) Len() int           { return len(h) }
func (h retryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h retryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *retryHeap) Push(v any)        { *h = append(*h, v.(retryItem)) }
func (h *retryHeap) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}

// reserve creates the pending states of a run's tasks the journal has not
// mentioned yet at once: one map of the right size and one block of
// states, instead of a map grown by doubling and an allocation per task (a
// 100,000-task run: ~5 MiB less at its peak, and 100,000 fewer objects for
// the GC to mark). A resumed run keeps the states its replay made.
func reserve(r *Run, tasks []*workflow.Task) {
	if len(tasks) < 64 {
		return
	}
	missing := 0
	for _, t := range tasks {
		if r.Tasks[t.Name] == nil {
			missing++
		}
	}
	if missing == 0 {
		return
	}
	m := make(map[string]*TaskState, len(r.Tasks)+missing)
	for name, st := range r.Tasks { // tasks the definition lacks included
		m[name] = st
	}
	block := make([]TaskState, missing)
	for _, t := range tasks {
		if m[t.Name] == nil {
			m[t.Name], block = &block[0], block[1:]
		}
	}
	r.Tasks = m
}
