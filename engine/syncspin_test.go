package engine

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/executors"
	"github.com/picoflow/picoflow/executors/shell"
	"github.com/picoflow/picoflow/journal"
)

// endSignaller is the shell executor that says when each attempt ends.
type endSignaller struct {
	shell.Shell
	ended chan string
}

func (s *endSignaller) Execute(ctx context.Context, req *executors.Request) executors.Result {
	res := s.Shell.Execute(ctx, req)
	s.ended <- req.Task.Name
	return res
}

// TestWindowSyncHeldLoopWaits: while the window's Sync has not returned
// (an fsync on a slow card), an end written meanwhile starts a new window;
// when that window passes, the loop must wait for the Sync in progress
// (syncIfDue does not start another), not wake again and again: the
// window's timer, once fired, must not be armed again for a deadline that
// has passed. Counted through Options.After over a quarter of a second of
// the held Sync: a spinning loop arms it thousands of times.
func TestWindowSyncHeldLoopWaits(t *testing.T) {
	h := newHome(t)
	wf := parse(t, wfYAML("spin", "max_parallel: 3", "",
		task{name: "a", cmd: "true"},
		task{name: "b", cmd: `until [ -e "$T/b" ]; do sleep 0.01; done`},
		task{name: "c", cmd: `until [ -e "$T/c" ]; do sleep 0.01; done`}))
	j := &heldSync{Journal: h.j, entered: make(chan struct{}), released: make(chan struct{})}
	ex := &endSignaller{ended: make(chan string, 3)}
	var afters atomic.Int64
	eng := h.engine(func(o *Options) {
		o.Journal, o.SyncWindow = j, time.Millisecond
		o.Executors = map[string]executors.Executor{workflow.TypeShell: ex}
		o.After = func(d time.Duration) <-chan time.Time {
			afters.Add(1)
			return time.After(d)
		}
	})
	done := startInBackground(t, eng, wf)
	released := false
	defer func() {
		if !released {
			close(j.released)
			<-done
		}
	}()
	select {
	case <-j.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the window's Sync never came")
	}
	// b ends while the Sync is held (a may end before or after it): its
	// end is written without an fsync and starts a new window; c runs on.
	touch := func(name string) {
		if err := os.WriteFile(filepath.Join(h.work, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	touch("b")
	for n := 0; n < 2; n++ {
		select {
		case <-ex.ended:
		case <-time.After(10 * time.Second):
			t.Fatal("a and b did not end")
		}
	}
	// The loop takes b's result and writes its end, then its window
	// passes (1 ms); from then on it has nothing to do but wait for c.
	for i := 0; !endWritten(h.journalDir(), "b"); i++ {
		if i == 1000 {
			t.Fatal("b's end was never written")
		}
		time.Sleep(10 * time.Millisecond)
	}
	before := afters.Load()
	time.Sleep(250 * time.Millisecond) // a measurement: how often the loop wakes meanwhile
	woke := afters.Load() - before
	touch("c")
	close(j.released)
	released = true
	if r := <-done; r == nil || r.Status != RunSuccess {
		t.Fatalf("run: %+v", r)
	}
	if woke > 50 {
		t.Errorf("while the window's Sync was held the loop armed a timer %d times in 250 ms: it spins instead of waiting for the Sync", woke)
	}
}

// endWritten reports whether the journal at dir holds a task_finished of
// task (written, durable or not).
func endWritten(dir, task string) bool {
	found := false
	_ = journal.Scan(dir, journal.ScanOptions{}, func(e *journal.Event) error {
		found = found || (e.Type == journal.TaskFinished && e.Task == task)
		return nil
	})
	return found
}
