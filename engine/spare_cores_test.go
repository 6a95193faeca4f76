package engine

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/executors"
)

func TestCoreUse(t *testing.T) {
	var u coreUse
	if u.busy(4, 1) {
		t.Fatal("busy before any attempt ended")
	}
	u.note(0, time.Second, 1)           // the executor does not know
	u.note(time.Second, 0, 1)           // nothing ran
	u.note(time.Hour, 2*time.Second, 1) // a spare: its CPU from its fork, its time from its gate
	if u.n != 1 || u.share != 1 {
		t.Fatalf("after one busy attempt: %+v, want share 1 from one attempt", u)
	}
	var multi coreUse
	multi.note(4*time.Second, time.Second, 8) // a task that keeps four cores busy
	if multi.share != 4 || !multi.busy(1, 4) || multi.busy(1, 8) {
		t.Errorf("a four-core task: %+v, busy alone on 4 cores %v (want true), on 8 %v (want false)",
			multi, multi.busy(1, 4), multi.busy(1, 8))
	}
	for _, tc := range []struct {
		running, cpus int
		busy          bool
	}{{1, 2, false}, {2, 2, true}, {1, 1, true}, {3, 4, false}, {4, 4, true}} {
		if got := u.busy(tc.running, tc.cpus); got != tc.busy {
			t.Errorf("share 1, %d running on %d cores: busy %v, want %v", tc.running, tc.cpus, got, tc.busy)
		}
	}
	for range 40 { // tasks that mostly wait
		u.note(time.Millisecond, 10*time.Millisecond, 2)
	}
	if u.share > 0.11 || u.busy(2, 2) || u.busy(4, 2) {
		t.Errorf("after 40 attempts at a share of 0.1: %+v, busy at 2 on 2 cores: %v", u, u.busy(2, 2))
	}
	u.note(time.Second, time.Second, 2)
	if u.share < 0.2 || u.share > 0.25 {
		t.Errorf("one busy attempt after them moved the share to %.3f, want an eighth of the way", u.share)
	}
}

// cpuExec is a gated executor whose tasks succeed at once and report cpu
// as their CPU time, except "hold", which runs until release is closed.
type cpuExec struct {
	cpu     time.Duration
	held    chan struct{} // closed once hold runs
	release chan struct{}
}

func (c *cpuExec) Gates() bool { return true }

func (c *cpuExec) Execute(ctx context.Context, req *executors.Request) executors.Result {
	if !req.Commit(func(bool) {}) {
		return executors.Result{Status: executors.Failed, ExitCode: -1}
	}
	if req.Task.Name == "hold" {
		close(c.held)
		<-c.release
	}
	return executors.Result{Status: executors.Success, CPU: c.cpu}
}

// TestSpareOnlyWithACoreFree: a full run makes the next task's spare while
// the attempts that ended left a core free, and none once they kept
// every core busy (coreUse). One core, one slot: the first task's spare is
// made before anything ended; then task hold runs, and its successor's
// spare is made only if the tasks before it used little CPU.
func TestSpareOnlyWithACoreFree(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cpu   time.Duration
		spare bool
	}{
		{"tasks that wait", time.Nanosecond, true},
		{"tasks that compute", time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHome(t)
			name := "cores" + map[bool]string{true: "wait", false: "compute"}[tc.spare]
			wf := parse(t, wfYAML(name, "max_parallel: 1", "",
				task{name: "a", cmd: "true"}, task{name: "b", cmd: "true"}, task{name: "hold", cmd: "true"},
				task{name: "d", cmd: "true"}))
			var mu sync.Mutex
			var spares []string
			x := &cpuExec{cpu: tc.cpu, held: make(chan struct{}), release: make(chan struct{})}
			made := make(chan struct{}, 8)
			spareMade = func(w, task string) {
				if w == name {
					mu.Lock()
					spares = append(spares, task)
					mu.Unlock()
					made <- struct{}{}
				}
			}
			t.Cleanup(func() { spareMade = func(string, string) {} })
			done := startInBackground(t, h.engine(func(o *Options) {
				o.CPUs = 1
				o.Executors = map[string]executors.Executor{workflow.TypeShell: x}
			}), wf)
			<-x.held
			if tc.spare {
				// d's spare is made with hold's launch, on the loop, before it
				// waits again: hold running does not wait for it.
				for {
					<-made
					mu.Lock()
					last := spares[len(spares)-1]
					mu.Unlock()
					if last == "d" {
						break
					}
				}
			}
			close(x.release)
			if r := <-done; r.Status != RunSuccess {
				t.Fatalf("run %s", r.Status)
			}
			mu.Lock()
			defer mu.Unlock()
			if got := slices.Contains(spares, "d"); got != tc.spare {
				t.Errorf("spares %v: d's made %v, want %v", spares, got, tc.spare)
			}
			if len(spares) == 0 || spares[0] != "b" {
				t.Errorf("spares %v, want b's first: nothing had ended yet", spares)
			}
		})
	}
}
