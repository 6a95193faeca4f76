package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// historyRun returns the five events `picoflow run` journals for run i of a
// one-task workflow, as the binary writes them (issue 16: the cost of a
// home's history is that of reading thousands of these).
func historyRun(i int, logs string, at time.Time) []*journal.Event {
	run := fmt.Sprintf("%s-%08x", at.UTC().Format("20060102-150405"), uint32(i)*2654435761)
	ns := at.UnixNano()
	const def = "name: one\ntasks:\n  - {name: t00000, type: shell, config: {command: \"true\"}}\n"
	return []*journal.Event{
		{Type: journal.RunStarted, Time: ns, Run: run, Workflow: "one", Definition: def, Source: "one.yaml",
			DefHash: "ee6a7a240f9e1dcdddde7f35da6ecb33847b9ac075ca67f6f767c9941fa4a5f0", Trigger: "manual"},
		{Type: journal.TaskStarted, Time: ns + 250e3, Run: run, Task: "t00000", Attempt: 1,
			LogPath: filepath.Join(logs, run, "t00000.1.log")},
		{Type: journal.TaskProcess, Time: ns + 900e3, Run: run, Task: "t00000", Attempt: 1, PGID: 31000 + i%30000},
		{Type: journal.TaskFinished, Time: ns + 2e6, Run: run, Task: "t00000", Attempt: 1,
			Status: journal.StatusSuccess, DurationMS: 1},
		{Type: journal.RunFinished, Time: ns + 2e6 + 2e3, Run: run, Status: journal.StatusSuccess, DurationMS: 2},
	}
}

// writeHistory appends n finished runs of a one-task workflow, a minute
// apart, to the journal in dir, whose task logs would be under logs.
func writeHistory(tb testing.TB, dir, logs string, n int) {
	tb.Helper()
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		if err := j.AppendLazy(historyRun(i, logs, t0.Add(time.Duration(i)*time.Minute))...); err != nil {
			tb.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		tb.Fatal(err)
	}
}

// cpuTime is the CPU time the process used so far (user and system): on
// a loaded machine it says more than the time it took.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkOpenHistory is what `picoflow run` spends on a home's history:
// a writer's replay (State.OpenOptions, journal.Open) of a journal holding
// 20,000 finished runs of a one-task workflow. It reports the time and
// the allocations per finished run.
//
// With PICOFLOW_BENCH_HISTORY=DIR it appends the runs (PICOFLOW_BENCH_RUNS
// of them, if set) to the journal in DIR (HOME/journal/WF of a home a run
// of the workflow made) and keeps them, to time the binaries in that home.
func BenchmarkOpenHistory(b *testing.B) {
	n := 20000
	dir := os.Getenv("PICOFLOW_BENCH_HISTORY")
	if dir == "" {
		dir = b.TempDir()
	} else if runs := os.Getenv("PICOFLOW_BENCH_RUNS"); runs != "" {
		var err error
		if n, err = strconv.Atoi(runs); err != nil {
			b.Fatal(err)
		}
	}
	writeHistory(b, dir, filepath.Join(filepath.Dir(filepath.Dir(dir)), "logs", "one"), n)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu := cpuTime(b)
	b.ResetTimer()
	for b.Loop() {
		st := NewState()
		j, err := journal.Open(dir, st.OpenOptions(journal.Options{}))
		if err != nil {
			b.Fatal(err)
		}
		if err := j.Close(); err != nil {
			b.Fatal(err)
		}
		if len(st.Runs) < n {
			b.Fatalf("replayed %d runs, want %d", len(st.Runs), n)
		}
	}
	b.StopTimer()
	cpu = cpuTime(b) - cpu
	runtime.ReadMemStats(&after)
	runs := float64(b.N * n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/runs, "ns/run")
	b.ReportMetric(float64(cpu.Nanoseconds())/runs, "cpu-ns/run")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/runs, "allocs/run")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/runs, "B/run")
}
