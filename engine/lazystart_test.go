package engine

import (
	"sync"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// TestLazyStart: with Options.LazyStart, run_started costs no fsync of its
// own. It rides on the run's first durable batch: run_finished when the
// run launches only idempotent attempts, the start of a non-idempotent
// task otherwise (before that task launches). Either way it is observed
// only once durable, and first. The sync window is an hour and its timer
// never fires, so no Sync of the window's hides the difference.
func TestLazyStart(t *testing.T) {
	cases := []struct {
		name  string
		extra string
		// durable appends in all, and the index of the one that carries
		// run_started to the disk
		durable int
	}{
		{"idempotent", "", 1},
		{"not-idempotent", "idempotent: false", 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHome(t)
			wf := parse(t, wfYAML("lazy", "", "", task{name: "a", cmd: "true", extra: c.extra}))
			rec := &recorder{Journal: h.j}
			var mu sync.Mutex
			var seen []journal.Type
			durableAtStart := -1
			eng := h.engine(func(o *Options) {
				o.Journal, o.SyncWindow, o.LazyStart = rec, time.Hour, true
				o.After = func(time.Duration) <-chan time.Time { return nil }
				o.Observe = func(r *Run, ev *journal.Event) {
					if ev.Type == journal.TaskProcess {
						return // observed when applied, durable or not
					}
					mu.Lock()
					defer mu.Unlock()
					seen = append(seen, ev.Type)
					if ev.Type == journal.RunStarted {
						durableAtStart = countDurable(rec)
					}
				}
			})
			r, err := eng.Start(t.Context(), wf, nil, "manual")
			if err != nil || r.Status != RunSuccess {
				t.Fatalf("run: %v, %v", r.Status, err)
			}
			if a := rec.appends[0]; a.durable || len(a.evs) != 1 || a.evs[0].Type != journal.RunStarted {
				t.Errorf("first append: %d events, durable %v; want run_started alone, lazy", len(a.evs), a.durable)
			}
			if n := countDurable(rec); n != c.durable {
				t.Errorf("%d durable appends, want %d", n, c.durable)
			}
			if len(seen) == 0 || seen[0] != journal.RunStarted || durableAtStart != 1 {
				t.Errorf("observed %v, run_started after %d durable appends; want it first, after the first", seen, durableAtStart)
			}
			if rec.syncs() != 0 {
				t.Errorf("%d Syncs, want none (run_finished is durable)", rec.syncs())
			}
		})
	}
}

// countDurable counts the durable appends recorded so far (Syncs apart).
func countDurable(r *recorder) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, a := range r.appends {
		if a.durable && !a.sync {
			n++
		}
	}
	return n
}
