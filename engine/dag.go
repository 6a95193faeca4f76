package engine

import (
	"strings"
	"time"

	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/journal"
)

// This file holds the runner's scheduling decisions: trigger rules over
// the DAG (Decide), then the run handlers once the DAG has settled.

// upstream is task d as its dependents' trigger rules see it.
func (x *runner) upstream(d int) Upstream {
	t := x.wf.Tasks[d]
	return Upstream{Name: t.Name, Outcome: OutcomeOf(x.view(d).Status, t.ContinueOnFailure), Cause: x.causes[d]}
}

// tallyAll counts the upstream outcomes of every task of the DAG, once,
// when the loop starts; settled keeps the counts current.
func (x *runner) tallyAll() {
	for i := range x.wf.DAG() {
		for _, d := range x.wf.Deps(i) {
			x.tallies[i].Add(x.upstream(int(d)))
		}
	}
}

// decide applies pending task i's trigger rule: it queues the task, or
// stages its skip (and decides its dependents in turn), or leaves it to
// wait for more upstream outcomes.
func (x *runner) decide(i int, now time.Time) {
	if x.view(i).Status != Pending || x.queued[i] || x.canceling {
		return
	}
	tl := x.tallies[i]
	v, reason := DecideTally(x.wf.Tasks[i].Rule(), tl)
	switch v {
	case VerdictRun:
		x.queued[i] = true
		x.ready = append(x.ready, i)
	case VerdictSkip:
		// The staged skip makes diamonds skip once.
		cause := tl.FailedName()
		if cause == "" {
			_, cause = tl.SkippedName()
		}
		if cause != "" {
			if x.causes == nil {
				x.causes = make(map[int]string)
			}
			x.causes[i] = cause
		}
		x.stage(i, &journal.Event{Type: journal.TaskSkipped, Time: now.UnixNano(),
			Run: x.r.ID, Task: x.wf.Tasks[i].Name, Status: journal.StatusSkipped, Reason: reason})
		x.settled(i, now)
	}
}

// settled counts task i's final outcome in the tallies of its dependents
// and decides those still pending.
func (x *runner) settled(i int, now time.Time) {
	u := x.upstream(i)
	for _, d := range x.wf.Downstream(i) {
		x.tallies[d].Ended(u)
		x.decide(int(d), now)
	}
}

// dagSettled reports whether every task of the DAG is final, so that the
// run handlers may start.
func (x *runner) dagSettled() bool {
	for i := range x.wf.DAG() {
		if !x.view(i).Status.Final() {
			return false
		}
	}
	return true
}

// runStatus is the run's status as its DAG decides it: canceled once a
// cancel was journaled, failed when a task without continue_on_failure
// failed or timed out, else success. Handlers never change it.
func (x *runner) runStatus() string {
	if x.canceling {
		return journal.StatusCanceled
	}
	for i, t := range x.wf.DAG() {
		if s := x.view(i).Status; (s == Failed || s == TimedOut) && !t.ContinueOnFailure {
			return journal.StatusFailed
		}
	}
	return journal.StatusSuccess
}

// failedTasks names the DAG's failed and timed-out tasks, in definition
// order, for PICOFLOW_FAILED_TASKS.
func (x *runner) failedTasks() string {
	var names []string
	for i, t := range x.wf.DAG() {
		if s := x.view(i).Status; s == Failed || s == TimedOut {
			names = append(names, t.Name)
		}
	}
	return strings.Join(names, ",")
}

// handlerRuns reports whether a handler list runs for a run status.
func handlerRuns(list, status string) bool {
	switch list {
	case workflow.HandlerOnSuccess:
		return status == journal.StatusSuccess
	case workflow.HandlerOnFailure:
		return status == journal.StatusFailed
	case workflow.HandlerOnCancel:
		return status == journal.StatusCanceled
	}
	return true // on_exit
}

// handlerPhase starts the run handlers once the DAG has settled: the lists
// chosen by the run's status first, on_exit when they are final. Handlers
// of the other lists are skipped. It reports whether it queued or staged
// anything; false means the run has nothing left to start.
func (x *runner) handlerPhase(now time.Time) bool {
	n := len(x.wf.DAG())
	if n == len(x.wf.Tasks) || !x.dagSettled() {
		return false
	}
	status := x.runStatus()
	changed, exitWaits := false, false
	for _, exit := range []bool{false, true} {
		for i := n; i < len(x.wf.Tasks); i++ {
			t, st := x.wf.Tasks[i], x.view(i)
			if (t.Handler() == workflow.HandlerOnExit) != exit {
				continue
			}
			if !handlerRuns(t.Handler(), status) {
				if st.Status == Pending {
					x.stage(i, &journal.Event{Type: journal.TaskSkipped, Time: now.UnixNano(),
						Run: x.r.ID, Task: t.Name, Status: journal.StatusSkipped,
						Reason: t.Handler() + " handler: the run's status is " + status})
					changed = true
				}
				continue
			}
			if !exit && !st.Status.Final() {
				exitWaits = true // on_exit runs last
			}
			if exit && exitWaits || st.Status != Pending || x.queued[i] {
				continue
			}
			x.queued[i] = true
			x.ready = append(x.ready, i)
			changed = true
		}
	}
	if changed {
		// A cancel's grace was for the DAG's attempts, which have ended:
		// it does not cut the handlers short. If it ended by killing
		// them, the handlers get a context of their own.
		x.graceC = nil
		if x.killCtx.Err() != nil {
			x.killCtx, x.kill = newKillCtx()
		}
	}
	return changed
}

// handlerEnv is what a handler sees of the run besides its own env:
// PICOFLOW_RUN_STATUS and PICOFLOW_FAILED_TASKS.
func (x *runner) handlerEnv() []string {
	return []string{"PICOFLOW_RUN_STATUS=" + x.runStatus(), "PICOFLOW_FAILED_TASKS=" + x.failedTasks()}
}
