package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/engine/schedule"
	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/journal"
)

// runEnd is what a run's goroutine reports to the loop.
type runEnd struct {
	workflow string
	id       string
	run      *engine.Run // nil when the run could not start
	err      error
	ctxDone  bool // the daemon was stopping
}

// engine returns the engine of one run. id is the run's id (chosen before
// it starts, so that a trigger can answer with it); hook, when set, sees
// every event of the run.
func (d *Daemon) engine(j *journal.Journal, id string, hook func(*engine.Run, *journal.Event)) *engine.Engine {
	o := d.opts.Engine
	o.Journal = j
	o.Slots = d.slots
	o.Cancels = d.cancels
	o.Clock = d.clock
	o.Logger = d.log
	if id != "" {
		o.NewRunID = func(time.Time) string { return id }
	}
	o.Observe = func(r *engine.Run, e *journal.Event) {
		d.metrics.observe(r, e)
		if hook != nil {
			hook(r, e)
		}
	}
	return engine.New(o)
}

// resumeAll takes over the runs the journals show interrupted, each on
// its own goroutine. A run already held by an in-doubt task, with nothing
// that was running since, is only reported: it waits for picoflow resolve.
// The runs of a workflow another process holds are left to it.
func (d *Daemon) resumeAll(ctx context.Context, st *engine.State) {
	d.resumed = make(chan struct{}, 1)
	byWF := map[string]bool{}
	var names []string
	for _, r := range st.Interrupted() {
		if !byWF[r.Workflow] {
			byWF[r.Workflow] = true
			names = append(names, r.Workflow)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		j, err := d.js.acquire(name)
		var be *BusyError
		if errors.As(err, &be) {
			d.log.Warn("interrupted runs not resumed: another process runs the workflow and takes them over", "workflow", name, "pid", be.Lock.PID)
			continue
		}
		if err != nil {
			d.log.Error("interrupted runs not resumed: cannot open the workflow's journal", "workflow", name, "err", err)
			continue
		}
		cur := engine.NewState() // read again under the lock: another process may have finished them
		if err := cur.FoldJournal(j); err != nil {
			d.log.Error("interrupted runs not resumed: cannot replay the workflow's journal", "workflow", name, "err", err)
		} else {
			for _, r := range cur.Interrupted() {
				_ = d.resumeOne(ctx, j, r, false, nil)
			}
		}
		d.release(name)
	}
}

// resumeOne resumes one interrupted run whose journal j the daemon holds.
// A run held only by in-doubt tasks is reported and left alone unless
// asked (a handed-over resume: the engine then reports it held again).
// ended, when set, is called with the run's end.
func (d *Daemon) resumeOne(ctx context.Context, j *journal.Journal, r *engine.Run, asked bool, ended func(*engine.Run, error)) error {
	// The journal records the definition's bytes, not the global
	// defaults it was loaded over: a resumed run gets the current ones,
	// the same values as long as the config has not changed since.
	wf, err := workflow.ParseWith(r.Source, []byte(r.Definition), d.opts.Defaults)
	if err != nil {
		d.log.Error("interrupted run: its recorded definition no longer loads; not resumed", "run", r.ID, "workflow", r.Workflow, "err", problemText(err))
		return fmt.Errorf("recorded definition of run %s: %s", r.ID, problemText(err))
	}
	doubt, running := tasksIn(r, engine.InDoubt), tasksIn(r, engine.Running)
	if len(doubt) > 0 && len(running) == 0 && !asked {
		d.log.Warn("run held by in-doubt tasks: settle them with picoflow resolve, then picoflow resume",
			"run", r.ID, "workflow", r.Workflow, "tasks", strings.Join(doubt, ","))
		return nil
	}
	if _, err := d.js.acquire(r.Workflow); err != nil { // open already: another reference
		d.log.Error("interrupted run not resumed", "run", r.ID, "err", err)
		return err
	}
	d.log.Info("resuming an interrupted run", "run", r.ID, "workflow", r.Workflow, "interrupted_tasks", strings.Join(interruptedTasks(r), ","))
	d.sched.Resumed(r.Workflow)
	d.resumesPending.Add(1)
	var once sync.Once
	done := func() {
		once.Do(func() {
			d.resumesPending.Add(-1)
			select {
			case d.resumed <- struct{}{}:
			default:
			}
		})
	}
	eng := d.engine(j, "", func(_ *engine.Run, e *journal.Event) {
		if e.Type == journal.RunResumed {
			done()
		}
	})
	d.active++
	d.live[r.ID] = true
	d.metrics.runs.Store(int64(d.active))
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		err := eng.Resume(ctx, wf, r)
		done()
		if ended != nil {
			ended(r, err)
		}
		d.ended <- runEnd{workflow: r.Workflow, id: r.ID, run: r, err: err, ctxDone: ctx.Err() != nil}
	}()
	return nil
}

