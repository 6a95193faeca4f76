package engine

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/executors"
	"github.com/picoflow/picoflow/executors/shell"
	"github.com/picoflow/picoflow/journal"
)

// heldSync is the home's journal whose first Sync waits until the test
// releases it, as an fsync on a slow card does.
type heldSync struct {
	Journal
	once     sync.Once
	entered  chan struct{}
	released chan struct{}
}

func (h *heldSync) Sync() error {
	first := false
	h.once.Do(func() { first = true })
	if first {
		close(h.entered)
		<-h.released
	}
	return h.Journal.Sync()
}

// startCounter is the shell executor that says when each attempt starts.
type startCounter struct {
	shell.Shell
	started chan string
}

func (s *startCounter) Execute(ctx context.Context, req *executors.Request) executors.Result {
	s.started <- req.Task.Name
	return s.Shell.Execute(ctx, req)
}

// TestWindowSyncDoesNotHoldLaunches: the sync window's fsync runs beside
// the loop (syncBehind): while it has not returned, the tasks that end are
// handled and their successors launched (idempotent tasks' starts need no
// fsync). Their ends are observed once durable, each once, in journal
// order, and the run ends with everything durable.
func TestWindowSyncDoesNotHoldLaunches(t *testing.T) {
	h := newHome(t)
	wf := parse(t, wfYAML("behind", "max_parallel: 1", "", independentTasks(6)...))
	j := &heldSync{Journal: h.j, entered: make(chan struct{}), released: make(chan struct{})}
	ex := &startCounter{started: make(chan string, 6)}
	var mu sync.Mutex
	var finished []*journal.Event
	eng := h.engine(func(o *Options) {
		o.Journal, o.SyncWindow = j, time.Millisecond
		o.Executors = map[string]executors.Executor{workflow.TypeShell: ex}
		o.Observe = func(r *Run, ev *journal.Event) {
			if ev.Type == journal.TaskFinished {
				mu.Lock()
				finished = append(finished, ev)
				mu.Unlock()
			}
		}
	})
	done := startInBackground(t, eng, wf)
	n := 0
	for held := false; !held; { // the starts before the window's Sync
		select {
		case <-ex.started:
			n++
		case <-j.entered:
			held = true
		}
	}
	if n == len(wf.Tasks) {
		t.Skip("every task had started before the window's Sync: nothing to see")
	}
	select { // bounded: a loop that waits for the fsync launches nothing
	case <-ex.started:
	case <-time.After(10 * time.Second):
		t.Fatal("no task started while the window's Sync had not returned")
	}
	close(j.released)
	r := <-done
	if r == nil || r.Status != RunSuccess {
		t.Fatalf("run: %+v", r)
	}
	mu.Lock()
	defer mu.Unlock()
	seen := map[string]bool{}
	for i, ev := range finished {
		if seen[ev.Task] || (i > 0 && ev.Seq <= finished[i-1].Seq) {
			t.Errorf("observed ends %v: want each task once, in journal order", finished)
		}
		seen[ev.Task] = true
	}
	if len(seen) != len(wf.Tasks) {
		t.Errorf("observed the end of %d tasks, want %d", len(seen), len(wf.Tasks))
	}
}

// startInBackground starts wf with eng and returns where its run comes
// once it ends (nil after an error, which fails the test).
func startInBackground(t *testing.T, eng *Engine, wf *workflow.Workflow) <-chan *Run {
	done := make(chan *Run, 1)
	go func() {
		r, err := eng.Start(context.Background(), wf, nil, "manual")
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	return done
}
