package projector_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"github.com/picoflow/picoflow/journal"
	"github.com/picoflow/picoflow/projector"
	"github.com/picoflow/picoflow/projector/projectortest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func open(t testing.TB, path string, opts projector.Options) *projector.DB {
	t.Helper()
	db, err := projector.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func dump(t testing.TB, db *projector.DB) string {
	t.Helper()
	var b strings.Builder
	if err := db.Dump(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// dumpDiff returns the first differing line of two dumps, or "".
func dumpDiff(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(la) || i < len(lb); i++ {
		var x, y string
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if x != y {
			return "line " + strconv.Itoa(i+1) + ":\n  " + x + "\n  " + y
		}
	}
	return ""
}

func rebuilt(t testing.TB, journalDir string) string {
	t.Helper()
	db := open(t, filepath.Join(t.TempDir(), "rebuilt.db"), projector.Options{})
	if _, err := db.Rebuild(context.Background(), journalDir); err != nil {
		t.Fatal(err)
	}
	return dump(t, db)
}

func TestScenarioProjection(t *testing.T) {
	home := t.TempDir()
	projectortest.Scenario(t, home)
	db := open(t, filepath.Join(home, "picoflow.db"), projector.Options{})
	n, err := db.CatchUp(context.Background(), filepath.Join(home, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("nothing applied")
	}
	again, err := db.CatchUp(context.Background(), filepath.Join(home, "journal"))
	if err != nil || again != 0 {
		t.Fatalf("second catch-up applied %d, %v; want 0, nil", again, err)
	}
	// Log paths hold the temporary directory.
	golden(t, "scenario.dump", []byte(strings.ReplaceAll(dump(t, db), home, "$HOME")))
}

// TestRebuildEqualsIncremental projects the scenario while it is written,
// in batches of one and of three events, and compares every row with a
// projection rebuilt from the finished journal.
func TestRebuildEqualsIncremental(t *testing.T) {
	for _, batch := range []int{1, 3, 2048} {
		home := t.TempDir()
		jdir := filepath.Join(home, "journal")
		db := open(t, filepath.Join(home, "picoflow.db"), projector.Options{BatchSize: batch})
		projectortest.ScenarioWith(t, home, func() {
			if _, err := db.CatchUp(context.Background(), jdir); err != nil {
				t.Fatal(err)
			}
		})
		inc, reb := dump(t, db), rebuilt(t, jdir)
		if inc != reb {
			t.Fatalf("batch %d: incremental projection differs from rebuilt one: %s", batch, dumpDiff(inc, reb))
		}
	}
}

// stopAfter is a context whose Err turns to Canceled after n calls, and
// whose Done never fires: it stops a catch-up between two events the way
// a killed process would, without interrupting a commit.
type stopAfter struct {
	context.Context
	n atomic.Int64
}

func (c *stopAfter) Done() <-chan struct{} { return nil }
func (c *stopAfter) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

// TestResumeAfterCrash stops a catch-up in the middle of a batch and
// checks that the next one resumes exactly after the last committed batch.
func TestResumeAfterCrash(t *testing.T) {
	home := t.TempDir()
	jdir := filepath.Join(home, "journal")
	events := projectortest.Generate(t, home, 50, 4)
	path := filepath.Join(home, "picoflow.db")
	db := open(t, path, projector.Options{BatchSize: 7})
	ctx := &stopAfter{Context: context.Background()}
	ctx.n.Store(100)
	n, err := db.CatchUp(ctx, jdir)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("catch-up: %d, %v; want it cancelled", n, err)
	}
	last, err := db.LastSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if last == 0 || last%7 != 0 || int(last) != n || int(last) >= events {
		t.Fatalf("stopped at entry %d after applying %d: want a commit point (multiple of 7) before %d", last, n, events)
	}
	db.Close()
	db = open(t, path, projector.Options{})
	more, err := db.CatchUp(context.Background(), jdir)
	if err != nil {
		t.Fatal(err)
	}
	if n+more != events {
		t.Fatalf("applied %d then %d events, journal has %d", n, more, events)
	}
	if inc, reb := dump(t, db), rebuilt(t, jdir); inc != reb {
		t.Fatalf("resumed projection differs: %s", dumpDiff(inc, reb))
	}
}

// TestRewoundJournal replaces the journal by another one (as a lost,
// rewritten tail would): the projection notices and rebuilds.
func TestRewoundJournal(t *testing.T) {
	for _, tc := range []struct {
		name string
		runs int
	}{
		{"shorter", 3},
		{"same length, other events", 0},
		{"empty", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			jdir := filepath.Join(home, "journal")
			projectortest.Scenario(t, home)
			db := open(t, filepath.Join(home, "picoflow.db"), projector.Options{})
			if _, err := db.CatchUp(context.Background(), jdir); err != nil {
				t.Fatal(err)
			}
			old, _ := db.LastSeq(context.Background())
			if err := os.RemoveAll(jdir); err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.runs > 0:
				projectortest.Generate(t, home, tc.runs, 1)
			case tc.runs == 0:
				projectortest.Generate(t, home, int(old)/5+1, 1) // 5 events per run, times differ
			}
			if _, err := db.CatchUp(context.Background(), jdir); err != nil {
				t.Fatal(err)
			}
			if inc, reb := dump(t, db), rebuilt(t, jdir); inc != reb {
				t.Fatalf("projection was not rebuilt: %s", dumpDiff(inc, reb))
			}
		})
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "picoflow.db")
	db := open(t, path, projector.Options{})
	db.Close()
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	_, err = projector.Open(path, projector.Options{})
	if !errors.Is(err, projector.ErrNewerSchema) {
		t.Fatalf("open: %v, want ErrNewerSchema", err)
	}
}

func TestCorruptDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "picoflow.db")
	if err := os.WriteFile(path, bytes.Repeat([]byte("not a database "), 512), 0o640); err != nil {
		t.Fatal(err)
	}
	_, err := projector.Open(path, projector.Options{})
	if !projector.IsCorrupt(err) {
		t.Fatalf("open: %v, want a corruption error", err)
	}
	if err := projector.Remove(path); err != nil {
		t.Fatal(err)
	}
	open(t, path, projector.Options{})
}

func TestMissingJournalEmptiesProjection(t *testing.T) {
	home := t.TempDir()
	projectortest.Generate(t, home, 1, 1)
	db := open(t, filepath.Join(home, "picoflow.db"), projector.Options{})
	if _, err := db.CatchUp(context.Background(), filepath.Join(home, "journal")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CatchUp(context.Background(), filepath.Join(home, "missing")); err != nil {
		// A missing journal is an empty one: the projection is rebuilt empty.
		t.Fatal(err)
	}
	if got := dump(t, db); strings.Contains(got, "\nruns: ") {
		t.Fatalf("projection of an empty journal has runs:\n%s", got)
	}
}

// TestClockWentBack projects a run whose events go back in time (a reboot
// with the clock behind): no duration is negative.
func TestClockWentBack(t *testing.T) {
	home := t.TempDir()
	w := projectortest.Open(t, home)
	t0 := projectortest.T0
	at := func(d time.Duration) int64 { return t0.Add(d).UnixNano() }
	w.Append(
		&journal.Event{Type: journal.RunStarted, Time: at(0), Run: "r1", Workflow: "wf", DefHash: "h", Definition: projectortest.Backup, Source: "wf.yaml", Trigger: "manual"},
		&journal.Event{Type: journal.TaskStarted, Time: at(time.Second), Run: "r1", Task: "dump", Attempt: 1},
		&journal.Event{Type: journal.TaskFinished, Time: at(-time.Hour), Run: "r1", Task: "dump", Attempt: 1, Status: journal.StatusSuccess},
		&journal.Event{Type: journal.RunFinished, Time: at(-time.Hour), Run: "r1", Status: journal.StatusSuccess},
	)
	w.Close()
	db := open(t, filepath.Join(home, "picoflow.db"), projector.Options{})
	if _, err := db.CatchUp(context.Background(), filepath.Join(home, "journal")); err != nil {
		t.Fatal(err)
	}
	r, err := db.Run(context.Background(), "r1")
	if err != nil {
		t.Fatal(err)
	}
	if r.DurationMS < 0 {
		t.Errorf("run duration %d ms", r.DurationMS)
	}
	for _, k := range r.Tasks {
		if k.DurationMS < 0 {
			t.Errorf("task %s duration %d ms", k.Name, k.DurationMS)
		}
	}
	if len(r.Tasks) == 0 {
		t.Error("no tasks")
	}
}
