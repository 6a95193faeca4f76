package projector_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
	"github.com/picoflow/picoflow/projector"
)

// appendRun journals a finished one-task run of wf in the journal at dir.
func appendRun(t *testing.T, dir, wf, run string, at time.Time) {
	t.Helper()
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ns := at.UnixNano()
	if err := j.Append(
		&journal.Event{Type: journal.RunStarted, Time: ns, Run: run, Workflow: wf, DefHash: "h", Definition: "name: " + wf, Source: wf + ".yaml", Trigger: "manual"},
		&journal.Event{Type: journal.TaskStarted, Time: ns, Run: run, Task: "t", Attempt: 1},
		&journal.Event{Type: journal.TaskFinished, Time: ns + 1e6, Run: run, Task: "t", Attempt: 1, Status: journal.StatusSuccess},
		&journal.Event{Type: journal.RunFinished, Time: ns + 2e6, Run: run, Status: journal.StatusSuccess, DurationMS: 2},
	); err != nil {
		t.Fatal(err)
	}
}

func runIDs(t *testing.T, db *projector.DB) []string {
	t.Helper()
	ids, err := db.RunIDs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for id := range ids {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// TestCatchUpAllJournals projects one journal per workflow: each keeps its
// own position (sequence numbers repeat across journals), new entries of
// one journal are applied alone, and a journal that is gone (an earlier
// release's single journal, converted) makes the projection rebuild.
func TestCatchUpAllJournals(t *testing.T) {
	root := t.TempDir()
	at := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	appendRun(t, a, "a", "run-a1", at)
	appendRun(t, b, "b", "run-b1", at.Add(time.Minute))
	srcs := []projector.Source{{Name: "a", Dir: a}, {Name: "b", Dir: b}}
	list := func() ([]projector.Source, error) { return srcs, nil }
	db := open(t, filepath.Join(root, "p.db"), projector.Options{})
	ctx := context.Background()

	if n, err := db.CatchUpAll(ctx, list); err != nil || n != 8 {
		t.Fatalf("first catch-up: %d entries, %v; want 8", n, err)
	}
	appendRun(t, b, "b", "run-b2", at.Add(2*time.Minute))
	if n, err := db.CatchUpAll(ctx, list); err != nil || n != 4 {
		t.Fatalf("second catch-up: %d entries, %v; want the 4 new ones of b", n, err)
	}
	if got := runIDs(t, db); !slices.Equal(got, []string{"run-a1", "run-b1", "run-b2"}) {
		t.Fatalf("runs %v", got)
	}
	if n, err := db.CatchUpAll(ctx, list); err != nil || n != 0 {
		t.Fatalf("nothing new: %d entries, %v", n, err)
	}

	srcs = srcs[1:] // journal a is gone
	if n, err := db.CatchUpAll(ctx, list); err != nil || n != 8 {
		t.Fatalf("catch-up without a: %d entries, %v; want a rebuild from b's 8", n, err)
	}
	if got := runIDs(t, db); !slices.Equal(got, []string{"run-b1", "run-b2"}) {
		t.Fatalf("after the rebuild: runs %v", got)
	}
}

// TestOpenMemory projects journals into databases that live in memory:
// each is a database of its own, shared by its reader and writer
// connections, with the same contents as one on disk, and no file is
// written.
func TestOpenMemory(t *testing.T) {
	root := t.TempDir()
	at := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	a := filepath.Join(root, "a")
	appendRun(t, a, "a", "run-a1", at)
	list := func() ([]projector.Source, error) { return []projector.Source{{Name: "a", Dir: a}}, nil }
	ctx := context.Background()
	onDisk := open(t, filepath.Join(root, "p.db"), projector.Options{})
	if _, err := onDisk.CatchUpAll(ctx, list); err != nil {
		t.Fatal(err)
	}
	cwd, _ := os.Getwd()
	before, _ := os.ReadDir(cwd)
	mem, err := projector.OpenMemory(projector.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	other, err := projector.OpenMemory(projector.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if n, err := mem.CatchUpAll(ctx, list); err != nil || n != 4 {
		t.Fatalf("catch-up in memory: %d entries, %v; want 4", n, err)
	}
	if got, want := dump(t, mem), dump(t, onDisk); got != want {
		t.Errorf("in memory and on disk differ: %s", dumpDiff(got, want))
	}
	if got := runIDs(t, other); len(got) != 0 {
		t.Errorf("a second memory database sees the runs of the first: %v", got)
	}
	if after, _ := os.ReadDir(cwd); len(after) != len(before) {
		t.Errorf("OpenMemory wrote a file in %s", cwd)
	}
}
