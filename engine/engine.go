package engine

import (
	"container/heap"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/executors"
	"github.com/picoflow/picoflow/journal"
)

// Journal is what the engine needs of the journal: durable appends, and
// lazy ones for facts that may be lost in a crash.
type Journal interface {
	Append(evs ...*journal.Event) error
	AppendLazy(evs ...*journal.Event) error
}

// Options configure an Engine. Journal, Executors and LogDir are required.
type Options struct {
	Journal   Journal
	Executors map[string]executors.Executor // by task type
	LogDir    string                        // <home>/logs

	Clock    func() time.Time // default time.Now
	NewRunID func(time.Time) string
	Logger   *slog.Logger
	// Observe is called after every event the engine applies, from the
	// run's goroutine (progress output, metrics).
	Observe func(r *Run, e *journal.Event)

	MaxParallel int           // overrides the workflow's max_parallel when > 0
	Grace       time.Duration // overrides the workflow's shutdown_grace when > 0
	KillGrace   time.Duration // SIGTERM → SIGKILL wait for a task's processes
	// Slots, when set, is a task budget shared with other engines (the
	// daemon's global max_parallel), consulted besides MaxParallel before
	// each attempt launches.
	Slots Slots
	// Redact is applied to every text an executor produced (error, output
	// tail, outputs) before it is journaled: the hook that keeps secret
	// values out of the journal.
	Redact func(string) string
	// Env is the base environment of every task; nil means os.Environ().
	Env []string
}

// Engine runs workflows: it appends events to the journal before acting on
// them and folds them into Run states with Apply.
type Engine struct {
	opts Options
	log  *slog.Logger
}

// New returns an Engine.
func New(opts Options) *Engine {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.NewRunID == nil {
		opts.NewRunID = NewRunID
	}
	if opts.Redact == nil {
		opts.Redact = func(s string) string { return s }
	}
	if opts.Env == nil {
		opts.Env = os.Environ()
	}
	l := opts.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &Engine{opts: opts, log: l}
}

// NewRunID returns a sortable, readable run id: 20261125-193700-3f2a9c1b.
// Any number of processes start runs on one home, each in its workflow's
// journal, and none sees the others' ids: 32 random bits keep two runs
// started in the same second from sharing one (16 did not).
func NewRunID(t time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return t.UTC().Format("20060102-150405-") + hex.EncodeToString(b[:])
}

// Start journals a new run of wf and executes it. It returns when the run
// has finished, when ctx was cancelled and the running tasks were stopped
// (the run stays resumable), or when in-doubt tasks hold it.
func (e *Engine) Start(ctx context.Context, wf *workflow.Workflow, params map[string]string, trigger string) (*Run, error) {
	return e.StartFired(ctx, wf, params, trigger, time.Time{})
}

// StartFired is Start for a run a schedule fired: its RunStarted records
// the fire time it was due at (zero: none).
func (e *Engine) StartFired(ctx context.Context, wf *workflow.Workflow, params map[string]string, trigger string, fire time.Time) (*Run, error) {
	now := e.opts.Clock()
	ev := &journal.Event{
		Type: journal.RunStarted, Time: now.UnixNano(), Run: e.opts.NewRunID(now),
		Workflow: wf.Name, DefHash: wf.Hash, Definition: string(wf.Raw), Source: wf.Source,
		Trigger: trigger, Params: params,
	}
	if !fire.IsZero() {
		ev.FireTime = fire.UnixNano()
	}
	if err := e.opts.Journal.Append(ev); err != nil {
		return nil, fmt.Errorf("start run: %w", err)
	}
	s := NewState()
	if err := s.Apply(ev); err != nil {
		return nil, err
	}
	r := s.Runs[ev.Run]
	e.observe(r, ev)
	return r, e.execute(ctx, wf, r)
}

// KillLeftovers SIGKILLs the process groups still running tasks of run, an
// interrupted run (a dead PicoFlow started them), and returns how many it
// killed. Resume calls it; so does abandoning the run (run --fresh), so that
// a task never runs twice at once.
func (e *Engine) KillLeftovers(run string) int {
	return killLeftovers(run, e.log, e.opts.Redact)
}

