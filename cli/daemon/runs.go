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
func (d *Daemon) engine(id string, hook func(*engine.Run, *journal.Event)) *engine.Engine {
	o := d.opts.Engine
	o.Journal = d.j
	o.Slots = d.slots
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

// resumeAll takes over the runs the journal shows interrupted, each on
// its own goroutine. A run already held by an in-doubt task, with nothing
// that was running since, is only reported: it waits for picoflow resolve.
func (d *Daemon) resumeAll(ctx context.Context, st *engine.State) {
	resumed := make(chan struct{}, 1)
	d.resumed = resumed
	for _, r := range st.Interrupted() {
		// The journal records the definition's bytes, not the global
		// defaults it was loaded over: a resumed run gets the current ones,
		// the same values as long as the config has not changed since.
		wf, err := workflow.ParseWith(r.Source, []byte(r.Definition), d.opts.Defaults)
		if err != nil {
			d.log.Error("interrupted run: its recorded definition no longer loads; not resumed", "run", r.ID, "workflow", r.Workflow, "err", problemText(err))
			continue
		}
		doubt, running := tasksIn(r, engine.InDoubt), tasksIn(r, engine.Running)
		if len(doubt) > 0 && len(running) == 0 {
			d.log.Warn("run held by in-doubt tasks: stop the daemon, settle them with picoflow resolve, start it again",
				"run", r.ID, "workflow", r.Workflow, "tasks", strings.Join(doubt, ","))
			continue
		}
		d.log.Info("resuming an interrupted run", "run", r.ID, "workflow", r.Workflow, "interrupted_tasks", strings.Join(interruptedTasks(r), ","))
		d.sched.Resumed(r.Workflow)
		d.resumesPending.Add(1)
		var once sync.Once
		done := func() {
			once.Do(func() {
				d.resumesPending.Add(-1)
				select {
				case resumed <- struct{}{}:
				default:
				}
			})
		}
		eng := d.engine("", func(_ *engine.Run, e *journal.Event) {
			if e.Type == journal.RunResumed {
				done()
			}
		})
		d.active++
		d.metrics.runs.Store(int64(d.active))
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			err := eng.Resume(ctx, wf, r)
			done()
			d.ended <- runEnd{workflow: r.Workflow, id: r.ID, run: r, err: err, ctxDone: ctx.Err() != nil}
		}()
	}
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
			d.metrics.skipped(f.Workflow, a.Reason)
			d.log.Info("schedule fire skipped", "workflow", f.Workflow, "fire_time", f.Time, "reason", a.Detail)
			d.append(&journal.Event{Type: journal.ScheduleSkipped, Time: d.clock().UnixNano(),
				Workflow: f.Workflow, FireTime: f.Time.UnixNano(), Trigger: f.Trigger, Reason: a.Detail})
		case schedule.Queue:
			d.log.Info("schedule fire waits", "workflow", f.Workflow, "fire_time", f.Time, "trigger", f.Trigger, "why", a.Detail)
		case schedule.Start:
			wf := d.defs[f.Workflow]
			if wf == nil { // removed by a reload while it waited
				acts = append(acts, d.sched.Ended(f.Workflow)...)
				continue
			}
			d.metrics.fired(f.Workflow, f.Trigger)
			if !d.append(&journal.Event{Type: journal.ScheduleFired, Time: d.clock().UnixNano(),
				Workflow: f.Workflow, FireTime: f.Time.UnixNano(), Trigger: f.Trigger}) {
				return
			}
			d.launch(ctx, wf, f, nil, nil)
		}
	}
	d.metrics.queued.Store(int64(d.sched.Queued()))
}

// append journals a daemon event durably. A failure stops the daemon:
// the journal refuses every later append until it is reopened (repaired).
func (d *Daemon) append(e *journal.Event) bool {
	if err := d.j.Append(e); err != nil {
		d.fatal = fmt.Errorf("journal %s: %w", e.Type, err)
		d.log.Error("journal append failed: stopping the daemon", "err", err)
		return false
	}
	return true
}

// launch starts a run on its own goroutine. started, when set, is called
// once with the run id when its RunStarted is durable, or with the error
// that prevented it.
func (d *Daemon) launch(ctx context.Context, wf *workflow.Workflow, f schedule.Fire, params map[string]string, started func(string, error)) {
	id := engine.NewRunID(d.clock())
	var once sync.Once
	report := func(err error) {
		if started != nil {
			once.Do(func() { started(id, err) })
		}
	}
	eng := d.engine(id, func(r *engine.Run, e *journal.Event) {
		if e.Type == journal.RunStarted {
			report(nil)
		}
	})
	fire := f.Time
	if f.Trigger == schedule.TriggerManual {
		fire = time.Time{}
	}
	d.active++
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
	case OpTrigger:
	default:
		return Response{Code: CodeInvalid, Error: fmt.Sprintf("unknown op %q (want %s, %s or %s)", req.Op, OpTrigger, OpStatus, OpReload)}
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
	reply := make(chan Response, 1)
	d.launch(ctx, wf, a.Fire, req.Params, func(id string, err error) {
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
