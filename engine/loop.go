package engine

import (
	"container/heap"
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/executors"
	"github.com/picoflow/picoflow/journal"
)

// attemptResult is what an attempt's goroutine reports to the run loop.
type attemptResult struct {
	task    int
	attempt int
	res     executors.Result
	outputs map[string]string
	warn    string
	took    time.Duration
	tail    string
	// dismissed: a spare that no batch started reports (spare.go).
	dismissed bool
}

// runner is the effect loop of one run.
//
// The run's state (r, and tasks, which point into it) changes only when
// Apply folds a committed event into it. The loop plans a batch on staged
// copies: stage appends an event to pending and applies it, with the same
// reducer, to a copy of its task's state, which view returns until flush
// has committed the batch and applied it for real.
type runner struct {
	e     *Engine
	wf    *workflow.Workflow
	r     *Run
	tasks []*TaskState
	// staged holds, by task, its state once pending is applied, for the
	// tasks pending changes (a handful per turn: a map, not a slice as
	// long as the DAG).
	staged  map[int]*TaskState
	dirty   []int          // the tasks with a staged copy
	spare   []*TaskState   // staged copies dropped by flush, for reuse
	queued  []bool         // the trigger rule (or the handler phase) let the task start
	causes  map[int]string // by skipped task: the failed task its skip traces back to (nil: none)
	tallies []Tally        // per task: its upstream outcomes, for its trigger rule
	ready   []int          // FIFO of startable tasks
	retries retryHeap
	running int
	results chan attemptResult
	// procs carries the TaskProcess events the attempts appended lazily;
	// each attempt sends at most one before its result, so it never fills.
	procs   chan *journal.Event
	pending []*journal.Event // to commit with the next batch
	logDir  string
	logs    logFiles   // empty logs of succeeded attempts, for reuse (logfile.go)
	dur     durability // what the commits made durable (durable.go)

	// Stopping (see beginStop) and the waits of the loop.
	stop     <-chan struct{} // the caller's ctx.Done(); nil once stopping
	stopping bool
	graceC   <-chan time.Time
	graceAt  time.Time          // when graceC fires
	killCtx  context.Context    // the attempts' context: cancelled when the grace ends
	kill     context.CancelFunc // interrupts the running attempts
	retryC   <-chan time.Time   // fires at retryAt, the earliest retry
	retryAt  time.Time
	syncC    <-chan time.Time // fires at syncAt, the end of the sync window
	syncAt   time.Time
	// neverRan holds the tasks whose committed start a stop overtook:
	// their attempts report without having run (commitAndLaunch).
	neverRan map[int]bool
	// ahead is the spare: the next task's attempt started ahead, waiting
	// at its gate (spare.go); dismissed counts the spares let go that
	// have not reported yet.
	ahead     *launch
	dismissed int
	// noSuccessor: a successor spare went stale; this run makes no more.
	noSuccessor bool
	// cores: how busy the ended attempts kept a core, which decides
	// whether a full run gets a spare.
	cores coreUse
	// syncing: a window's sync runs on its goroutine (syncBehind), which
	// reports on synced; syncErr is its error, which ends the run.
	syncing bool
	synced  chan syncResult
	syncErr error
	// idle hands an attempt to a goroutine that ran an earlier one and
	// waits for the next (spawn).
	idle chan launch

	// cancelC delivers `picoflow cancel` requests (Options.Cancels);
	// canceling is set once one is staged, or the journal says the run was
	// canceled; canceledBy is then the run_finished reason.
	cancelC    <-chan CancelRequest
	canceling  bool
	canceledBy string
}

