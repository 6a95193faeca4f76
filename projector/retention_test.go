package projector_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
	"github.com/picoflow/picoflow/projector"
	"github.com/picoflow/picoflow/projector/projectortest"
)

func TestCut(t *testing.T) {
	ext := func(run string, first, last uint64) projector.Extent {
		return projector.Extent{Run: run, First: first, Last: last}
	}
	for _, tc := range []struct {
		name string
		exts []projector.Extent
		keep []string
		pins []uint64
		last uint64
		want uint64
	}{
		{"empty journal", nil, nil, nil, 0, 0},
		{"sequential", []projector.Extent{ext("a", 1, 5), ext("b", 6, 10), ext("c", 11, 15)}, []string{"c"}, nil, 15, 11},
		{"removed run straddles the oldest kept start",
			[]projector.Extent{ext("a", 1, 12), ext("b", 6, 10), ext("c", 11, 15)}, []string{"c"}, nil, 15, 0},
		{"chain of straddling runs",
			[]projector.Extent{ext("a", 2, 5), ext("b", 4, 14), ext("c", 6, 15), ext("d", 1, 1)}, []string{"c"}, nil, 15, 2},
		{"kept run before removed ones", []projector.Extent{ext("a", 1, 5), ext("b", 6, 10)}, []string{"a"}, nil, 10, 0},
		{"live run keeps what starts after it",
			[]projector.Extent{ext("a", 1, 4), ext("live", 5, 30), ext("b", 6, 10)}, []string{"live"}, nil, 30, 5},
		{"nothing kept, newest entry is a run's: that run stays",
			[]projector.Extent{ext("a", 1, 5), ext("b", 6, 10)}, nil, nil, 10, 6},
		{"a pinned schedule event", []projector.Extent{ext("a", 1, 5), ext("b", 7, 10)}, []string{"b"}, []uint64{6}, 10, 6},
		{"a pin inside a removed run keeps the run",
			[]projector.Extent{ext("a", 1, 5), ext("b", 7, 10)}, []string{"b"}, []uint64{4}, 10, 0},
		{"nothing kept, newest entry is a schedule event",
			[]projector.Extent{ext("a", 1, 5), ext("b", 6, 10)}, nil, nil, 11, 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := projector.Cut(tc.exts, func(r string) bool { return slices.Contains(tc.keep, r) }, tc.pins, tc.last)
			if got != tc.want {
				t.Fatalf("cut %d, want %d", got, tc.want)
			}
		})
	}
}

func TestPlanRetention(t *testing.T) {
	db, _ := scenarioDB(t)
	now := projectortest.T0.Add(3 * time.Hour)
	doomedIDs := func(ds []projector.Doomed) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name         string
		p            projector.Policy
		remove, logs []string
	}{
		{"nothing", projector.Policy{}, nil, nil},
		{"age", projector.Policy{MaxAge: 2 * time.Hour}, []string{projectortest.BackupOK, projectortest.ReportFailed}, nil},
		{"age never takes live runs", projector.Policy{MaxAge: time.Minute},
			[]string{projectortest.BackupOK, projectortest.ReportFailed, projectortest.BackupTimeout,
				projectortest.SyncCanceled, projectortest.ReportOK}, nil},
		{"count", projector.Policy{MaxRuns: 1},
			[]string{projectortest.BackupOK, projectortest.ReportFailed, projectortest.BackupTimeout, projectortest.SyncCanceled}, nil},
		{"logs first", projector.Policy{MaxAge: 2 * time.Hour, LogAge: time.Hour + 45*time.Minute},
			[]string{projectortest.BackupOK, projectortest.ReportFailed},
			[]string{projectortest.BackupTimeout}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := db.PlanRetention(context.Background(), now, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if got := doomedIDs(plan.Remove); !slices.Equal(got, tc.remove) {
				t.Errorf("remove %v\nwant   %v", got, tc.remove)
			}
			if got := doomedIDs(plan.DropLogs); !slices.Equal(got, tc.logs) {
				t.Errorf("logs %v\nwant %v", got, tc.logs)
			}
		})
	}
	plan, err := db.PlanRetention(context.Background(), now, projector.Policy{MaxRuns: 1})
	if err != nil {
		t.Fatal(err)
	}
	if d := plan.Remove[1]; len(d.LogDirs) != 1 || filepath.Base(d.LogDirs[0]) != projectortest.ReportFailed {
		t.Fatalf("log dirs of %s: %v", d.ID, d.LogDirs)
	}
}

// TestRetentionTruncatesJournal removes old runs' rows, truncates the
// journal at the cut and checks that the rest replays with no event of an
// unknown run, and that a rebuild from the truncated journal equals the
// pruned projection.
func TestRetentionTruncatesJournal(t *testing.T) {
	db, home := scenarioDB(t)
	ctx := context.Background()
	jdir := filepath.Join(home, "journal")
	plan, err := db.PlanRetention(ctx, projectortest.T0.Add(3*time.Hour), projector.Policy{MaxAge: 80 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var remove []string
	for _, d := range plan.Remove {
		remove = append(remove, d.ID)
	}
	if n, err := db.DeleteRuns(ctx, append(remove, projectortest.BackupLive)); err != nil || n != len(remove) {
		t.Fatalf("deleted %d, %v; want %d (never the live run)", n, err, len(remove))
	}
	layout, err := projector.ReadLayout(jdir)
	if err != nil {
		t.Fatal(err)
	}
	if len(layout.Fires) != 1 || layout.Fires[0].Workflow != "report" || layout.Fires[0].Seq != 41 || layout.Last != 47 {
		t.Fatalf("layout %+v", layout)
	}
	keep, err := db.RunIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cut := projector.Cut(layout.Runs, func(r string) bool { return keep[r] }, []uint64{layout.Fires[0].Seq}, layout.Last)
	if cut != 27 { // RunStarted of BackupLive, the oldest kept run
		t.Fatalf("cut %d, want 27", cut)
	}
	j, err := journal.Open(jdir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.TruncateFront(cut); err != nil {
		t.Fatal(err)
	}
	j.Close()
	started := map[string]bool{}
	err = journal.Scan(jdir, journal.ScanOptions{}, func(e *journal.Event) error {
		if e.Type == journal.RunStarted {
			started[e.Run] = true
		} else if e.Run != "" && !started[e.Run] {
			t.Errorf("entry %d: %s of run %s whose start was truncated", e.Seq, e.Type, e.Run)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CatchUp(ctx, jdir); err != nil {
		t.Fatal(err)
	}
	if inc, reb := dump(t, db), rebuilt(t, jdir); inc != reb {
		t.Fatalf("pruned projection differs from the one rebuilt from the truncated journal: %s", dumpDiff(inc, reb))
	}
}
