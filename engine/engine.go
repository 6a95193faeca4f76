package engine

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
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
	Sync() error // makes every event appended so far durable
}

// DefaultSyncWindow is how long an event written without an fsync may stay
// not durable when Options.SyncWindow is 0 (durable.go).
const DefaultSyncWindow = 10 * time.Millisecond

// Options configure an Engine. Journal, Executors and LogDir are required.
type Options struct {
	Journal   Journal
	Executors map[string]executors.Executor // by task type
	LogDir    string                        // <home>/logs

	Clock func() time.Time // default time.Now
	// After is how the run loop waits for a retry's backoff and for the
	// end of the shutdown grace (default time.After). Tests pass a fake
	// clock's After, with its Now as Clock, to drive those waits.
	After    func(time.Duration) <-chan time.Time
	NewRunID func(time.Time) string
	Logger   *slog.Logger
	// Observe is called after every event the engine applies, from the
	// run's goroutine (progress output, metrics), once the event is
	// durable: an event written without an fsync is observed, in journal
	// order, with the run's next fsync (at most SyncWindow later).
	// TaskProcess events are the exception: observed when applied.
	Observe func(r *Run, e *journal.Event)

	MaxParallel int // overrides the workflow's max_parallel when > 0
	// CPUs is the number of cores the tasks share, runtime.NumCPU() when
	// 0: a spare is made only while the running tasks leave one free
	// (spare.go, coreUse).
	CPUs      int
	Grace     time.Duration // overrides the workflow's shutdown_grace when > 0
	KillGrace time.Duration // SIGTERM → SIGKILL wait for a task's processes
	// SyncWindow bounds how long an event the loop wrote without an fsync
	// stays not durable (durable.go): 0 means DefaultSyncWindow, a negative
	// value makes every batch durable when it is written.
	SyncWindow time.Duration
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
	// Cancels, when set, lets `picoflow cancel` reach the runs this engine
	// executes (cancel.go).
	Cancels *Cancels
	// LazyStart writes a new run's run_started without an fsync of its
	// own: it becomes durable with the run's first durable batch (which a
	// non-idempotent start, a run handler or the run's end makes), at the
	// latest when the sync window has passed, and is observed then. A power
	// cut before that loses a run that launched nothing but idempotent
	// attempts, which died with the machine. For a foreground run, whose
	// start nobody waits for; the daemon answers a trigger once the run is
	// durable and leaves it off. Ignored when every batch is durable
	// (SyncWindow < 0).
	LazyStart bool
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
	if opts.After == nil {
		opts.After = time.After
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
// started in the same second from sharing one (16 did not). They come
// from math/rand/v2's generator, which the runtime seeds from the
// system's entropy at start-up: ids need to differ, not to be secret, and
// crypto/rand's first read (its DRBG and the vDSO getrandom state) cost
// a one-task run 0.07 ms.
func NewRunID(t time.Time) string {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], rand.Uint32())
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
	return e.start(ctx, wf, params, trigger, fire, nil)
}

// StartHead is Start for the run hs was started ahead for (HeadStart,
// with the same wf and params): the run has hs's id, and its first batch
// takes hs's attempt. hs nil: Start.
func (e *Engine) StartHead(ctx context.Context, wf *workflow.Workflow, params map[string]string, trigger string, hs *HeadStart) (*Run, error) {
	return e.start(ctx, wf, params, trigger, time.Time{}, hs)
}