// execute runs r's loop. held are the run's events written without an
// fsync before it (a lazy run_started): observed once durable, like the
// loop's own.
func (e *Engine) execute(ctx context.Context, wf *workflow.Workflow, r *Run, hs *HeadStart, held ...*journal.Event) error {
	if err := sameDefinition(wf, r); err != nil {
		hs.Dismiss()
		return err
	}
	var x *runner
	if hs != nil && hs.x != nil {
		x, hs.x = hs.x, nil
		x.r = r
	} else {
		x = e.newRunner(wf, r)
		x.killCtx, x.kill = newKillCtx()
		x.idle = make(chan launch)
	}
	defer close(x.idle) // the loop returns once every attempt has reported
	defer func() { x.kill() }()
	x.dur.held = held
	if len(held) > 0 {
		x.dur.since = e.opts.Clock() // the sync window runs from now
	}
	// Only once the run_started is written (to the file, durable or not):
	// gc takes a log directory whose run no journal holds for one a power
	// cut left behind (cli/gc_orphans.go).
	if err := os.MkdirAll(x.logDir, 0o750); err != nil {
		x.settleSpare()
		return fmt.Errorf("run %s: log dir: %w", r.ID, err)
	}
	x.placeHead()
	if c := e.opts.Cancels; c != nil {
		var unregister func()
		x.cancelC, unregister = c.register(r.ID)
		defer unregister()
	}
	x.init()
	return x.loop(ctx)
}

// newRunner returns the loop of run r of wf, not started.
func (e *Engine) newRunner(wf *workflow.Workflow, r *Run) *runner {
	n := len(wf.Tasks)
	x := &runner{
		e: e, wf: wf, r: r,
		tasks:   make([]*TaskState, n),
		staged:  make(map[int]*TaskState),
		queued:  make([]bool, n),
		tallies: make([]Tally, n),
		logDir:  runLogDir(e.opts.LogDir, wf.Name, r.ID),
		dur:     durability{ended: make([]uint64, n)},
	}
	// At most maxParallel attempts are in flight, each sends one result
	// and at most one TaskProcess: channels that size never block an
	// attempt, and cost nothing per task of a big DAG.
	inflight := min(x.maxParallel(), n)
	x.results = make(chan attemptResult, inflight+1) // and the spare's (spare.go)
	x.synced = make(chan syncResult, 1)
	x.procs = make(chan *journal.Event, inflight)
	return x
}

func newKillCtx() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
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

// loop runs the run to its end: each turn commits one batch of events
// (results, skips, starts), launches the attempts it started, and waits.
func (x *runner) loop(ctx context.Context) error {
	defer x.awaitSync() // no sync outlives the loop
	x.stop = ctx.Done()
	for {
		if x.syncErr != nil {
			x.kill()
			x.drain()
			return x.syncErr
		}
		// A stop that came while results were handled wins over launching:
		// select picks at random among ready cases.
		if !x.stopping && ctx.Err() != nil {
			x.beginStop()
		}
		now := x.e.opts.Clock()
		for x.retries.Len() > 0 && !x.retries[0].at.After(now) {
			it := heap.Pop(&x.retries).(retryItem)
			x.ready = append(x.ready, it.task)
		}
		x.checkSpare()
		starts, slotC := x.startReady(now)
		if x.running+len(starts) == 0 && (x.stopping || (len(x.ready) == 0 && x.retries.Len() == 0)) {
			x.settleSpare()
			if !x.stopping && x.handlerPhase(now) {
				continue // the handlers start in the next turn
			}
			x.finish(now) // also after a stop: tasks may all have ended in the grace
			if err := x.flush(nil); err != nil {
				return err
			}
			if x.awaitSync(); x.syncErr != nil || x.dur.since.IsZero() {
				return x.syncErr
			}
			return x.sync() // what is not durable yet, and its Observe
		}
		if err := x.commitAndLaunch(ctx, starts); err != nil {
			return err
		}
		// After the launches, so that none waits for this fsync.
		x.syncIfDue(x.e.opts.Clock())
		x.prespawn(starts)
		x.wait(slotC, now)
	}
}

