package engine

import (
	"os"
	"runtime"
	"time"

	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/executors"
)

// The spare: the next task's shell, started before a slot frees.
//
// While every slot of the run is taken, and the running tasks leave a core
// free (coreUse, below), the loop starts the attempt that
// would start next (the head of the ready queue) ahead, as far as its
// executor gates (executors.Gater): its goroutine opens the log and the
// shell executor forks and execs its shell, which waits at its gate. When
// a slot frees, startReady takes the spare for that task instead of a new
// launch, and the batch that journals its task_started opens the gate once
// committed, exactly as for any launch. So the fork, exec and start-up of
// the next shell (about a millisecond of CPU) run while the other tasks
// run, on a core that would otherwise wait, instead of after the slot
// freed: a wide DAG of short tasks that wait (on the network, a disk, a
// sleep) keeps its slots busy.
//
// Nothing of the task runs before its start is committed: the spare's
// start is not even staged until a slot is free. A spare no batch started
// (the run stops or is canceled, the ready queue changed, it waited longer
// than spareFresh) is dismissed:
// its shell reads end of file at its gate and exits, its log file, which
// no journal entry names, is removed, and its goroutine reports a result
// the loop only counts (dismissed). There is at most one spare, and none
// for handlers (they start once the DAG has settled), for executors that
// do not gate (ssh, http: their start is their request), or for a task
// that reads at its fork what an earlier task may change (readsAtFork).

// A spare is worth its fork only where a core would otherwise wait. The
// next shell's fork, exec and start-up (about a millisecond of CPU) are
// work its task needs anyway: a spare moves them from after a slot frees
// to before, and that gains the slot's time only if a core is free
// meanwhile. When the running tasks keep every core busy (short tasks
// whose time is mostly their shell's start-up, as many as there are
// cores), the spare's start-up competes with them instead, and the extra
// process and its wake-up at the gate cost more than it saves: 1,000
// `true` tasks two at a time on two cores took 1.11 × `xargs -P 2` with
// a spare and 0.93 × without, while 300 tasks of `sleep 0.005` took
// 0.91 × with one and 1.01 × without (paired runs, 2026-12-02). So the
// loop keeps how many cores the ended attempts' processes kept busy while
// they ran (coreUse, from the executor's Result.CPU) and makes the spare
// of a full run only while the running tasks at that rate leave half a
// core free. The successor spare of a chain runs beside the one task that
// runs, and the head start beside the journal's open: one task, which
// leaves a core free on any machine with two.

// coreUse follows how many cores the ended attempts' processes kept busy
// while they ran (CPU time over run time): a moving average, the last
// attempts weighing most.
type coreUse struct {
	share float64
	n     int
}

// note records an attempt that ran for took and used cpu of CPU time on a
// machine of cpus cores. A task whose processes use several cores counts
// as several. A spare's time runs from its gate and its CPU from its fork
// (its shell's start-up too), so a short task's share may read high: it
// counts as at most every core.
func (u *coreUse) note(cpu, took time.Duration, cpus int) {
	if cpu <= 0 || took <= 0 {
		return // the executor does not know (ssh, http), or nothing ran
	}
	s := min(float64(cpu)/float64(took), float64(cpus))
	if u.n == 0 {
		u.share = s
	} else {
		u.share += (s - u.share) / 8
	}
	u.n++
}

// busy reports whether running attempts at the share seen so far leave
// less than half of cpus cores free. Before any attempt ended it is not.
func (u *coreUse) busy(running, cpus int) bool {
	return u.n > 0 && float64(running)*u.share > float64(cpus)-0.5
}

// cpus returns the number of cores the tasks share.
func (e *Engine) cpus() int {
	if e.opts.CPUs > 0 {
		return e.opts.CPUs
	}
	return runtime.NumCPU()
}

// spareFresh is how long a spare may wait and still be the attempt that
// starts. What its executor resolved when it started (a secret file's
// value, the task's user) must not be older than that; past it, the spare
// is dismissed and the task starts as any launch. A spare saves about a
// millisecond: on tasks that run longer than this, that is nothing, and
// the fork it wastes then is nothing either.
const spareFresh = 200 * time.Millisecond

// prespawn starts the spare when every slot is taken and the head of the
// ready queue is a task whose executor gates; or, when the batch just
// committed started the one attempt that runs and nothing else is ready
// (a chain), for the task its success makes ready next (successor).
func (x *runner) prespawn(starts []launch) {
	if x.ahead != nil || x.stopping || x.canceling {
		return
	}
	switch {
	case len(x.ready) > 0 && x.running >= x.maxParallel() && !x.cores.busy(x.running, x.e.cpus()):
		x.spareFor(x.ready[0], -1)
	case len(x.ready) == 0 && x.retries.Len() == 0 && x.running == 1 && len(starts) == 1 && !x.noSuccessor:
		if d := x.successor(starts[0].task); d >= 0 {
			x.spareFor(d, starts[0].task)
		}
	}
}

// spareFor starts the spare for task i, made ahead of the end of task
// after (-1: none), unless its executor does not gate or it reads at its
// fork what may change meanwhile.
func (x *runner) spareFor(i, after int) {
	if !x.e.spareable(x.wf, i, x.r.Params) {
		return
	}
	attempt := int(x.view(i).Attempt) + 1
	l := launch{task: i, attempt: attempt, logPath: x.logPath(i, attempt), gate: newStartGate(),
		spare: true, made: x.e.opts.Clock(), after: after}
	l.req = x.request(i, attempt)
	x.ahead = &l
	spareMade(x.wf.Name, x.wf.Tasks[i].Name)
	x.spawn(l)
}

// spareMade is called with each spare the loop makes; tests count them.
var spareMade = func(workflow, task string) {}

