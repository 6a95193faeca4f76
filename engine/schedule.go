package engine

import (
	"container/heap"
	"fmt"
	"time"

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
	for i, t := range x.wf.Tasks {
		x.tasks[i] = x.r.Task(t.Name)
	}
	for i, t := range x.wf.Tasks {
		for _, d := range t.Deps {
			if !x.satisfies(d) {
				x.waiting[i]++
			}
		}
	}
	for i := range x.wf.Tasks { // in definition order; blocked ones get skipped
		st := x.view(i)
		switch {
		case st.Status == Retrying:
			// RetryAt is absolute: after a reboot with the clock behind (a
			// board without an RTC) it may be hours away. Never wait longer
			// than the backoff that was configured.
			at := st.RetryAt
			if latest := now.Add(st.Backoff); at.After(latest) {
				at = latest
			}
			heap.Push(&x.retries, retryItem{task: i, at: at})
		case st.Status == Pending && x.blocked(i):
			x.skipFrom(i, "", now)
		case st.Status == Pending && x.waiting[i] == 0:
			x.ready = append(x.ready, i)
		}
	}
}

// satisfies reports whether task d no longer holds back its dependents.
func (x *runner) satisfies(d int) bool {
	switch x.view(d).Status {
	case Success:
		return true
	case Failed, TimedOut:
		return x.wf.Tasks[d].ContinueOnFailure
	}
	return false
}

// blocked reports whether one of task i's dependencies ended in a way that
// means i will never run.
func (x *runner) blocked(i int) bool {
	for _, d := range x.wf.Tasks[i].Deps {
		switch x.view(d).Status {
		case Skipped:
			return true
		case Failed, TimedOut:
			if !x.wf.Tasks[d].ContinueOnFailure {
				return true
			}
		}
	}
	return false
}

// skipFrom stages task i and everything downstream of it as skipped. The
// reason names root, the failed task that blocks them all; "" means i's own
// failed (or skipped) dependency.
func (x *runner) skipFrom(i int, root string, now time.Time) {
	if root == "" { // prefer a failed dependency over a skipped one
		for _, d := range x.wf.Tasks[i].Deps {
			ds := x.view(d).Status
			failed := (ds == Failed || ds == TimedOut) && !x.wf.Tasks[d].ContinueOnFailure
			if failed || ds == Skipped && root == "" {
				root = x.wf.Tasks[d].Name
			}
			if failed {
				break
			}
		}
	}
	stack := []int{i}
	for len(stack) > 0 {
		i = stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if st := x.view(i).Status; st.Final() || st == Running {
			continue // the staged skip makes diamonds skip once
		}
		x.stage(i, &journal.Event{Type: journal.TaskSkipped, Time: now.UnixNano(),
			Run: x.r.ID, Task: x.wf.Tasks[i].Name, Status: journal.StatusSkipped,
			Reason: fmt.Sprintf("upstream task %s did not succeed", root)})
		stack = append(stack, x.wf.Tasks[i].Downstream...)
	}
}

// release lets the dependents of a task that no longer holds them back
// become ready.
func (x *runner) release(i int) {
	for _, d := range x.wf.Tasks[i].Downstream {
		x.waiting[d]--
		if x.waiting[d] == 0 && x.view(d).Status == Pending {
			x.ready = append(x.ready, d)
		}
	}
}

// finish stages the end of the run once nothing can run any more. A run
// held by in-doubt tasks does not finish.
func (x *runner) finish(now time.Time) {
	failed := false
	for i := range x.tasks {
		switch x.view(i).Status {
		case Success, Skipped:
		case Failed, TimedOut:
			if !x.wf.Tasks[i].ContinueOnFailure {
				failed = true
			}
		default:
			return // in doubt, or held behind an in-doubt task
		}
	}
	status := journal.StatusSuccess
	if failed {
		status = journal.StatusFailed
	}
	x.pending = append(x.pending, &journal.Event{Type: journal.RunFinished, Time: now.UnixNano(),
		Run: x.r.ID, Status: status, DurationMS: max(now.Sub(x.r.Started).Milliseconds(), 0)}) // the clock may have gone back
}

// handle stages the events of an attempt's result, then makes the
// scheduling changes they call for, planned on the staged state.
func (x *runner) handle(a attemptResult) {
	x.applyProcs() // the attempt sent its TaskProcess before its result
	x.running--
	x.freeSlots(1)
	now := x.e.opts.Clock()
	t := x.wf.Tasks[a.task]
	ev, retryAt := x.resultEvent(a, now)
	x.stage(a.task, ev)
	switch st := x.view(a.task).Status; {
	case st == Retrying:
		heap.Push(&x.retries, retryItem{task: a.task, at: retryAt})
	case st == Success, (st == Failed || st == TimedOut) && t.ContinueOnFailure:
		x.release(a.task)
	case st == Failed || st == TimedOut:
		for _, d := range t.Downstream {
			x.skipFrom(d, t.Name, now)
		}
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
		return ev, time.Time{}
	}
	ev.Tail, ev.Status = redact(a.tail), a.res.Status.String()
	if n := x.view(a.task).Failures + 1; !a.res.NoRetry && n <= t.Retry {
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