// commitAndLaunch commits the pending batch and launches the attempts it
// starts. Their requests are built and their goroutines open their logs
// before and while the batch is committed (off the path from an
// upstream's end to its dependent's start); the processes start only once
// it is, and only if ctx was not cancelled meanwhile: a stop (a signal)
// that came after the loop's check, while the batch was planned or
// committed (an fsync: milliseconds), starts no process. Those attempts
// are journaled interrupted by handle (neverRan): they run on resume.
func (x *runner) commitAndLaunch(ctx context.Context, starts []launch) error {
	spawned := false
	for _, l := range starts {
		x.running++
		if !l.spare { // a spare's goroutine waits at its gate already
			l.req = x.request(l.task, l.attempt)
			x.spawn(l)
			spawned = true
		}
	}
	if spawned {
		// The attempts first: a shell's fork, exec and start-up take
		// longer than the commit's write and fsync, which another
		// thread picks up meanwhile. Left in this P's queue, an attempt
		// waited for the fsync or for an idle CPU to be woken.
		runtime.Gosched()
	}
	err := x.flush(func(err error) { // the gates first, then the progress lines
		stopped := err == nil && len(starts) > 0 && ctx.Err() != nil
		if stopped && x.neverRan == nil {
			x.neverRan = make(map[int]bool, len(starts))
		}
		for _, l := range starts {
			if stopped {
				x.neverRan[l.task] = true
			}
			l.gate.say(gateWordOf(err == nil && !stopped))
		}
	})
	if err != nil {
		// Nothing launched for this batch: stop what runs, then fail.
		x.kill()
		x.drain()
		return err
	}
	return nil
}

// launch is an attempt the loop starts: its goroutine opens the log and
// waits at gate, which says once the batch with its TaskStarted was
// committed (gateShut: the commit failed, it never runs).
type launch struct {
	task    int
	attempt int
	logPath string
	req     *executors.Request
	gate    *startGate
	spare   bool            // started ahead as the spare (spare.go)
	made    time.Time       // when the spare was started
	ctx     context.Context // the attempt's: killCtx when spawned (spawn)
	log     *os.File        // a head start's, opened ahead (headstart.go); nil: the attempt opens it
	after   int             // a spare's: the running task whose end it was made ahead of (spare.go); -1: none
}

// gateWord is what the loop tells an attempt waiting at its gate.
type gateWord uint8

const (
	gateShut      gateWord = iota // its start was not committed: it never runs
	gateOpen                      // its start is committed: run it
	gateDismissed                 // a spare no batch started (spare.go)
)

// startGate is where an attempt waits for the loop's word. The executor's
// own gate (Request.Commit's open) is opened by whoever comes second: the
// loop, the moment the commit returns, when the attempt waits already, so
// that the task's process goes on without waiting for the attempt's
// goroutine to be scheduled; else the attempt, when it asks.
type startGate struct {
	mu   sync.Mutex
	said bool
	word gateWord
	open func(ok bool) // the executor's, while the attempt waits
	done chan struct{}
}

func newStartGate() *startGate { return &startGate{done: make(chan struct{})} }

// say gives the loop's word, once.
func (g *startGate) say(w gateWord) {
	g.mu.Lock()
	g.said, g.word = true, w
	open := g.open
	g.mu.Unlock()
	if open != nil {
		open(w == gateOpen)
	}
	close(g.done)
}

// wait returns the loop's word; open (may be nil) is called with it
// once, before wait returns.
func (g *startGate) wait(open func(ok bool)) gateWord {
	g.mu.Lock()
	if g.said {
		w := g.word
		g.mu.Unlock()
		if open != nil {
			open(w == gateOpen)
		}
		return w
	}
	g.open = open
	g.mu.Unlock()
	<-g.done
	return g.word
}

func gateWordOf(committed bool) gateWord {
	if committed {
		return gateOpen
	}
	return gateShut
}

// startReady stages a TaskStarted for every ready task the parallelism
// limits let start, and returns them. slotC is set when a ready task waits
// for a global slot (Options.Slots).
func (x *runner) startReady(now time.Time) (launches []launch, slotC <-chan struct{}) {
	if x.stopping {
		return nil, nil
	}
	for len(x.ready) > 0 && x.running+len(launches) < x.maxParallel() {
		if sl := x.e.opts.Slots; sl != nil {
			freed := sl.Freed() // before TryAcquire, so no release is missed
			if !sl.TryAcquire() {
				return launches, freed
			}
		}
		i := x.ready[0]
		x.ready = x.ready[1:]
		st := x.view(i)
		attempt := int(st.Attempt) + 1
		l, ok := x.takeSpare(i, attempt)
		if !ok {
			l = launch{task: i, attempt: attempt, logPath: x.logPath(i, attempt), gate: newStartGate()}
		}
		launches = append(launches, l)
		x.stage(i, &journal.Event{Type: journal.TaskStarted, Time: now.UnixNano(),
			Run: x.r.ID, Task: x.wf.Tasks[i].Name, Attempt: attempt,
			LogPath: l.logPath, Resumed: st.Attempt > 0 && st.Failures < st.Attempt})
	}
	return launches, nil
}