// spareable reports whether task i of wf may be started ahead: it is no
// handler, its executor gates, and it reads nothing at its fork that may
// change meanwhile.
func (e *Engine) spareable(wf *workflow.Workflow, i int, params map[string]string) bool {
	t := wf.Tasks[i]
	ex := e.opts.Executors[t.Type()]
	return !t.IsHandler() && ex != nil && executors.Gates(ex) && !readsAtFork(t, wf.Env, params)
}

// successor returns the task that running task i's success makes the
// first of the ready queue (settled decides i's dependents in this
// order), when its other upstream tasks have all ended; -1: none. Its
// spare's environment has none of i's outputs: checkSpare lets it go if
// i passes some on.
func (x *runner) successor(i int) int {
	u := Upstream{Name: x.wf.Tasks[i].Name, Outcome: OutcomeSuccess}
	for _, d32 := range x.wf.Downstream(i) {
		d := int(d32)
		if x.view(d).Status != Pending || x.queued[d] || x.tallies[d].Open != 1 {
			continue
		}
		tl := x.tallies[d] // a copy: Add copies the names it changes
		tl.Ended(u)
		if v, _ := DecideTally(x.wf.Tasks[d].Rule(), tl); v == VerdictRun {
			return d
		}
	}
	return -1
}

// takeSpare returns the spare when it is attempt number attempt of task i.
// It is never older than spareFresh: checkSpare, earlier in the same turn,
// settled a spare that old.
func (x *runner) takeSpare(i, attempt int) (launch, bool) {
	s := x.ahead
	if s == nil || s.task != i || s.attempt != attempt {
		return launch{}, false
	}
	x.ahead = nil
	return *s, true
}

// checkSpare dismisses the spare unless it is still the task that starts
// next: the run stops or is canceled, or the ready queue changed. A spare
// that waited longer than spareFresh is dismissed too, and the loop waits
// for its report (settleSpare): its task may start in this very turn, and
// its new attempt opens the same log path, which the dismissed spare's
// goroutine removes (logFiles.unused); it must be done with it first.
func (x *runner) checkSpare() {
	s := x.ahead
	if s == nil {
		return
	}
	stale := x.e.opts.Clock().Sub(s.made) > spareFresh
	if s.after >= 0 && !x.stopping && !x.canceling {
		if x.view(s.after).Status == Running {
			return // a successor spare whose upstream task still runs
		}
		// Its upstream task ended. If it ran longer than spareFresh, the
		// tasks of this chain gain nothing from a spare, and each further
		// successor spare would be a fork wasted, whatever lets this one
		// go (staleness, outputs, a retry, a failure).
		x.noSuccessor = x.noSuccessor || stale
	}
	switch {
	case x.stopping || x.canceling:
		x.dismissSpare()
	case len(x.ready) == 0 || x.ready[0] != s.task:
		x.dismissSpare()
	case s.after >= 0 && len(x.view(s.after).Outputs()) > 0:
		x.settleSpare() // its environment lacks them
	case stale:
		x.settleSpare()
	}
}

// dismissSpare lets the spare go without running; the loop counts its
// goroutine's report (result) before it returns (settleSpare, drain).
func (x *runner) dismissSpare() {
	if s := x.ahead; s != nil {
		x.ahead = nil
		s.gate.say(gateDismissed)
		x.dismissed++
	}
}

// settleSpare dismisses the spare and waits for its report: the loop
// returns with no goroutine of its own left. Only a spare's report can
// come while nothing runs.
func (x *runner) settleSpare() {
	x.dismissSpare()
	for x.dismissed > 0 {
		x.result(<-x.results)
	}
}

// result takes an attempt's report: a dismissed spare's is only counted.
func (x *runner) result(res attemptResult) {
	if res.dismissed {
		x.dismissed--
		return
	}
	x.handle(res)
}

// unused closes the log of an attempt that never ran: a dismissed spare's
// is removed (no journal entry names it); an attempt whose start was
// journaled keeps its, as an interrupted attempt does.
func (p *logFiles) unused(f *os.File, dismissed bool) {
	if !dismissed {
		p.done(f, false)
		return
	}
	f.Close()
	_ = os.Remove(f.Name())
}

// readsAtFork reports a task whose attempt reads, before its gate, what
// the tasks running meanwhile may change: its workdir (checked, and
// entered by the fork), its user: (the account, its groups and its home,
// looked up for the fork) or a ${secret:...} (read for each attempt, so
// that a rotated file is used by the next). Its spare could wait long enough
// for a task before it to create or replace the directory, or rotate the
// file, and then run with what it read at the fork: such a task gets no
// spare. (${env:...} reads picoflow's own environment, which does not
// change; run parameters are never resolved.)
func readsAtFork(t *workflow.Task, wfEnv, params map[string]string) bool {
	if t.User != "" || (t.Shell != nil && t.Shell.Workdir != "") {
		return true
	}
	for k, v := range wfEnv {
		if _, ok := params[k]; !ok && hasSecretRef(v) {
			return true
		}
	}
	if t.Shell == nil { // no other type gates today: the one list of fields, copied
		found := false
		t.Task.MapStrings(func(_, s string) string {
			found = found || hasSecretRef(s)
			return s
		})
		return found
	}
	// A shell task's fields of that list, without the copy (an allocation
	// per spare): its command and its env (its workdir has returned).
	if hasSecretRef(t.Shell.Command) {
		return true
	}
	for _, v := range t.Env {
		if hasSecretRef(v.Value) {
			return true
		}
	}
	return false
}

func hasSecretRef(s string) bool {
	refs, _ := executors.ScanRefs(s)
	for _, r := range refs {
		if r.Kind == executors.RefSecret {
			return true
		}
	}
	return false
}
