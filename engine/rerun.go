package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/journal"
)

// TriggerRerun is the trigger of a run started by picoflow rerun.
const TriggerRerun = "rerun"

// RerunPlan splits the tasks of wf for a rerun of orig (a finished run of
// the same definition). Run are the tasks named in from, with failed every
// task that failed, timed out or was skipped in orig, and everything
// downstream of them, plus every task that has no result in orig (it never
// ran: the run was canceled first). Reuse are the others, in definition
// order: their result in orig (a success and its outputs, or a failure) is
// the result in the rerun. A task skipped in orig is never reused: the
// rerun skips it again if its upstream fails again; nor is a task a cancel
// stopped, nor a run handler (on_failure ... run in each run). An unknown name in
// from is an ErrUnknownTask naming it.
func RerunPlan(wf *workflow.Workflow, orig *Run, from []string, failed bool) (run, reuse []string, err error) {
	if err := whole(orig); err != nil {
		return nil, nil, err
	}
	var stack []int
	for _, name := range from {
		i, ok := wf.Index(name)
		if !ok {
			return nil, nil, fmt.Errorf("%w: workflow %s has no task %q", ErrUnknownTask, wf.Name, name)
		}
		stack = append(stack, i)
	}
	for i, t := range wf.Tasks {
		st := orig.Tasks[t.Name]
		switch {
		case t.IsHandler(): // a run's handlers run in that run, never reused
			stack = append(stack, i)
		case st == nil || !st.Status.Final() || st.Status == Skipped || st.Status == Canceled:
			stack = append(stack, i)
		case failed && (st.Status == Failed || st.Status == TimedOut):
			stack = append(stack, i)
		}
	}
	selected := make([]bool, len(wf.Tasks))
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !selected[i] {
			selected[i] = true
			for _, j := range wf.Downstream(i) {
				stack = append(stack, int(j))
			}
		}
	}
	for i, t := range wf.Tasks {
		if selected[i] {
			run = append(run, t.Name)
		} else {
			reuse = append(reuse, t.Name)
		}
	}
	return run, reuse, nil
}

// ErrUnknownTask reports a task name the definition does not have.
var ErrUnknownTask = errors.New("unknown task")

// Rerun journals a new run of wf, the definition orig ran with, that
// reuses orig's results for the tasks in reuse, then executes the rest. Its
// RunStarted (trigger rerun, rerun_of orig) and one TaskFinished per reused
// task (status success, orig's outputs, reused_from orig) are one durable
// batch, so a resume of the new run after a crash sees exactly the tasks it
// reused, and no reused task ever runs in it.
func (e *Engine) Rerun(ctx context.Context, wf *workflow.Workflow, orig *Run, reuse []string) (*Run, error) {
	if err := sameDefinition(wf, orig); err != nil {
		return nil, err
	}
	now := e.opts.Clock()
	id := e.opts.NewRunID(now)
	evs := []*journal.Event{{
		Type: journal.RunStarted, Time: now.UnixNano(), Run: id,
		Workflow: wf.Name, DefHash: wf.Hash, Definition: string(wf.Raw), Source: wf.Source,
		Trigger: TriggerRerun, RerunOf: orig.ID, Params: orig.Params,
	}}
	for _, name := range reuse {
		ev, err := reusedEvent(orig, name)
		if err != nil {
			return nil, err
		}
		ev.Time, ev.Run = now.UnixNano(), id
		evs = append(evs, ev)
	}
	if err := e.opts.Journal.Append(evs...); err != nil {
		return nil, fmt.Errorf("start rerun of %s: %w", orig.ID, err)
	}
	s := NewState()
	for _, ev := range evs {
		if err := s.Apply(ev); err != nil {
			return nil, err
		}
	}
	r := s.Runs[id]
	for _, ev := range evs {
		e.observe(r, ev)
	}
	return r, e.execute(ctx, wf, r, nil)
}

// reusedEvent is the TaskFinished that gives task the final result it had
// in orig, marked as reused from it.
func reusedEvent(orig *Run, task string) (*journal.Event, error) {
	st := orig.Tasks[task]
	ev := &journal.Event{Type: journal.TaskFinished, Task: task, ReusedFrom: orig.ID, Reason: "reused from run " + orig.ID}
	switch {
	case st == nil:
		return nil, fmt.Errorf("rerun of %s: task %s has no result there to reuse", orig.ID, task)
	case st.Status == Success:
		ev.Status, ev.Outputs = journal.StatusSuccess, st.Outputs()
	case st.Status == Failed || st.Status == TimedOut:
		ev.Status, ev.ExitCode, ev.Error = journal.StatusFailed, int(st.ExitCode), st.Text().Error
		if st.Status == TimedOut {
			ev.Status = journal.StatusTimeout
		}
	default:
		return nil, fmt.Errorf("rerun of %s: task %s is %s there, not a result to reuse", orig.ID, task, st.Status)
	}
	return ev, nil
}

// Finished reports whether the run reached a final status.
func (s RunStatus) Finished() bool { return s == RunSuccess || s == RunFailed || s == RunCanceled }