// wait blocks until something happens: results, a process group, a retry
// due, a free slot, a stop, the end of the grace.
func (x *runner) wait(slotC <-chan struct{}, now time.Time) {
	select {
	case res := <-x.results:
		x.result(res)
		for more := true; more; { // group commit everything that is ready
			select {
			case res := <-x.results:
				x.result(res)
			default:
				more = false
			}
		}
	case ev := <-x.procs:
		x.applyProc(ev)
	case s := <-x.synced:
		x.syncDone(s)
	case <-x.retryTimer(now):
		x.retryC = nil
	case <-x.syncTimer(now):
		x.syncC, x.dur.due = nil, true
	case <-slotC:
	case req := <-x.cancelC:
		x.cancel(req, now)
		x.cancelGrace(req, now)
	case <-x.stop:
		x.beginStop()
	case <-x.graceC:
		x.graceC = nil
		x.e.log.Warn("grace period over: interrupting running tasks", "run", x.r.ID, "running", x.running)
		x.kill()
	}
}

// retryTimer returns a channel that fires when the earliest retry is due
// (nil when none waits or the run stops). The wait is on the injected
// clock (Options.After) and is armed again only when that deadline moves.
func (x *runner) retryTimer(now time.Time) <-chan time.Time {
	if x.retries.Len() == 0 || x.stopping {
		return nil
	}
	if at := x.retries[0].at; x.retryC == nil || !at.Equal(x.retryAt) {
		x.retryC, x.retryAt = x.e.opts.After(at.Sub(now)), at
	}
	return x.retryC
}

// beginStop: no task starts from now on; running ones get the grace.
func (x *runner) beginStop() {
	x.stop, x.stopping = nil, true
	x.e.log.Info("stopping: no new tasks; waiting for running ones", "run", x.r.ID,
		"running", x.running, "grace", x.grace().String())
	x.graceC, x.graceAt = x.e.opts.After(x.grace()), x.e.opts.Clock().Add(x.grace())
}

// drain waits for every running attempt, and the spare, after an
// unrecoverable error.
func (x *runner) drain() {
	x.dismissSpare()
	for x.running > 0 || x.dismissed > 0 {
		if res := <-x.results; res.dismissed {
			x.dismissed--
			continue
		}
		x.running--
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

// view returns task i's state as the loop plans with it: staged if events
// of the pending batch change it.
func (x *runner) view(i int) *TaskState {
	if s := x.staged[i]; s != nil {
		return s
	}
	return x.tasks[i]
}

// stage adds ev, an event of task i, to the pending batch and applies it
// to the task's staged copy, never to the run's state.
func (x *runner) stage(i int, ev *journal.Event) {
	x.pending = append(x.pending, ev)
	s := x.staged[i]
	if s == nil {
		if k := len(x.spare); k > 0 {
			s, x.spare = x.spare[k-1], x.spare[:k-1]
		} else {
			s = new(TaskState)
		}
		*s = *x.tasks[i]
		x.staged[i] = s
		x.dirty = append(x.dirty, i)
	}
	s.apply(ev)
}

// flush commits the pending events (durably when needsSync says so),
// which applies them to the run, and drops the staged copies they made.
// Events written without an fsync are held from Observe until durable.
// appended (may be nil) is told how the append went, before the events
// are applied and observed (Engine.commitAs).
func (x *runner) flush(appended func(error)) error {
	evs := x.pending
	x.pending = nil
	for _, i := range x.dirty {
		x.spare = append(x.spare, x.staged[i])
		delete(x.staged, i)
	}
	x.dirty = x.dirty[:0]
	sync := x.needsSync(evs)
	if err := x.e.commitAs(x.r, evs, sync, &x.dur.held, appended); err != nil {
		return err
	}
	x.committed(evs, sync)
	return nil
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
