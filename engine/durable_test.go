package engine

import (
	"fmt"
	"sync"
	"testing"

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
}

var _ Journal = (*recorder)(nil)

func (r *recorder) Append(evs ...*journal.Event) error { return r.write(r.Journal.Append, evs, true) }
func (r *recorder) AppendLazy(evs ...*journal.Event) error {
	return r.write(r.Journal.AppendLazy, evs, false)
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
		if a.durable {
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
				if (!wf.Tasks[i].Idempotent || wf.Tasks[i].Handler != "") && !a.durable {
					t.Errorf("append %d: start of %s (non-idempotent or a handler) written without an fsync", k, ev.Task)
				}
				for _, d := range wf.Tasks[i].Deps {
					up := wf.Tasks[d].Name
					if !coveredBy(rec.appends, ended[up], k) {
						t.Errorf("append %d: %s starts before the end of %s (append %d) is durable", k, ev.Task, up, ended[up])
					}
				}
			}
		}
	}
	// run_started, once, down (after up), the handler and run_finished;
	// the 20 independent tasks and flaky's retry add none.
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
