package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/executors"
	"github.com/picoflow/picoflow/journal"
)

func TestSemaphore(t *testing.T) {
	s := engine.NewSemaphore(2)
	if !s.TryAcquire() || !s.TryAcquire() {
		t.Fatal("could not take 2 of 2 slots")
	}
	freed := s.Freed()
	if s.TryAcquire() {
		t.Fatal("took a third slot of 2")
	}
	select {
	case <-freed:
		t.Fatal("Freed closed before a release")
	default:
	}
	s.Release()
	select {
	case <-freed:
	default:
		t.Fatal("Freed not closed by Release")
	}
	if s.InUse() != 1 || !s.TryAcquire() {
		t.Fatalf("InUse = %d after a release", s.InUse())
	}
	if n := engine.NewSemaphore(0).Size(); n != 1 {
		t.Errorf("NewSemaphore(0).Size() = %d", n)
	}
}

// memJournal is an in-memory engine.Journal.
type memJournal struct {
	mu  sync.Mutex
	seq uint64
}

func (j *memJournal) Append(evs ...*journal.Event) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, e := range evs {
		j.seq++
		e.Seq = j.seq
	}
	return nil
}

func (j *memJournal) AppendLazy(evs ...*journal.Event) error { return j.Append(evs...) }

func (j *memJournal) Sync() error { return nil }

// gauge is an executor that measures how many attempts run at once. Its
// first attempts wait at a barrier until two run together: a budget of 2
// must let them, and the peak is then 2 whatever the scheduling.
type gauge struct {
	now, peak atomic.Int32
	two       chan struct{} // closed when two attempts ran at once
	once      sync.Once
}

var _ executors.Executor = (*gauge)(nil)

func newGauge() *gauge { return &gauge{two: make(chan struct{})} }

func (g *gauge) Execute(ctx context.Context, req *executors.Request) executors.Result {
	defer g.now.Add(-1)
	n := g.now.Add(1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	if n >= 2 {
		g.once.Do(func() { close(g.two) })
	}
	select {
	case <-g.two:
		return executors.Result{Status: executors.Success}
	case <-time.After(30 * time.Second): // a bound on a failure, not a synchronisation
		return executors.Result{Status: executors.Failed, NoRetry: true, Err: errors.New("no second attempt ran beside this one")}
	}
}

// TestSlotsShareBudget runs two workflows of four parallel tasks each on
// two engines sharing a budget of 2 slots: never more than 2 attempts run,
// and every task still runs (the loops wake when a slot frees).
func TestSlotsShareBudget(t *testing.T) {
	g := newGauge()
	slots := engine.NewSemaphore(2)
	var wg sync.WaitGroup
	for w := range 2 {
		src := fmt.Sprintf("name: wf%d\nconfig:\n  max_parallel: 4\ntasks:\n", w)
		for i := range 4 {
			src += fmt.Sprintf("  - name: t%d\n    type: shell\n    config:\n      command: \"true\"\n", i)
		}
		wf, err := workflow.Parse(fmt.Sprintf("wf%d.yaml", w), []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		eng := engine.New(engine.Options{
			Journal: &memJournal{}, Executors: map[string]executors.Executor{workflow.TypeShell: g},
			LogDir: t.TempDir(), Slots: slots,
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := eng.Start(context.Background(), wf, nil, "manual")
			if err != nil || r.Status != engine.RunSuccess {
				t.Errorf("run of %s: %v, %v", wf.Name, r, err)
			}
		}()
	}
	wg.Wait()
	if p := g.peak.Load(); p != 2 {
		t.Errorf("peak concurrency %d, want 2", p)
	}
	if slots.InUse() != 0 {
		t.Errorf("%d slots still taken", slots.InUse())
	}
}
