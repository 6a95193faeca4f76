package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/journal"
)

// CancelRequest asks for a run to be canceled: it is journaled in the
// run_canceled event.
type CancelRequest struct {
	Reason string // free text from the operator ("" allowed)
	By     string // who asked: user@host/pid, or "signal"
	// Grace, when set, replaces the workflow's shutdown_grace for the
	// running attempts of this cancel (picoflow cancel --grace; 0: stop
	// them now). It is not journaled: it only says how long to wait.
	Grace *time.Duration `json:",omitempty"`
}

// Cancels routes cancel requests to the runs executing in this process.
// One is shared by every Engine of a process (Options.Cancels); Cancel may
// be called from any goroutine.
type Cancels struct {
	mu   sync.Mutex
	runs map[string]chan CancelRequest
}

// NewCancels returns an empty registry.
func NewCancels() *Cancels { return &Cancels{runs: map[string]chan CancelRequest{}} }

// Cancel hands req to the live run id and reports whether that run executes
// here. The run journals the cancel on its loop, before it acts on it.
func (c *Cancels) Cancel(id string, req CancelRequest) bool {
	c.mu.Lock()
	ch, ok := c.runs[id]
	c.mu.Unlock()
	if !ok {
		return false
	}
	select {
	case ch <- req:
	default: // a cancel is already on its way; the first one counts
	}
	return true
}

// Live returns the ids of the runs executing here.
func (c *Cancels) Live() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, 0, len(c.runs))
	for id := range c.runs {
		ids = append(ids, id)
	}
	return ids
}

func (c *Cancels) register(id string) (<-chan CancelRequest, func()) {
	ch := make(chan CancelRequest, 1)
	c.mu.Lock()
	c.runs[id] = ch
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		delete(c.runs, id)
		c.mu.Unlock()
	}
}

// ErrFinished is returned when a cancel finds the run already finished.
var ErrFinished = errors.New("run already finished")

// CancelEvents returns the events that cancel run r of workflow wf: the
// run_canceled event, then every task that can no longer run as canceled.
// Before the DAG has settled, that is the DAG's pending, retrying and
// in-doubt tasks (the handlers still run: on_cancel, on_exit); after, the
// handlers too. live says whether a process still runs r's attempts: they
// get the grace; otherwise (the process is gone) running attempts are
// journaled as canceled too. It is pure: the caller commits the events.
func CancelEvents(wf *workflow.Workflow, r *Run, req CancelRequest, live bool, now time.Time) []*journal.Event {
	ts := now.UnixNano()
	evs := []*journal.Event{{Type: journal.RunCanceled, Time: ts, Run: r.ID, Reason: req.Reason, By: req.By}}
	settled := true
	for _, t := range wf.DAG() {
		if st := r.Tasks[t.Name]; st == nil || !st.Status.Final() {
			settled = false
		}
	}
	why := CanceledReason
	for _, t := range wf.Tasks {
		if t.IsHandler() && !settled {
			continue
		}
		st := r.Tasks[t.Name]
		switch {
		case st == nil || st.Status == Pending || st.Status == Retrying || st.Status == InDoubt:
			evs = append(evs, &journal.Event{Type: journal.TaskSkipped, Time: ts, Run: r.ID, Task: t.Name,
				Status: journal.StatusCanceled, Reason: why})
		case st.Status == Running && !live:
			evs = append(evs, &journal.Event{Type: journal.TaskFinished, Time: ts, Run: r.ID, Task: t.Name,
				Attempt: int(st.Attempt), Status: journal.StatusCanceled, ExitCode: -1,
				Reason: why + " while no picoflow process ran it (its processes were killed)"})
		}
	}
	return evs
}

// CanceledReason begins the reason of every task a cancel settles without
// a live attempt to stop (skipped, or left running by a dead process); an
// attempt a live cancel stopped after the grace has no such reason.
const CanceledReason = "the run was canceled"

