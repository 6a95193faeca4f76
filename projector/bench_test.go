package projector_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/picoflow/picoflow/projector"
	"github.com/picoflow/picoflow/projector/projectortest"
)

// The benchmark journal: 10,000 runs of 10 tasks, 100,000 task attempts
// (320,000 events), written once per test binary.
const benchRuns, benchTasks = 10000, 10

var bench struct {
	once   sync.Once
	home   string
	events int
	err    error
}

func benchHome(b *testing.B) (string, int) {
	b.Helper()
	bench.once.Do(func() {
		bench.home, bench.err = os.MkdirTemp("", "picoflow-bench-")
		if bench.err == nil {
			bench.events = projectortest.Generate(b, bench.home, benchRuns, benchTasks)
		}
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.home, bench.events
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.home != "" {
		os.RemoveAll(bench.home)
	}
	os.Exit(code)
}

// BenchmarkCatchUp projects the whole benchmark journal into a new
// database and reports events/s and the database size per 1,000 runs.
func BenchmarkCatchUp(b *testing.B) {
	home, events := benchHome(b)
	ctx := context.Background()
	var size int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		path := filepath.Join(b.TempDir(), "picoflow.db")
		db, err := projector.Open(path, projector.Options{})
		if err != nil {
			b.Fatal(err)
		}
		n, err := db.CatchUp(ctx, filepath.Join(home, "journal"))
		if err != nil || n != events {
			b.Fatalf("applied %d of %d: %v", n, events, err)
		}
		db.Close() // checkpoints the WAL into the file
		b.StopTimer()
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		size = fi.Size()
		b.StartTimer()
	}
	b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(size)/(benchRuns/1000), "dbbytes/1000runs")
}

// BenchmarkHistory measures the queries of `picoflow history` on a
// database of 100,000 task attempts, including the catch-up check that
// every query does first.
func BenchmarkHistory(b *testing.B) {
	home, _ := benchHome(b)
	ctx := context.Background()
	db, err := projector.Open(filepath.Join(b.TempDir(), "picoflow.db"), projector.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	jdir := filepath.Join(home, "journal")
	if _, err := db.CatchUp(ctx, jdir); err != nil {
		b.Fatal(err)
	}
	since := projectortest.T0.Add(benchRuns*time.Minute - 7*24*time.Hour)
	for _, bc := range []struct {
		name string
		f    projector.Filter
		runs int
	}{
		{"default", projector.Filter{PerWorkflow: 10}, 100},
		{"default-tasks", projector.Filter{PerWorkflow: 10, Tasks: true}, 100},
		{"one-workflow-failed-since", projector.Filter{Workflow: "wf09", Status: projector.RunFailed, Since: since, PerWorkflow: 10, Tasks: true}, 10},
		{"all-tasks", projector.Filter{Tasks: true}, benchRuns},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := db.CatchUp(ctx, jdir); err != nil {
					b.Fatal(err)
				}
				runs, err := db.History(ctx, bc.f)
				if err != nil || len(runs) != bc.runs {
					b.Fatalf("%d runs, %v; want %d", len(runs), err, bc.runs)
				}
			}
		})
	}
}