// Resume takes over an interrupted run: attempts that were in flight are
// journaled as interrupted (and run again) or, for non-idempotent tasks,
// as in doubt; then the run continues where its journal ends.
func (e *Engine) Resume(ctx context.Context, wf *workflow.Workflow, r *Run) error {
	if err := sameDefinition(wf, r); err != nil {
		return err // before anything is killed or journaled
	}
	e.KillLeftovers(r.ID)
	now := e.opts.Clock().UnixNano()
	evs := []*journal.Event{{Type: journal.RunResumed, Time: now, Run: r.ID}}
	for _, t := range wf.Tasks {
		st := r.Tasks[t.Name]
		if st == nil || st.Status != Running {
			continue
		}
		if t.Idempotent {
			evs = append(evs, &journal.Event{Type: journal.TaskFinished, Time: now, Run: r.ID, Task: t.Name,
				Attempt: st.Attempt, Status: journal.StatusInterrupted, ExitCode: -1,
				Reason: "picoflow stopped while it ran (crash or power loss)"})
		} else {
			evs = append(evs, &journal.Event{Type: journal.TaskInDoubt, Time: now, Run: r.ID, Task: t.Name,
				Attempt: st.Attempt, Reason: "interrupted while running and not idempotent: settle it with picoflow resolve"})
		}
	}
	if err := e.commit(r, evs); err != nil {
		return fmt.Errorf("resume run %s: %w", r.ID, err)
	}
	return e.execute(ctx, wf, r)
}

func (e *Engine) observe(r *Run, ev *journal.Event) {
	if e.opts.Observe != nil {
		e.opts.Observe(r, ev)
	}
}

// commit appends events durably, then applies them to the run.
func (e *Engine) commit(r *Run, evs []*journal.Event) error { return e.commitAs(r, evs, true) }

// commitAs appends events, durably if sync (else they become durable with
// the journal's next durable append), then applies them to the run.
func (e *Engine) commitAs(r *Run, evs []*journal.Event, sync bool) error {
	if len(evs) == 0 {
		return nil
	}
	appendEvs := e.opts.Journal.Append
	if !sync {
		appendEvs = e.opts.Journal.AppendLazy
	}
	if err := appendEvs(evs...); err != nil {
		return err
	}
	for _, ev := range evs {
		r.LastSeq = ev.Seq
		if err := r.Apply(ev); err != nil {
			return err
		}
		e.observe(r, ev)
	}
	return nil
}

// attemptResult is what an attempt's goroutine reports to the run loop.
type attemptResult struct {
	task    int
	attempt int
	res     executors.Result
	outputs map[string]string
	warn    string
	took    time.Duration
	tail    string
}

// runner is the effect loop of one run.
type runner struct {
	e       *Engine
	wf      *workflow.Workflow
	r       *Run
	tasks   []*TaskState
	waiting []int // unsatisfied dependencies per task
	ready   []int // FIFO of startable tasks
	retries retryHeap
	running int
	results chan attemptResult
	// procs carries the TaskProcess events the attempts appended lazily;
	// each attempt sends at most one before its result, so it never fills.
	procs   chan *journal.Event
	pending []*journal.Event // to commit with the next batch
	logDir  string
	dur     durability // what the commits made durable (durable.go)
}

