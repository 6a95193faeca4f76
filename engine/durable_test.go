package engine

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/executors"
	"github.com/picoflow/picoflow/journal"
)

// recorder is a journal that remembers every append and whether it was
// durable.
type recorder struct {
	Journal
	mu      sync.Mutex
	appends []recorded
}

type recorded struct {
	evs     []*journal.Event
	durable bool
	sync    bool // a Sync, not an append
}

var _ Journal = (*recorder)(nil)

func (r *recorder) Append(evs ...*journal.Event) error { return r.write(r.Journal.Append, evs, true) }
func (r *recorder) AppendLazy(evs ...*journal.Event) error {
	return r.write(r.Journal.AppendLazy, evs, false)
}

func (r *recorder) Sync() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.Journal.Sync(); err != nil {
		return err
	}
	r.appends = append(r.appends, recorded{durable: true, sync: true})
	return nil
}

// syncs returns how many Syncs the engine called.
func (r *recorder) syncs() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, a := range r.appends {
		if a.sync {
			n++
		}
	}
	return n
}

func (r *recorder) write(appendEvs func(...*journal.Event) error, evs []*journal.Event, durable bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := appendEvs(evs...); err != nil {
		return err
	}
	r.appends = append(r.appends, recorded{evs: evs, durable: durable})
	return nil
}

// TestDurableWhenNeeded runs a workflow with independent idempotent tasks,
// a non-idempotent one, a dependent and a retry, and checks the rules of
// durable.go on what was appended: a non-idempotent task's start is durable
// when it is written; a dependent's start is written with (or after) a
// durable append that covers its upstream's end; a run handler's start is
// durable; run_started and run_finished are durable; and the independent
// idempotent tasks cost no fsync of their own.
func TestDurableWhenNeeded(t *testing.T) {
	tasks := []task{
		{name: "once", cmd: "true", extra: "idempotent: false"},
		{name: "up", cmd: "true"},
		{name: "down", cmd: "true", deps: []string{"up"}},
		{name: "flaky", cmd: `[ -e "$T/failed" ] || { touch "$T/failed"; exit 1; }`, extra: "retry: 1"},
	}
	for i := range 20 {
		tasks = append(tasks, task{name: fmt.Sprintf("i%02d", i), cmd: "true"})
	}
	h := newHome(t)
	wf := parse(t, wfYAML("lazy", "max_parallel: 4\nbackoff: {initial: 10ms, max: 10ms}",
		"on_exit:\n  - {name: bye, type: shell, config: {command: \"true\"}}\n", tasks...))
	rec := &recorder{Journal: h.j}
	r, err := h.engine(func(o *Options) { o.Journal = rec }).Start(t.Context(), wf, nil, "manual")
	if err != nil || r.Status != RunSuccess {
		t.Fatalf("run: %v, %v", r.Status, err)
	}

	ended := map[string]int{} // task -> index of the append holding its last end
	durable := 0
	for k, a := range rec.appends {
		if a.durable && !a.sync {
			durable++
		}
		for _, ev := range a.evs {
			switch ev.Type {
			case journal.RunStarted, journal.RunFinished:
				if !a.durable {
					t.Errorf("append %d: %s written without an fsync", k, ev.Type)
				}
			case journal.TaskFinished, journal.TaskRetrying:
				ended[ev.Task] = k
			case journal.TaskStarted:
				i, _ := wf.Index(ev.Task)
				if (!wf.Tasks[i].Idempotent || wf.Tasks[i].IsHandler()) && !a.durable {
					t.Errorf("append %d: start of %s (non-idempotent or a handler) written without an fsync", k, ev.Task)
				}
				for _, d := range wf.Deps(i) {
					up := wf.Tasks[d].Name
					if !coveredBy(rec.appends, ended[up], k) {
						t.Errorf("append %d: %s starts before the end of %s (append %d) is durable", k, ev.Task, up, ended[up])
					}
				}
			}
		}
	}
	// run_started, once, down (after up), the handler and run_finished;
	// the 20 independent tasks and flaky's retry add none (their ends are
	// made durable by the Syncs of the sync window, counted apart).
	if durable > 5 {
		t.Errorf("%d durable appends for %d tasks, want at most 5", durable, len(tasks)+1)
	}
	if got := filter(h.events(), journal.TaskStarted, ""); len(got) != len(tasks)+2 {
		t.Errorf("%d task_started, want %d (with flaky's retry and the handler)", len(got), len(tasks)+2)
	}
}

