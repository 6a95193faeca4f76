package engine_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/executors"
)

// fakeClock is a clock the test moves: After reports each wait the engine
// asks for on asked, and its channel fires when Advance reaches it.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []fakeWait
	asked chan time.Duration
}

type fakeWait struct {
	at time.Time
	c  chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC), asked: make(chan time.Duration, 16)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	c.waits = append(c.waits, fakeWait{c.now.Add(d), ch})
	c.mu.Unlock()
	c.asked <- d
	return ch
}

// Advance moves the clock by d and fires the waits that end by then.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waits[:0]
	for _, w := range c.waits {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.c <- c.now
	}
	c.waits = kept
}

// stepper is an executor whose attempts fail until the attempt number
// succeedAt, or, when hang, wait until the engine interrupts them.
type stepper struct {
	succeedAt int
	hang      bool
	started   chan int // receives each attempt number as it starts
}

var _ executors.Executor = (*stepper)(nil)

func (s *stepper) Execute(ctx context.Context, req *executors.Request) executors.Result {
	s.started <- req.Attempt
	if s.hang {
		<-ctx.Done()
		return executors.Result{Status: executors.Interrupted, ExitCode: -1}
	}
	if req.Attempt < s.succeedAt {
		return executors.Result{Status: executors.Failed, ExitCode: 1, Err: errors.New("exit status 1")}
	}
	return executors.Result{Status: executors.Success}
}

// clockedEngine's batches are all durable (SyncWindow < 0), so that the
// only waits it asks c for are the retries' and the grace's; the sync
// window's timer is tested in TestSyncWindow.
func clockedEngine(t *testing.T, c *fakeClock, ex executors.Executor) *engine.Engine {
	return engine.New(engine.Options{
		Journal: &memJournal{}, Executors: map[string]executors.Executor{workflow.TypeShell: ex},
		LogDir: t.TempDir(), Clock: c.Now, After: c.After, SyncWindow: -1,
	})
}

func oneTask(t *testing.T, config, extra string) *workflow.Workflow {
	t.Helper()
	wf, err := workflow.Parse("clock.yaml", []byte("name: clock\nconfig: "+config+
		"\ntasks:\n  - name: a\n    type: shell\n    config: {command: \"true\"}\n"+extra))
	if err != nil {
		t.Fatal(err)
	}
	return wf
}

// TestBackoffOnInjectedClock: the wait before a retry is the injected
// clock's, so an hour of backoff passes when the test says so.
func TestBackoffOnInjectedClock(t *testing.T) {
	c := newFakeClock()
	ex := &stepper{succeedAt: 2, started: make(chan int, 2)}
	wf := oneTask(t, "{backoff: {initial: 1h, max: 1h}}", "    retry: 1\n")
	done := make(chan *engine.Run, 1)
	go func() {
		r, err := clockedEngine(t, c, ex).Start(context.Background(), wf, nil, "manual")
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	<-ex.started
	if d := <-c.asked; d != time.Hour {
		t.Fatalf("the engine waits %s before the retry, want the backoff of 1h", d)
	}
	select {
	case <-ex.started:
		t.Fatal("the retry started before the clock reached its time")
	default:
	}
	c.Advance(time.Hour)
	if n := <-ex.started; n != 2 {
		t.Fatalf("attempt %d started, want 2", n)
	}
	r := <-done
	if a := r.Tasks["a"]; r.Status != engine.RunSuccess || a.Attempt != 2 || !a.Finished().Equal(c.Now()) {
		t.Errorf("run %s, task %+v; want success on attempt 2 at the fake clock's time", r.Status, a)
	}
}

// TestGraceOnInjectedClock: after a stop, running tasks get the shutdown
// grace on the injected clock, then are interrupted.
func TestGraceOnInjectedClock(t *testing.T) {
	c := newFakeClock()
	ex := &stepper{hang: true, started: make(chan int, 1)}
	wf := oneTask(t, "{shutdown_grace: 2h}", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan *engine.Run, 1)
	go func() {
		r, err := clockedEngine(t, c, ex).Start(ctx, wf, nil, "manual")
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	<-ex.started
	cancel()
	if d := <-c.asked; d != 2*time.Hour {
		t.Fatalf("the engine gives running tasks %s, want the grace of 2h", d)
	}
	c.Advance(2 * time.Hour)
	r := <-done
	if a := r.Tasks["a"]; r.Status != engine.RunRunning || a.Status != engine.Pending {
		t.Errorf("run %s, task %s; want an interrupted run whose task runs again on resume", r.Status, a.Status)
	}
}
