package projector_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
	"github.com/picoflow/picoflow/projector"
	"github.com/picoflow/picoflow/projector/projectortest"
)

// TestConcurrentWritersAndReaders has a journal growing while goroutines
// on two handles of the same database file (as a daemon and a CLI query
// would) catch up, query and rebuild at once. Nothing may fail — in
// particular not with "database is locked" — and both handles must end
// with the rows of a projection rebuilt from scratch.
func TestConcurrentWritersAndReaders(t *testing.T) {
	home := t.TempDir()
	jdir := filepath.Join(home, "journal")
	path := filepath.Join(home, "picoflow.db")
	a := open(t, path, projector.Options{BatchSize: 5})
	b := open(t, path, projector.Options{BatchSize: 3})

	j, err := journal.Open(jdir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	runs := 150
	if testing.Short() {
		runs = 30
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer j.Close()
		appendRuns(t, j, runs)
	}()

	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	worker := func(db *projector.DB, name string, rebuild bool) {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			var err error
			switch {
			case rebuild && i%25 == 24:
				_, err = db.Rebuild(ctx, jdir)
			case i%2 == 0:
				_, err = db.CatchUp(ctx, jdir)
			default:
				_, err = db.History(ctx, projector.Filter{PerWorkflow: 5, Tasks: true})
				if err == nil {
					_, err = db.Live(ctx)
				}
			}
			if err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
				return
			}
		}
	}
	wg.Add(5)
	go worker(a, "a1", false)
	go worker(a, "a2", false)
	go worker(b, "b1", false)
	go worker(b, "b2", true)
	go worker(b, "b3", false)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	for _, db := range []*projector.DB{a, b} {
		if _, err := db.CatchUp(ctx, jdir); err != nil {
			t.Fatal(err)
		}
	}
	reb := rebuilt(t, jdir)
	if got := dump(t, a); got != reb {
		t.Fatalf("handle a differs from a rebuilt projection: %s", dumpDiff(got, reb))
	}
	if got := dump(t, b); got != reb {
		t.Fatalf("handle b differs from a rebuilt projection: %s", dumpDiff(got, reb))
	}
}

// appendRuns appends runs successful runs of three tasks to j, one event
// at a time, one second apart from T0, over three workflows.
func appendRuns(t *testing.T, j *journal.Journal, runs int) {
	at := projectortest.T0
	for i := 0; i < runs; i++ {
		run := fmt.Sprintf("run-%04d", i)
		wf := fmt.Sprintf("wf%d", i%3)
		tick := func() int64 { at = at.Add(time.Second); return at.UnixNano() }
		evs := []*journal.Event{{Type: journal.RunStarted, Time: tick(), Run: run, Workflow: wf, DefHash: wf, Definition: "name: " + wf}}
		for k := 0; k < 3; k++ {
			task := fmt.Sprintf("t%d", k)
			evs = append(evs,
				&journal.Event{Type: journal.TaskStarted, Time: tick(), Run: run, Task: task, Attempt: 1},
				&journal.Event{Type: journal.TaskFinished, Time: tick(), Run: run, Task: task, Attempt: 1, Status: journal.StatusSuccess})
		}
		evs = append(evs, &journal.Event{Type: journal.RunFinished, Time: tick(), Run: run, Status: journal.StatusSuccess})
		for _, e := range evs {
			if err := j.Append(e); err != nil {
				t.Error(err)
				return
			}
		}
	}
}
