package projector_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/picoflow/picoflow/projector"
	"github.com/picoflow/picoflow/projector/projectortest"
)

// scenarioDB projects the Scenario journal.
func scenarioDB(t *testing.T) (*projector.DB, string) {
	t.Helper()
	home := t.TempDir()
	projectortest.Scenario(t, home)
	db := open(t, filepath.Join(home, "picoflow.db"), projector.Options{})
	if _, err := db.CatchUp(context.Background(), filepath.Join(home, "journal")); err != nil {
		t.Fatal(err)
	}
	return db, home
}

func ids(runs []projector.Run) []string {
	var out []string
	for _, r := range runs {
		out = append(out, r.ID)
	}
	return out
}

func TestHistory(t *testing.T) {
	db, _ := scenarioDB(t)
	at := func(d time.Duration) time.Time { return projectortest.T0.Add(d) }
	for _, tc := range []struct {
		name string
		f    projector.Filter
		want []string
	}{
		{"all", projector.Filter{}, []string{projectortest.ReportOK, projectortest.SyncHeld, projectortest.BackupLive,
			projectortest.SyncCanceled, projectortest.BackupTimeout, projectortest.ReportFailed, projectortest.BackupOK}},
		{"one workflow", projector.Filter{Workflow: "backup"},
			[]string{projectortest.BackupLive, projectortest.BackupTimeout, projectortest.BackupOK}},
		{"limit per workflow", projector.Filter{PerWorkflow: 1},
			[]string{projectortest.ReportOK, projectortest.SyncHeld, projectortest.BackupLive}},
		{"limit in all", projector.Filter{Limit: 2},
			[]string{projectortest.ReportOK, projectortest.SyncHeld}},
		{"limit per workflow and in all", projector.Filter{PerWorkflow: 2, Limit: 3},
			[]string{projectortest.ReportOK, projectortest.SyncHeld, projectortest.BackupLive}},
		{"keep before the limit", projector.Filter{Limit: 2, Keep: func(r *projector.Run) bool { return r.Workflow == "backup" }},
			[]string{projectortest.BackupLive, projectortest.BackupTimeout}},
		{"keep before the per-workflow limit", projector.Filter{PerWorkflow: 1, Keep: func(r *projector.Run) bool { return r.Status != projector.RunRunning }},
			[]string{projectortest.ReportOK, projectortest.SyncCanceled, projectortest.BackupTimeout}},
		{"status", projector.Filter{Status: projector.RunFailed},
			[]string{projectortest.BackupTimeout, projectortest.ReportFailed}},
		{"running", projector.Filter{Status: projector.RunRunning},
			[]string{projectortest.SyncHeld, projectortest.BackupLive}},
		{"since", projector.Filter{Since: at(2 * time.Hour)},
			[]string{projectortest.ReportOK, projectortest.SyncHeld, projectortest.BackupLive}},
		{"until is exclusive", projector.Filter{Until: at(time.Hour)},
			[]string{projectortest.ReportFailed, projectortest.BackupOK}},
		{"window and workflow", projector.Filter{Workflow: "backup", Since: at(time.Minute), Until: at(3 * time.Hour)},
			[]string{projectortest.BackupLive, projectortest.BackupTimeout}},
		{"unknown workflow", projector.Filter{Workflow: "nope"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runs, err := db.History(context.Background(), tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(runs); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestHistoryTasks(t *testing.T) {
	db, _ := scenarioDB(t)
	runs, err := db.History(context.Background(), projector.Filter{Workflow: "report", Tasks: true, Limit: 1, Status: "failed"})
	if err != nil || len(runs) != 1 {
		t.Fatalf("%v, %v", runs, err)
	}
	tasks := runs[0].Tasks
	if len(tasks) != 2 || tasks[0].Name != "fetch" || tasks[1].Name != "render" {
		t.Fatalf("tasks %+v", tasks)
	}
	f := tasks[0]
	if f.Status != "failed" || f.Attempts != 2 || f.ExitCode == nil || *f.ExitCode != 2 || f.DurationMS != 11000 {
		t.Fatalf("fetch %+v", f)
	}
	if !slices.Equal(f.AttemptDurationsMS, []int64{2900, 3000}) {
		t.Errorf("fetch attempt durations %v, want [2900 3000]", f.AttemptDurationsMS)
	}
	if r := tasks[1]; r.Status != "skipped" || r.ExitCode != nil || !r.Started.IsZero() {
		t.Fatalf("render %+v", r)
	}
}

func TestLiveAndRecent(t *testing.T) {
	db, _ := scenarioDB(t)
	live, err := db.Live(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(live); !slices.Equal(got, []string{projectortest.BackupLive, projectortest.SyncHeld}) {
		t.Fatalf("live %v", got)
	}
	if n := len(live[0].Tasks); n != 2 { // upload was never mentioned
		t.Fatalf("live backup has %d tasks", n)
	}
	if c := live[0].Tasks[1]; c.Name != "compress" || c.Status != "running" || c.PGID != projectortest.NoPGID {
		t.Fatalf("compress %+v", c)
	}
	recent, err := db.Recent(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(recent); !slices.Equal(got, []string{projectortest.ReportOK, projectortest.SyncCanceled}) {
		t.Fatalf("recent %v", got)
	}
}

func TestFindAttempt(t *testing.T) {
	db, home := scenarioDB(t)
	for _, tc := range []struct {
		name    string
		q       projector.AttemptQuery
		run     string
		attempt int
		err     error
	}{
		{"latest run with the task", projector.AttemptQuery{Workflow: "report", Task: "fetch"}, projectortest.ReportOK, 1, nil},
		{"latest attempt", projector.AttemptQuery{Workflow: "report", Task: "fetch", Run: projectortest.ReportFailed},
			projectortest.ReportFailed, 2, nil},
		{"given attempt", projector.AttemptQuery{Workflow: "report", Task: "fetch", Run: projectortest.ReportFailed, Attempt: 1},
			projectortest.ReportFailed, 1, nil},
		{"skips runs without the task", projector.AttemptQuery{Workflow: "backup", Task: "upload"}, projectortest.BackupOK, 1, nil},
		{"no such task", projector.AttemptQuery{Workflow: "backup", Task: "nope"}, "", 0, projector.ErrNotFound},
		{"no such attempt", projector.AttemptQuery{Workflow: "backup", Task: "dump", Attempt: 9}, "", 0, projector.ErrNotFound},
		{"other workflow's run", projector.AttemptQuery{Workflow: "backup", Task: "fetch", Run: projectortest.ReportOK}, "", 0, projector.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := db.FindAttempt(context.Background(), tc.q)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Run != tc.run || a.Attempt != tc.attempt {
				t.Fatalf("got %s attempt %d", a.Run, a.Attempt)
			}
			want := filepath.Join(home, "logs", a.Workflow, a.Run, a.Task+"."+string(rune('0'+a.Attempt))+".log")
			if a.LogPath != want {
				t.Fatalf("log %s, want %s", a.LogPath, want)
			}
		})
	}
}

// TestHistoryPages reads more runs than one page, with and without
// filters, and checks order and completeness against a per-run check.
func TestHistoryPages(t *testing.T) {
	home := t.TempDir()
	projectortest.Generate(t, home, 600, 2)
	db := open(t, filepath.Join(home, "picoflow.db"), projector.Options{})
	if _, err := db.CatchUp(context.Background(), filepath.Join(home, "journal")); err != nil {
		t.Fatal(err)
	}
	since := projectortest.T0.Add(100 * time.Minute)
	for _, tc := range []struct {
		name string
		f    projector.Filter
		want func(i int) bool // run i (started at T0+i minutes) is selected
	}{
		{"all", projector.Filter{Tasks: true}, func(int) bool { return true }},
		{"failed", projector.Filter{Status: projector.RunFailed}, func(i int) bool { return i%10 == 9 }},
		{"workflow since", projector.Filter{Workflow: "wf03", Since: since}, func(i int) bool { return i%10 == 3 && i >= 100 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runs, err := db.History(context.Background(), tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var want []time.Time
			for i := 599; i >= 0; i-- {
				if tc.want(i) {
					want = append(want, projectortest.T0.Add(time.Duration(i)*time.Minute))
				}
			}
			if len(runs) != len(want) {
				t.Fatalf("%d runs, want %d", len(runs), len(want))
			}
			for i, r := range runs {
				if !r.Started.Equal(want[i]) {
					t.Fatalf("run %d started %s, want %s", i, r.Started, want[i])
				}
				if tc.f.Tasks && len(r.Tasks) != 2 {
					t.Fatalf("run %s has %d tasks", r.ID, len(r.Tasks))
				}
			}
		})
	}
}
