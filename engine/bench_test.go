package engine

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/executors"
	"github.com/picoflow/picoflow/journal"
)

// The engine's per-task overhead is the difference between a benchmark of
// a workflow of `true` tasks and its baseline, the same number of
// `/bin/sh -c true` run with os/exec. Run with:
//
//	go test ./engine -run '^$' -bench . -benchtime 1x

func chainTasks(n int) []task {
	ts := make([]task, n)
	for i := range ts {
		ts[i] = task{name: fmt.Sprintf("t%04d", i), cmd: "true"}
		if i > 0 {
			ts[i].deps = []string{ts[i-1].name}
		}
	}
	return ts
}

func independentTasks(n int) []task {
	ts := make([]task, n)
	for i := range ts {
		ts[i] = task{name: fmt.Sprintf("t%04d", i), cmd: "true"}
	}
	return ts
}

// benchRun runs a workflow of n tasks b.N times, each in a fresh home, and
// reports the time and the journal's writes per task.
func benchRun(b *testing.B, config string, tasks []task) {
	wf := parse(b, wfYAML("bench", config, "", tasks...))
	var took time.Duration
	var st journal.Stats
	for b.Loop() {
		b.StopTimer()
		h := newHome(b)
		e := h.engine()
		b.StartTimer()
		start := time.Now()
		r, err := e.Start(context.Background(), wf, nil, "manual")
		took += time.Since(start)
		b.StopTimer()
		if err != nil || r.Status != RunSuccess {
			b.Fatalf("run %v: %v", r.Status, err)
		}
		s := h.j.Stats()
		st.Fsyncs += s.Fsyncs
		st.BytesWritten += s.BytesWritten
		st.Entries += s.Entries
		h.j.Close()
		h.j = nil
		b.StartTimer()
	}
	per := float64(b.N * len(tasks))
	b.ReportMetric(float64(took.Microseconds())/1000/per, "ms/task")
	b.ReportMetric(float64(st.Fsyncs)/per, "fsyncs/task")
	b.ReportMetric(float64(st.BytesWritten)/per, "journal-B/task")
	b.ReportMetric(float64(st.Entries)/per, "entries/task")
}

// BenchmarkChain100 runs 100 `true` tasks one after the other: the
// latency the engine adds between a task's end and its dependent's start.
func BenchmarkChain100(b *testing.B) { benchRun(b, "max_parallel: 1", chainTasks(100)) }

// BenchmarkIndependent1000 runs 1,000 independent `true` tasks, as many at
// once as there are CPUs: the engine's throughput.
func BenchmarkIndependent1000(b *testing.B) {
	benchRun(b, fmt.Sprintf("max_parallel: %d", runtime.NumCPU()), independentTasks(1000))
}

// benchExec runs n `/bin/sh -c true` with os/exec on workers goroutines.
func benchExec(b *testing.B, n, workers int) {
	var took time.Duration
	for b.Loop() {
		start := time.Now()
		work := make(chan struct{})
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range work {
					if err := exec.Command("/bin/sh", "-c", "true").Run(); err != nil {
						b.Error(err)
					}
				}
			}()
		}
		for range n {
			work <- struct{}{}
		}
		close(work)
		wg.Wait()
		took += time.Since(start)
	}
	b.ReportMetric(float64(took.Microseconds())/1000/float64(b.N*n), "ms/task")
}

// BenchmarkBaselineExec100 is BenchmarkChain100's baseline.
func BenchmarkBaselineExec100(b *testing.B) { benchExec(b, 100, 1) }

// BenchmarkBaselineExec1000 runs BenchmarkIndependent1000's processes
// sequentially.
func BenchmarkBaselineExec1000(b *testing.B) { benchExec(b, 1000, 1) }

// BenchmarkBaselineExecParallel1000 runs them on as many goroutines as
// there are CPUs, like the engine with max_parallel = NumCPU.
func BenchmarkBaselineExecParallel1000(b *testing.B) { benchExec(b, 1000, runtime.NumCPU()) }

// instant is an executor whose attempts succeed at once: benchmarks of the
// loop's own cost (scheduling, trigger rules, journal) without processes.
type instant struct{}

var _ executors.Executor = instant{}

func (instant) Execute(ctx context.Context, req *executors.Request) executors.Result {
	return executors.Result{Status: executors.Success}
}

// BenchmarkFanIn2000 runs 2000 tasks that one task depends on, with
// instant attempts: the trigger rule's tally makes each upstream's end an
// O(1) update, not a recount of 2000 outcomes.
func BenchmarkFanIn2000(b *testing.B) {
	ts := independentTasks(2000)
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.name
	}
	ts = append(ts, task{name: "sink", cmd: "true", deps: names, extra: "trigger_rule: all_done"})
	wf := parse(b, wfYAML("fanin", "max_parallel: 64", "", ts...))
	for b.Loop() {
		h := newHome(b)
		r := h.start(wf, func(o *Options) {
			o.Executors = map[string]executors.Executor{workflow.TypeShell: instant{}}
		})
		if r.Status != RunSuccess {
			b.Fatalf("run %s", r.Status)
		}
	}
}