// coveredBy reports whether an append in [from, to] was durable.
func coveredBy(appends []recorded, from, to int) bool {
	for k := from; k <= to; k++ {
		if appends[k].durable {
			return true
		}
	}
	return false
}

// gated is an executor whose task "b" runs until release is closed;
// every other task succeeds at once.
type gated struct {
	bStarted chan struct{}
	release  chan struct{}
}

var _ executors.Executor = (*gated)(nil)

func (g *gated) Execute(ctx context.Context, req *executors.Request) executors.Result {
	if req.Task.Name == "b" {
		close(g.bStarted)
		<-g.release
	}
	return executors.Result{Status: executors.Success}
}

// TestSyncWindow drives the sync window's timer by hand (a frozen clock and
// a fake After): the end of the idempotent task a is written without an
// fsync, b launches at once without waiting for any fsync, nothing is
// observed (no "ok a" line) until the timer fires, and then one Sync makes
// a's end durable and Observe sees the held events in journal order.
func TestSyncWindow(t *testing.T) {
	h := newHome(t)
	wf := parse(t, wfYAML("window", "max_parallel: 1", "", task{name: "a", cmd: "true"}, task{name: "b", cmd: "true"}))
	rec := &recorder{Journal: h.j}
	g := &gated{bStarted: make(chan struct{}), release: make(chan struct{})}
	armed := make(chan chan time.Time, 4)
	var mu sync.Mutex
	var seen []*journal.Event
	syncsAtEndOfA := -1
	aObserved := make(chan struct{})
	frozen := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	eng := h.engine(func(o *Options) {
		o.Journal, o.SyncWindow = rec, time.Hour
		o.Executors = map[string]executors.Executor{workflow.TypeShell: g}
		o.Clock = func() time.Time { return frozen }
		o.After = func(d time.Duration) <-chan time.Time {
			if d != time.Hour {
				t.Errorf("the engine waits %s, want the sync window of 1h", d)
			}
			c := make(chan time.Time, 1)
			armed <- c
			return c
		}
		o.Observe = func(r *Run, ev *journal.Event) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, ev)
			if ev.Type == journal.TaskFinished && ev.Task == "a" {
				syncsAtEndOfA = rec.syncs()
				close(aObserved)
			}
		}
	})
	done := startInBackground(t, eng, wf)
	timer := <-armed // armed once a's start is written without an fsync
	<-g.bStarted     // b launched after a's end was written, timer not fired
	mu.Lock()
	if n := rec.syncs(); n != 0 || syncsAtEndOfA != -1 {
		t.Errorf("before the window ended: %d Syncs, end of a observed: %v; want none", n, syncsAtEndOfA != -1)
	}
	mu.Unlock()
	timer <- frozen
	// b ends only once the window's Sync made a's end durable: else the
	// loop may take b's result first, and run_finished's durable batch
	// makes a's end durable without a Sync.
	<-aObserved
	close(g.release)
	r := <-done
	if r == nil || r.Status != RunSuccess {
		t.Fatalf("run: %+v", r)
	}
	if syncsAtEndOfA != 1 {
		t.Errorf("the end of a was observed after %d Syncs, want after the window's one", syncsAtEndOfA)
	}
	if n := rec.syncs(); n != 1 {
		t.Errorf("%d Syncs, want 1 (b's end is made durable by run_finished)", n)
	}
	evs := h.events()
	if len(seen) != len(evs) {
		t.Fatalf("observed %d events, the journal holds %d", len(seen), len(evs))
	}
	for i, ev := range seen {
		if ev.Seq != evs[i].Seq {
			t.Errorf("observed #%d is entry %d, want %d (journal order)", i, ev.Seq, evs[i].Seq)
		}
	}
}