func (e *Engine) start(ctx context.Context, wf *workflow.Workflow, params map[string]string, trigger string, fire time.Time, hs *HeadStart) (*Run, error) {
	now := e.opts.Clock()
	id := hs.runID()
	if id == "" {
		id = e.opts.NewRunID(now)
	}
	ev := &journal.Event{
		Type: journal.RunStarted, Time: now.UnixNano(), Run: id,
		Workflow: wf.Name, DefHash: wf.Hash, Definition: wf.Definition(), Source: wf.Source,
		Trigger: trigger, Params: params,
	}
	if !fire.IsZero() {
		ev.FireTime = fire.UnixNano()
	}
	lazy := e.opts.LazyStart && e.opts.SyncWindow >= 0
	appendEv := e.opts.Journal.Append
	if lazy {
		appendEv = e.opts.Journal.AppendLazy
	}
	if err := appendEv(ev); err != nil {
		hs.Dismiss()
		return nil, fmt.Errorf("start run: %w", err)
	}
	s := NewState()
	if err := s.Apply(ev); err != nil {
		hs.Dismiss()
		return nil, err
	}
	r := s.Runs[ev.Run]
	if lazy {
		return r, e.execute(ctx, wf, r, hs, ev) // held until the loop's first fsync
	}
	e.observe(r, ev)
	return r, e.execute(ctx, wf, r, hs)
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
	// The same bytes (their hashes match), decoded from the journal: keep
	// wf's only, not a second copy of a definition of megabytes.
	r.Definition = wf.Definition()
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
				Attempt: int(st.Attempt), Status: journal.StatusInterrupted, ExitCode: -1,
				Reason: "picoflow stopped while it ran (crash or power loss)"})
		} else {
			evs = append(evs, &journal.Event{Type: journal.TaskInDoubt, Time: now, Run: r.ID, Task: t.Name,
				Attempt: int(st.Attempt), Reason: "interrupted while running and not idempotent: settle it with picoflow resolve"})
		}
	}
	if err := e.commit(r, evs); err != nil {
		return fmt.Errorf("resume run %s: %w", r.ID, err)
	}
	return e.execute(ctx, wf, r, nil)
}

func (e *Engine) observe(r *Run, ev *journal.Event) {
	if e.opts.Observe != nil {
		e.opts.Observe(r, ev)
	}
}

// commit appends events durably, then applies them to the run.
func (e *Engine) commit(r *Run, evs []*journal.Event) error {
	return e.commitAs(r, evs, true, nil, nil)
}

// commitAs appends events, durably if sync (else they become durable with
// the journal's next durable append or Sync), then applies them to the run.
// Observe sees them once durable: the events held (written before without
// an fsync) and evs now if sync; else evs are added to held. appended, when
// set, is told how the append went before anything is applied or observed:
// the loop opens the gates of the attempts the batch starts there, before
// the progress lines.
func (e *Engine) commitAs(r *Run, evs []*journal.Event, sync bool, held *[]*journal.Event, appended func(error)) error {
	var err error
	if len(evs) > 0 {
		appendEvs := e.opts.Journal.Append
		if !sync {
			appendEvs = e.opts.Journal.AppendLazy
		}
		err = appendEvs(evs...)
	}
	if appended != nil {
		appended(err)
	}
	if err != nil || len(evs) == 0 {
		return err
	}
	if !sync {
		*held = append(*held, evs...)
	} else if held != nil {
		e.release(r, held)
	}
	for _, ev := range evs {
		r.LastSeq = ev.Seq
		if err := r.Apply(ev); err != nil {
			return err
		}
		if sync {
			e.observe(r, ev)
		}
	}
	return nil
}

// release observes the held events, now durable, and empties held.
func (e *Engine) release(r *Run, held *[]*journal.Event) {
	e.releaseThrough(r, held, math.MaxUint64)
}

// releaseThrough observes the held events up to sequence number seq, now
// durable, and keeps the others (held is in journal order).
func (e *Engine) releaseThrough(r *Run, held *[]*journal.Event, seq uint64) {
	n := 0
	for n < len(*held) && (*held)[n].Seq <= seq {
		e.observe(r, (*held)[n])
		n++
	}
	rest := copy(*held, (*held)[n:])
	clear((*held)[rest:])
	*held = (*held)[:rest]
}

// ErrDefinitionChanged reports a resume against a different definition.
var ErrDefinitionChanged = errors.New("definition changed")

// ErrSummary reports a run replayed as a summary (Run.Summarized) given
// where its task states are needed.
var ErrSummary = errors.New("run replayed as a summary")

// whole refuses a run replayed without its task states: the caller's fold
// must keep it whole (State.Detail).
func whole(r *Run) error {
	if r.Summarized() {
		return fmt.Errorf("run %s: %w, without its task states (fold it with a State.Detail that names it)", r.ID, ErrSummary)
	}
	return nil
}

// sameDefinition refuses to run r with any definition but its own, and a
// run without its task states.
func sameDefinition(wf *workflow.Workflow, r *Run) error {
	if err := whole(r); err != nil {
		return err
	}
	if r.DefHash != wf.Hash {
		return fmt.Errorf("run %s was started with definition %s, not %s: %w",
			r.ID, workflow.ShortHash(r.DefHash), workflow.ShortHash(wf.Hash), ErrDefinitionChanged)
	}
	return nil
}