// CancelStopped cancels r, a run no process executes (interrupted or
// damaged): it kills what is left of its attempts, journals the cancel,
// then runs its on_cancel and on_exit handlers and finishes it as
// canceled. Nothing of its DAG ever runs again.
func (e *Engine) CancelStopped(ctx context.Context, wf *workflow.Workflow, r *Run, req CancelRequest) error {
	if r.Status != RunRunning && r.Status != RunDamaged {
		return fmt.Errorf("cancel run %s: %w with status %s", r.ID, ErrFinished, r.Status)
	}
	if err := sameDefinition(wf, r); err != nil {
		return err
	}
	e.KillLeftovers(r.ID)
	if r.Canceled.IsZero() { // a second cancel of a run cut short while canceling adds nothing
		if err := e.commit(r, CancelEvents(wf, r, req, false, e.opts.Clock())); err != nil {
			return fmt.Errorf("cancel run %s: %w", r.ID, err)
		}
	} else if err := e.commit(r, finishRunning(wf, r, e.opts.Clock())); err != nil {
		return fmt.Errorf("cancel run %s: %w", r.ID, err)
	}
	return e.execute(ctx, wf, r, nil)
}

// finishRunning journals the attempts of a run that a dead process left
// running as canceled.
func finishRunning(wf *workflow.Workflow, r *Run, now time.Time) []*journal.Event {
	var evs []*journal.Event
	for _, t := range wf.Tasks {
		if st := r.Tasks[t.Name]; st != nil && st.Status == Running {
			evs = append(evs, &journal.Event{Type: journal.TaskFinished, Time: now.UnixNano(), Run: r.ID, Task: t.Name,
				Attempt: int(st.Attempt), Status: journal.StatusCanceled, ExitCode: -1,
				Reason: CanceledReason + "; picoflow stopped while it ran"})
		}
	}
	return evs
}

// cancel journals a cancel request for the live run (staged: the loop
// commits it before acting) and stops the DAG: nothing of it starts any
// more, running attempts get the grace.
func (x *runner) cancel(req CancelRequest, now time.Time) {
	if x.canceling {
		return
	}
	evs := CancelEvents(x.wf, x.r, req, true, now)
	x.pending = append(x.pending, evs[0]) // run_canceled
	for _, ev := range evs[1:] {
		if i, ok := x.wf.Index(ev.Task); ok {
			x.stage(i, ev)
		}
	}
	x.canceling, x.canceledBy = true, cancelReason(req)
	x.ready, x.retries = nil, nil
	x.e.log.Info("canceling run", "run", x.r.ID, "by", req.By, "reason", req.Reason, "running", x.running)
}

// cancelGrace arms the wait the running attempts of a canceled run get
// before they are interrupted: the run's grace (shutdown_grace, or
// --grace), or the request's own (0: interrupt them now). A wait already
// armed (a stop, an earlier cancel) is only ever shortened, so a second
// cancel --grace 0 cuts a long grace short.
func (x *runner) cancelGrace(req CancelRequest, now time.Time) {
	if x.running == 0 {
		return
	}
	d := x.grace()
	if req.Grace != nil {
		d = max(*req.Grace, 0)
	}
	if x.graceC != nil && !now.Add(d).Before(x.graceAt) {
		return
	}
	if d == 0 {
		x.graceC = nil
		x.e.log.Warn("cancel with no grace: interrupting running tasks", "run", x.r.ID, "running", x.running)
		x.kill()
		return
	}
	x.graceC, x.graceAt = x.e.opts.After(d), now.Add(d)
}

// cancelReason is the run_finished reason of a canceled run.
func cancelReason(req CancelRequest) string {
	s := "canceled by " + req.By
	if req.Reason != "" {
		s += ": " + req.Reason
	}
	return s
}

// cancelLeft stages as canceled the DAG tasks of a canceled run that are
// not final: after a crash during the cancel's grace, resume journaled the
// attempts in flight interrupted (pending again) or in doubt. The DAG of a
// canceled run never runs again.
func (x *runner) cancelLeft(now time.Time) {
	for i, t := range x.wf.DAG() {
		switch x.view(i).Status {
		case Pending, Retrying, InDoubt:
			x.stage(i, &journal.Event{Type: journal.TaskSkipped, Time: now.UnixNano(), Run: x.r.ID, Task: t.Name,
				Status: journal.StatusCanceled, Reason: CanceledReason + " (picoflow stopped during the cancel)"})
		}
	}
}