func (e *Engine) execute(ctx context.Context, wf *workflow.Workflow, r *Run) error {
	if err := sameDefinition(wf, r); err != nil {
		return err
	}
	n := len(wf.Tasks)
	x := &runner{
		e: e, wf: wf, r: r,
		tasks:   make([]*TaskState, n),
		waiting: make([]int, n),
		results: make(chan attemptResult, n),
		procs:   make(chan *journal.Event, n),
		logDir:  runLogDir(e.opts.LogDir, wf.Name, r.ID),
		dur:     durability{ended: make([]uint64, n)},
	}
	if err := os.MkdirAll(x.logDir, 0o750); err != nil {
		return fmt.Errorf("run %s: log dir: %w", r.ID, err)
	}
	x.init()
	return x.loop(ctx)
}

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
		st := x.tasks[i]
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
	switch x.tasks[d].Status {
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
		switch x.tasks[d].Status {
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

// skipFrom journals task i and everything downstream of it as skipped. The
// reason names root, the failed task that blocks them all; "" means i's own
// failed (or skipped) dependency.
func (x *runner) skipFrom(i int, root string, now time.Time) {
	if root == "" { // prefer a failed dependency over a skipped one
		for _, d := range x.wf.Tasks[i].Deps {
			ds := x.tasks[d].Status
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
		st := x.tasks[i]
		if st.Status.Final() || st.Status == Running {
			continue
		}
		// Mark now so that diamonds skip once; the event makes it so in the journal.
		st.Status = Skipped
		x.pending = append(x.pending, &journal.Event{Type: journal.TaskSkipped, Time: now.UnixNano(),
			Run: x.r.ID, Task: x.wf.Tasks[i].Name, Status: journal.StatusSkipped,
			Reason: fmt.Sprintf("upstream task %s did not succeed", root)})
		stack = append(stack, x.wf.Tasks[i].Downstream...)
	}
}

func (x *runner) maxParallel() int {
	if n := x.e.opts.MaxParallel; n > 0 {
		return n
	}
	if n := x.wf.Config.MaxParallel; n > 0 {
		return n
	}
	return runtime.NumCPU()
}

func (x *runner) grace() time.Duration {
	if g := x.e.opts.Grace; g > 0 {
		return g
	}
	if g := x.wf.Config.ShutdownGrace; g > 0 {
		return g
	}
	return workflow.DefaultShutdownGrace
}

func (x *runner) loop(ctx context.Context) error {
	killCtx, kill := context.WithCancel(context.Background())
	defer kill()
	stop := ctx.Done()
	var graceC <-chan time.Time
	stopping := false
	var retryTimer *time.Timer
	defer func() {
		if retryTimer != nil {
			retryTimer.Stop()
		}
	}()

	// beginStop: no task starts from now on; running ones get the grace.
	beginStop := func() {
		stop, stopping = nil, true
		x.e.log.Info("stopping: no new tasks; waiting for running ones", "run", x.r.ID,
			"running", x.running, "grace", x.grace().String())
		graceC = time.After(x.grace())
	}

	for {
		// A stop that came while results were handled wins over launching:
		// select picks at random among ready cases.
		if !stopping && ctx.Err() != nil {
			beginStop()
		}
		now := x.e.opts.Clock()
		for x.retries.Len() > 0 && !x.retries[0].at.After(now) {
			it := heap.Pop(&x.retries).(retryItem)
			x.ready = append(x.ready, it.task)
		}
		var launch []int
		var slotC <-chan struct{} // set when a ready task waits for a global slot
		if !stopping {
			for len(x.ready) > 0 && x.running+len(launch) < x.maxParallel() {
				if sl := x.e.opts.Slots; sl != nil {
					freed := sl.Freed() // before TryAcquire, so no release is missed
					if !sl.TryAcquire() {
						slotC = freed
						break
					}
				}
				i := x.ready[0]
				x.ready = x.ready[1:]
				launch = append(launch, i)
				st := x.tasks[i]
				x.pending = append(x.pending, &journal.Event{Type: journal.TaskStarted, Time: now.UnixNano(),
					Run: x.r.ID, Task: x.wf.Tasks[i].Name, Attempt: st.Attempt + 1,
					LogPath: x.logPath(i, st.Attempt+1), Resumed: st.Attempt > 0 && st.Failures < st.Attempt})
			}
		}
		if x.running+len(launch) == 0 && (stopping || (len(x.ready) == 0 && x.retries.Len() == 0)) {
			x.finish(now) // also after a stop: tasks may all have ended in the grace
			return x.flush()
		}
		if err := x.flush(); err != nil {
			// Nothing launched yet for this batch: stop what runs, then fail.
			x.freeSlots(len(launch))
			kill()
			x.drain()
			return err
		}
		for _, i := range launch {
			x.running++
			go x.attempt(killCtx, x.request(i))
		}

		var retryC <-chan time.Time
		if x.retries.Len() > 0 && !stopping {
			d := x.retries[0].at.Sub(now)
			if retryTimer == nil {
				retryTimer = time.NewTimer(d)
			} else {
				retryTimer.Reset(d)
			}
			retryC = retryTimer.C
		}
		select {
		case res := <-x.results:
			x.handle(res)
			for more := true; more; { // group commit everything that is ready
				select {
				case res := <-x.results:
					x.handle(res)
				default:
					more = false
				}
			}
		case ev := <-x.procs:
			x.applyProc(ev)
		case <-retryC:
		case <-slotC:
		case <-stop:
			beginStop()
		case <-graceC:
			graceC = nil
			x.e.log.Warn("grace period over: interrupting running tasks", "run", x.r.ID, "running", x.running)
			kill()
		}
		if retryTimer != nil && retryC != nil && !retryTimer.Stop() {
			select {
			case <-retryTimer.C:
			default:
			}
		}
	}
}

// drain waits for every running attempt after an unrecoverable error.
func (x *runner) drain() {
	for ; x.running > 0; x.running-- {
		<-x.results
		x.freeSlots(1)
	}
}

// freeSlots returns n global task slots (Options.Slots).
func (x *runner) freeSlots(n int) {
	if sl := x.e.opts.Slots; sl != nil {
		for ; n > 0; n-- {
			sl.Release()
		}
	}
}

// flush commits the pending events, durably when needsSync says so.
func (x *runner) flush() error {
	evs := x.pending
	x.pending = nil
	sync := x.needsSync(evs)
	if err := x.e.commitAs(x.r, evs, sync); err != nil {
		return err
	}
	x.committed(evs, sync)
	return nil
}

// finish journals the end of the run once nothing can run any more. A run
// held by in-doubt tasks does not finish.
func (x *runner) finish(now time.Time) {
	failed := false
	for i, st := range x.tasks {
		switch st.Status {
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

// handle turns an attempt's result into events and scheduling changes.
func (x *runner) handle(a attemptResult) {
	x.applyProcs() // the attempt sent its TaskProcess before its result
	x.running--
	x.freeSlots(1)
	now := x.e.opts.Clock()
	t := x.wf.Tasks[a.task]
	st := x.tasks[a.task]
	redact := x.e.opts.Redact
	ev := &journal.Event{Time: now.UnixNano(), Run: x.r.ID, Task: t.Name, Attempt: a.attempt,
		ExitCode: a.res.ExitCode, DurationMS: a.took.Milliseconds(), Reason: a.warn}
	if a.res.Err != nil {
		ev.Error = redact(a.res.Err.Error())
	}
	x.pending = append(x.pending, ev)
	switch a.res.Status {
	case executors.Success:
		ev.Type, ev.Status = journal.TaskFinished, journal.StatusSuccess
		if len(a.outputs) > 0 {
			ev.Outputs = make(map[string]string, len(a.outputs))
			for k, v := range a.outputs {
				ev.Outputs[k] = redact(v)
			}
		}
		st.Status = Success // applied for real by the commit; needed now for release
		x.release(a.task)
		return
	case executors.Interrupted:
		ev.Type, ev.Status = journal.TaskFinished, journal.StatusInterrupted
		if !t.Idempotent { // killed part-way: it may have had its effect
			x.pending = append(x.pending, &journal.Event{Type: journal.TaskInDoubt, Time: now.UnixNano(),
				Run: x.r.ID, Task: t.Name, Attempt: a.attempt,
				Reason: "interrupted by a shutdown while running and not idempotent: settle it with picoflow resolve"})
		}
		return
	}
	ev.Tail = redact(a.tail)
	if !a.res.NoRetry && st.Failures < t.Retry {
		n := st.Failures + 1
		wait := x.wf.Config.Backoff.Delay(n)
		if a.res.RetryAfter > wait {
			wait = a.res.RetryAfter
		}
		ev.Type, ev.Status = journal.TaskRetrying, a.res.Status.String()
		ev.RetryAt, ev.BackoffMS = now.Add(wait).UnixNano(), wait.Milliseconds()
		heap.Push(&x.retries, retryItem{task: a.task, at: now.Add(wait)})
		return
	}
	ev.Type, ev.Status = journal.TaskFinished, a.res.Status.String()
	if t.ContinueOnFailure {
		st.Status = Failed
		x.release(a.task)
		return
	}
	st.Status = Failed
	for _, d := range t.Downstream {
		x.skipFrom(d, t.Name, now)
	}
}

// applyProcs applies the TaskProcess events received so far.
func (x *runner) applyProcs() {
	for {
		select {
		case ev := <-x.procs:
			x.applyProc(ev)
		default:
			return
		}
	}
}

// applyProc applies a TaskProcess event that an attempt appended lazily,
// possibly before entries the loop has committed since.
func (x *runner) applyProc(ev *journal.Event) {
	x.r.LastSeq = max(x.r.LastSeq, ev.Seq)
	if err := x.r.Apply(ev); err == nil {
		x.e.observe(x.r, ev)
	}
}

// release lets the dependents of a task that no longer holds them back
// become ready.
func (x *runner) release(i int) {
	for _, d := range x.wf.Tasks[i].Downstream {
		x.waiting[d]--
		if x.waiting[d] == 0 && x.tasks[d].Status == Pending {
			x.ready = append(x.ready, d)
		}
	}
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

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// ErrDefinitionChanged reports a resume against a different definition.
var ErrDefinitionChanged = errors.New("definition changed")

// sameDefinition refuses to run r with any definition but its own.
func sameDefinition(wf *workflow.Workflow, r *Run) error {
	if r.DefHash != wf.Hash {
		return fmt.Errorf("run %s was started with definition %s, not %s: %w",
			r.ID, short(r.DefHash), short(wf.Hash), ErrDefinitionChanged)
	}
	return nil
}
