package engine

import (
	"bytes"
	"context"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/executors"
	"github.com/picoflow/picoflow/executors/shell"
)

// onGoroutine is the shell executor that notes the goroutine each
// attempt runs on.
type onGoroutine struct {
	shell.Shell
	mu  sync.Mutex
	ids map[uint64]int
}

func (o *onGoroutine) Execute(ctx context.Context, req *executors.Request) executors.Result {
	o.mu.Lock()
	o.ids[goroutineID()]++
	o.mu.Unlock()
	return o.Shell.Execute(ctx, req)
}

// goroutineID parses "goroutine N [...]", the first line of the stack.
func goroutineID() uint64 {
	var b [64]byte
	f := bytes.Fields(b[:runtime.Stack(b[:], false)])
	id, _ := strconv.ParseUint(string(f[1]), 10, 64)
	return id
}

// TestAttemptsReuseGoroutines: an attempt runs on a goroutine that ran an
// earlier one of the run (spawn), so a run of many tasks starts about as
// many goroutines as attempts ran at once, and none is left once the run
// returns.
func TestAttemptsReuseGoroutines(t *testing.T) {
	for _, c := range []struct {
		name   string
		config string
		tasks  []task
		most   int // distinct goroutines: the attempts at once, the spare, and a race or two
	}{
		{"chain", "max_parallel: 1", chainTasks(40), 3},
		{"independent", "max_parallel: 3", independentTasks(60), 8},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHome(t)
			ex := &onGoroutine{ids: make(map[uint64]int)}
			r, err := h.engine(func(o *Options) {
				o.Executors = map[string]executors.Executor{workflow.TypeShell: ex}
			}).Start(context.Background(), parse(t, wfYAML(c.name, c.config, "", c.tasks...)), nil, "manual")
			if err != nil || r.Status != RunSuccess {
				t.Fatalf("run %v: %v", r.Status, err)
			}
			n := 0
			for _, k := range ex.ids {
				n += k
			}
			if n != len(c.tasks) || len(ex.ids) > c.most {
				t.Errorf("%d attempts ran on %d goroutines, want %d on at most %d", n, len(ex.ids), len(c.tasks), c.most)
			}
			// The loop closed idle as it returned: every worker ends.
			for i := 0; workers() > 0; i++ {
				if i == 10000 {
					t.Fatalf("%d attempt goroutines outlive their run", workers())
				}
				runtime.Gosched()
			}
		})
	}
}

// workers counts the goroutines in runner.worker.
func workers() int {
	b := make([]byte, 1<<20)
	return bytes.Count(b[:runtime.Stack(b, true)], []byte("engine.(*runner).worker("))
}
