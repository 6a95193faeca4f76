package engine

import (
	"os"
	"runtime"
	"runtime/pprof"
	"testing"

	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/executors"
	"github.com/picoflow/picoflow/journal"
)

// BenchmarkLiveHeap20000 runs 20,000 independent instant tasks and
// reports the live heap per task half-way through the run, over the heap
// before it started (the parsed workflow is not counted; the journal's
// in-memory tail segment is: ~190 B/task in all, ~490 before TaskState
// shrank to 64 bytes and the wal's cache was emptied). With HEAPPROF=FILE it writes
// the heap profile of that moment, every allocation sampled:
//
//	HEAPPROF=/tmp/heap.pprof go test ./engine -run '^$' -bench LiveHeap -benchtime 1x
//	go tool pprof -sample_index=inuse_space -top /tmp/heap.pprof
func BenchmarkLiveHeap20000(b *testing.B) {
	prof := os.Getenv("HEAPPROF")
	if prof != "" {
		runtime.MemProfileRate = 1
	}
	const n = 20000
	wf := parse(b, wfYAML("heap", "max_parallel: 4", "", independentTasks(n)...))
	for b.Loop() {
		h := newHome(b)
		base, mid := liveHeap(), uint64(0)
		finished := 0
		r := h.start(wf, func(o *Options) {
			o.Executors = map[string]executors.Executor{workflow.TypeShell: instant{}}
			o.Observe = func(r *Run, e *journal.Event) {
				if e.Type != journal.TaskFinished {
					return
				}
				if finished++; finished == n/2 {
					mid = liveHeap()
					writeHeapProfile(b, prof)
				}
			}
		})
		if r.Status != RunSuccess {
			b.Fatalf("run %s", r.Status)
		}
		b.ReportMetric(float64(mid-base)/n, "live-B/task")
	}
}

// liveHeap returns the bytes of live heap objects after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func writeHeapProfile(b *testing.B, path string) {
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}