// waitResumes waits until every resumed run has journaled its takeover, so
// that the schedule starts after them.
func (d *Daemon) waitResumes(ctx context.Context) {
	for d.resumesPending.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-d.resumed:
		case e := <-d.ended:
			d.finished(ctx, e)
		}
	}
}

func tasksIn(r *engine.Run, s engine.TaskStatus) []string {
	var out []string
	for name, t := range r.Tasks {
		if t.Status == s {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// interruptedTasks are the tasks of r whose attempt was cut short: running
// when PicoFlow died, or stopped by a shutdown (journaled interrupted, so
// pending again with an attempt behind them).
func interruptedTasks(r *engine.Run) []string {
	var out []string
	for name, t := range r.Tasks {
		if t.Status == engine.Running || t.Status == engine.Pending && t.Attempt > 0 {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// apply carries out the scheduler's decisions.
func (d *Daemon) apply(ctx context.Context, acts []schedule.Action) {
	for len(acts) > 0 && d.fatal == nil {
		a := acts[0]
		acts = acts[1:]
		f := a.Fire
		switch a.Kind {
		case schedule.Skip:
			d.skip(f, a.Reason, a.Detail)
		case schedule.Queue:
			d.log.Info("schedule fire waits", "workflow", f.Workflow, "fire_time", f.Time, "trigger", f.Trigger, "why", a.Detail)
		case schedule.Start:
			acts = append(acts, d.start(ctx, f)...)
		}
	}
	d.metrics.queued.Store(int64(d.sched.Queued()))
}

// skip journals a skipped fire (later, if another process holds the
// workflow's journal now).
func (d *Daemon) skip(f schedule.Fire, reason, detail string) {
	d.metrics.skipped(f.Workflow, reason)
	d.log.Info("schedule fire skipped", "workflow", f.Workflow, "fire_time", f.Time, "reason", detail)
	d.record(&journal.Event{Type: journal.ScheduleSkipped, Time: d.clock().UnixNano(),
		Workflow: f.Workflow, FireTime: f.Time.UnixNano(), Trigger: f.Trigger, Reason: detail})
}

// start starts the run of a fire the scheduler decided, and returns what
// the scheduler decides instead when the workflow runs in another process.
func (d *Daemon) start(ctx context.Context, f schedule.Fire) []schedule.Action {
	wf := d.defs[f.Workflow]
	if wf == nil { // removed by a reload while it waited
		return d.sched.Ended(f.Workflow)
	}
	j, err := d.js.acquire(f.Workflow)
	var be *BusyError
	if errors.As(err, &be) {
		return d.busyElsewhere(f, wf, be)
	}
	if err != nil {
		// A damaged journal (or a full disk) stops this workflow, not the
		// daemon: picoflow journal verify / salvage, then it fires again.
		d.log.Error("fire not started: cannot open the workflow's journal", "workflow", f.Workflow, "fire_time", f.Time, "err", err)
		d.metrics.skipped(f.Workflow, "journal")
		return d.sched.Ended(f.Workflow)
	}
	d.metrics.fired(f.Workflow, f.Trigger)
	if !d.appendTo(j, &journal.Event{Type: journal.ScheduleFired, Time: d.clock().UnixNano(),
		Workflow: f.Workflow, FireTime: f.Time.UnixNano(), Trigger: f.Trigger}) {
		d.release(f.Workflow)
		return nil
	}
	d.launch(ctx, j, wf, f, nil, nil)
	return nil
}

// busyElsewhere applies the workflow's overlap policy to a fire that finds
// the workflow running in another process: under queue the fire waits
// until that process lets go; otherwise it is skipped, the reason naming
// the process (allow cannot start a second run on a journal another
// process holds).
func (d *Daemon) busyElsewhere(f schedule.Fire, wf *workflow.Workflow, be *BusyError) []schedule.Action {
	job, _ := JobOf(wf)
	if job.Overlap == schedule.OverlapQueue {
		d.log.Info("schedule fire waits: the workflow runs in another process", "workflow", f.Workflow, "fire_time", f.Time, "pid", be.Lock.PID)
		d.blocked[f.Workflow] = append(d.blocked[f.Workflow], f)
		return nil
	}
	acts := d.sched.Ended(f.Workflow) // the run the scheduler counted did not start
	d.skip(f, schedule.ReasonOverlap, fmt.Sprintf("%s: %v, outside this daemon (overlap: %s)", schedule.ReasonOverlap, be, job.Overlap))
	return acts
}

// retryBlocked starts the fires that waited for another process to let go
// of their workflow, and journals the events that waited likewise.
func (d *Daemon) retryBlocked(ctx context.Context) {
	for name, fires := range d.blocked {
		wf := d.defs[name]
		if wf == nil {
			delete(d.blocked, name)
			d.apply(ctx, d.sched.Ended(name))
			continue
		}
		j, err := d.js.acquire(name)
		if err != nil {
			continue // still busy (or failing: the next heartbeat tries again)
		}
		f := fires[0]
		if len(fires) == 1 {
			delete(d.blocked, name)
		} else {
			d.blocked[name] = fires[1:]
		}
		d.metrics.fired(name, f.Trigger)
		if !d.appendTo(j, &journal.Event{Type: journal.ScheduleFired, Time: d.clock().UnixNano(),
			Workflow: name, FireTime: f.Time.UnixNano(), Trigger: f.Trigger}) {
			d.release(name)
			return
		}
		d.launch(ctx, j, wf, f, nil, nil)
	}
	for name, evs := range d.pending {
		j, err := d.js.acquire(name)
		if err != nil {
			continue
		}
		delete(d.pending, name)
		ok := d.appendTo(j, evs...)
		d.release(name)
		if !ok {
			return
		}
	}
}

// record journals a daemon event in its workflow's journal, or keeps it
// for later while another process holds that journal.
func (d *Daemon) record(e *journal.Event) {
	if len(d.pending[e.Workflow]) > 0 {
		d.pending[e.Workflow] = append(d.pending[e.Workflow], e) // keep the order
		return
	}
	j, err := d.js.acquire(e.Workflow)
	var be *BusyError
	if errors.As(err, &be) {
		d.pending[e.Workflow] = append(d.pending[e.Workflow], e)
		return
	}
	if err != nil {
		d.log.Error("event not journaled: cannot open the workflow's journal", "workflow", e.Workflow, "event", e.Type.String(), "err", err)
		return
	}
	d.appendTo(j, e)
	d.release(e.Workflow)
}

// appendTo journals daemon events durably. A failure stops the daemon:
// the journal refuses every later append until it is reopened (repaired).
func (d *Daemon) appendTo(j *journal.Journal, evs ...*journal.Event) bool {
	if err := j.Append(evs...); err != nil {
		d.fatal = fmt.Errorf("journal %s: %w", evs[0].Type, err)
		d.log.Error("journal append failed: stopping the daemon", "journal", j.Dir(), "err", err)
		return false
	}
	return true
}

// release lets go of one reference to a workflow's journal.
func (d *Daemon) release(wf string) {
	if err := d.js.release(wf); err != nil {
		d.log.Warn("close a workflow's journal", "workflow", wf, "err", err)
	}
}

// launch starts a run on its own goroutine. started, when set, is called
// once with the run id when its RunStarted is durable, or with the error
// that prevented it.
// It owns one reference to the workflow's journal j, released when the
// run ends.
func (d *Daemon) launch(ctx context.Context, j *journal.Journal, wf *workflow.Workflow, f schedule.Fire, params map[string]string, started func(string, error)) {
	id := engine.NewRunID(d.clock())
	var once sync.Once
	report := func(err error) {
		if started != nil {
			once.Do(func() { started(id, err) })
		}
	}
	eng := d.engine(j, id, func(r *engine.Run, e *journal.Event) {
		if e.Type == journal.RunStarted {
			report(nil)
		}
	})
	fire := f.Time
	if f.Trigger == schedule.TriggerManual {
		fire = time.Time{}
	}
	d.active++
	d.live[id] = true
	d.metrics.runs.Store(int64(d.active))
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		r, err := eng.StartFired(ctx, wf, params, f.Trigger, fire)
		if r == nil && err == nil {
			err = errors.New("run did not start")
		}
		report(err)
		d.ended <- runEnd{workflow: wf.Name, id: id, run: r, err: err, ctxDone: ctx.Err() != nil}
	}()
}

// finished records the end of a run and starts what waited for it.
func (d *Daemon) finished(ctx context.Context, e runEnd) {
	d.release(e.workflow)
	delete(d.live, e.id)
	d.active--
	d.metrics.runs.Store(int64(d.active))
	d.logEnd(e)
	if e.run == nil && e.err != nil && d.fatal == nil {
		d.fatal = fmt.Errorf("run of %s could not start: %w", e.workflow, e.err)
	}
	d.apply(ctx, d.sched.Ended(e.workflow))
}

func (d *Daemon) logEnd(e runEnd) {
	log := d.log.With("workflow", e.workflow, "run", e.id)
	switch {
	case e.err != nil:
		log.Error("run failed to execute", "err", e.err)
	case e.run.Status == engine.RunSuccess:
		log.Info("run succeeded")
	case e.run.Status == engine.RunFailed || e.run.Status == engine.RunCanceled:
		log.Warn("run finished", "status", e.run.Status.String())
	case e.ctxDone:
		log.Info("run interrupted by the shutdown: resumed at the next start")
	default:
		log.Warn("run held by in-doubt tasks: stop the daemon and settle them with picoflow resolve",
			"tasks", strings.Join(tasksIn(e.run, engine.InDoubt), ","))
	}
}

// handle answers a control request. A trigger answers once the run's
// RunStarted is durable, from the run's goroutine.
func (d *Daemon) handle(ctx context.Context, req Request) Response {
	switch req.Op {
	case OpStatus:
		return Response{OK: true, Status: d.status()}
	case OpReload:
		d.reload(ctx, true)
		return Response{OK: true}
	case OpResolve:
		return d.resolve(req)
	case OpTruncate:
		return d.truncate(req)
	case OpCancel:
		if !d.cancels.Cancel(req.Run, engine.CancelRequest{Reason: req.Reason, By: req.By, Grace: req.Grace}) {
			return Response{Code: CodeNotFound, Error: fmt.Sprintf("run %s is not running in the daemon", req.Run)}
		}
		d.log.Info("cancel requested", "run", req.Run, "by", req.By, "reason", req.Reason)
		return Response{OK: true, Run: req.Run, Workflow: req.Workflow}
	case OpTrigger:
	default:
		return Response{Code: CodeInvalid, Error: fmt.Sprintf("unknown op %q (want %s, %s, %s or %s)", req.Op, OpTrigger, OpStatus, OpReload, OpResolve)}
	}
	wf := d.defs[req.Workflow]
	if wf == nil {
		return Response{Code: CodeNotFound, Error: fmt.Sprintf("the daemon has no workflow %q (it loads %s)", req.Workflow, d.opts.WorkflowsDir)}
	}
	for k := range req.Params {
		if _, ok := wf.Env[k]; !ok {
			return Response{Code: CodeInvalid, Error: fmt.Sprintf("parameter %s: the workflow's env has no %s; declare it under env: with a default", k, k)}
		}
	}
	a, err := d.sched.Trigger(req.Workflow, d.clock(), req.Force)
	if errors.Is(err, schedule.ErrBusy) {
		return Response{Code: CodeBusy, Error: err.Error() + "; wait, or trigger with --force to start another run alongside"}
	}
	if err != nil {
		return Response{Code: CodeNotFound, Error: err.Error()}
	}
	j, err := d.js.acquire(req.Workflow)
	if err != nil {
		d.apply(ctx, d.sched.Ended(req.Workflow)) // the run the scheduler counted did not start
		var be *BusyError
		if errors.As(err, &be) {
			return Response{Code: CodeBusy, Error: be.Error() + "; wait for it to finish"}
		}
		return Response{Code: CodeInternal, Error: err.Error()}
	}
	reply := make(chan Response, 1)
	d.launch(ctx, j, wf, a.Fire, req.Params, func(id string, err error) {
		if err != nil {
			reply <- Response{Code: CodeInternal, Error: err.Error(), Workflow: wf.Name}
			return
		}
		reply <- Response{OK: true, Run: id, Workflow: wf.Name}
	})
	// Wait here for the durable RunStarted: the loop pauses for one fsync.
	select {
	case resp := <-reply:
		return resp
	case <-ctx.Done():
		return Response{Code: CodeStopping, Error: "the daemon is stopping"}
	}
}

// status reports the scheduler's state.
func (d *Daemon) status() *Status {
	s := &Status{PID: os.Getpid(), Ready: d.scheduling.Load(), Started: d.started, Running: d.active,
		Queued: d.sched.Queued(), Invalid: d.catalog.invalid()}
	for _, js := range d.sched.Status() {
		w := WorkflowStatus{Name: js.Name, Next: js.Next, LastFire: js.Last, Running: js.Running, Queued: js.Queued}
		if wf := d.defs[js.Name]; wf != nil {
			w.Schedule = wf.Schedule
		}
		s.Workflows = append(s.Workflows, w)
	}
	return s
}
