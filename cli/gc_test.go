package cli

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
	"github.com/picoflow/picoflow/projector"
	"github.com/picoflow/picoflow/projector/projectortest"
)

func writeConfig(t *testing.T, home, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(home, "config.yaml"), []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
}

func logDir(home, wf, run string) string { return filepath.Join(home, "logs", wf, run) }

func exists_(path string) bool { _, err := os.Stat(path); return err == nil }

// convertedScenario is the scenario home converted to one journal per
// workflow, as the first writer of this release leaves it.
func convertedScenario(t *testing.T) string {
	t.Helper()
	h := scenarioHome(t)
	if err := home(h).upgrade(slog.New(slog.DiscardHandler), ""); err != nil {
		t.Fatal(err)
	}
	return h
}

// firstSeq returns the first entry of a workflow's journal.
func firstSeq(t *testing.T, home, wf string) uint64 {
	t.Helper()
	var first uint64
	err := journal.Scan(filepath.Join(home, "journal", wf), journal.ScanOptions{}, func(e *journal.Event) error {
		first = e.Seq
		return journal.ErrStop
	})
	if err != nil {
		t.Fatal(err)
	}
	return first
}

// historyIDs lists the run ids history shows, newest first.
func historyIDs(t *testing.T, home string) []string {
	t.Helper()
	r := pf(t, home, "history", "--limit", "0")
	if r.code != 0 {
		t.Fatalf("history: %d %s", r.code, r.stderr)
	}
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n")[1:] {
		ids = append(ids, strings.Fields(l)[0])
	}
	return ids
}

// checkReplay replays the journal with the engine's reducer, as run and
// resume do, and checks which runs it holds.
func checkReplay(t *testing.T, home string, want ...string) {
	t.Helper()
	st, err := home_(home).replayAll(nil)
	if err != nil {
		t.Fatalf("the engine cannot replay the journals after gc: %v", err)
	}
	if len(st.Runs) != len(want) {
		t.Errorf("replay holds %d runs, want %d", len(st.Runs), len(want))
	}
	for _, id := range want {
		if st.Runs[id] == nil {
			t.Errorf("replay lost run %s", id)
		}
	}
}

func TestGC(t *testing.T) {
	home := convertedScenario(t)
	writeConfig(t, home, "retention:\n  history_days: 1\n")
	fixClock(t, home, projectortest.T0.Add(25*time.Hour)) // runs started before 09:00 are too old
	old := []string{projectortest.BackupOK, projectortest.ReportFailed}
	kept := []string{projectortest.ReportOK, projectortest.SyncHeld, projectortest.BackupLive,
		projectortest.SyncCanceled, projectortest.BackupTimeout}

	r := pf(t, home, "gc", "--dry-run")
	want := "retention: runs older than 1 day\n" +
		"would remove 2 run(s) (backup 1, report 1) and their logs (241 B)\n" +
		"journal backup: would truncate entries 1–9, it would start at entry 10\n" +
		"journal report: would truncate entries 1–7, it would start at entry 8\n" +
		"journal sync: nothing to truncate (entries 1–12 are still needed)\n"
	if r.code != 0 || r.stdout != want {
		t.Fatalf("dry run: exit %d\n%s\nwant\n%s%s", r.code, r.stdout, want, r.stderr)
	}
	if !exists_(logDir(home, "backup", projectortest.BackupOK)) || len(historyIDs(t, home)) != 7 || firstSeq(t, home, "backup") != 1 {
		t.Fatal("the dry run removed something")
	}

	r = pf(t, home, "gc")
	want = "retention: runs older than 1 day\n" +
		"removed 2 run(s) (backup 1, report 1) and their logs (241 B)\n" +
		"journal backup: truncated entries 1–9 ("
	if r.code != 0 || !strings.HasPrefix(r.stdout, want) || !strings.Contains(r.stdout, "it starts at entry 10\njournal report: truncated entries 1–7 (") ||
		!strings.HasSuffix(r.stdout, "journal sync: nothing to truncate (entries 1–12 are still needed)\n") {
		t.Fatalf("gc: exit %d\n%s\nwant\n%s...%s", r.code, r.stdout, want, r.stderr)
	}
	if got := historyIDs(t, home); strings.Join(got, " ") != strings.Join(kept, " ") {
		t.Fatalf("history after gc: %v, want %v", got, kept)
	}
	for _, id := range old {
		if wf := map[string]string{projectortest.BackupOK: "backup", projectortest.ReportFailed: "report"}[id]; exists_(logDir(home, wf, id)) {
			t.Errorf("logs of %s are still there", id)
		}
	}
	if !exists_(logDir(home, "backup", projectortest.BackupLive)) || !exists_(logDir(home, "sync", projectortest.SyncHeld)) {
		t.Error("gc removed logs of unfinished runs")
	}
	if first := firstSeq(t, home, "backup"); first != 10 {
		t.Errorf("journal starts at %d, want 10", first)
	}
	checkReplay(t, home, kept...)

	// The database rebuilt from the truncated journal has the same runs,
	// and a second gc finds nothing.
	if r := pf(t, home, "reindex"); r.code != 0 {
		t.Fatalf("reindex: %d %s", r.code, r.stderr)
	}
	if got := historyIDs(t, home); strings.Join(got, " ") != strings.Join(kept, " ") {
		t.Fatalf("history after reindex: %v", got)
	}
	r = pf(t, home, "gc")
	if r.code != 0 || !strings.Contains(r.stdout, "removed 0 run(s)") || !strings.Contains(r.stdout, "journal backup: nothing to truncate") {
		t.Fatalf("second gc: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestGCMaxRunsAndLiveRuns(t *testing.T) {
	home := convertedScenario(t)
	writeConfig(t, home, "retention: {history_days: 365, max_runs_per_workflow: 1}\n")
	r := pf(t, home, "gc")
	if r.code != 0 || !strings.Contains(r.stdout, "removed 4 run(s) (backup 2, report 1, sync 1)") {
		t.Fatalf("gc: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	kept := []string{projectortest.ReportOK, projectortest.SyncHeld, projectortest.BackupLive}
	if got := historyIDs(t, home); strings.Join(got, " ") != strings.Join(kept, " ") {
		t.Fatalf("history after gc: %v, want %v", got, kept)
	}
	for wf, want := range map[string]uint64{"backup": 17, "report": 8, "sync": 4} { // RunStarted of each kept run
		if first := firstSeq(t, home, wf); first != want {
			t.Errorf("journal %s starts at %d, want %d", wf, first, want)
		}
	}
	checkReplay(t, home, kept...)
}

func TestGCJournalInUse(t *testing.T) {
	home := convertedScenario(t)
	writeConfig(t, home, "retention:\n  history_days: 1\n")
	fixClock(t, home, projectortest.T0.Add(25*time.Hour))
	j, err := journal.Open(filepath.Join(home, "journal", "backup"), journal.Options{Owner: "daemon"})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	r := pf(t, home, "gc")
	if r.code != 0 || !strings.Contains(r.stdout, "removed 2 run(s)") ||
		!strings.Contains(r.stdout, "journal backup: not truncated: journal "+filepath.Join(home, "journal", "backup")+" is in use by pid") ||
		!strings.Contains(r.stdout, "journal report: truncated entries 1–7") {
		t.Fatalf("gc: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if first := firstSeq(t, home, "backup"); first != 1 {
		t.Errorf("journal backup starts at %d, want 1: it was in use", first)
	}
	if n := len(historyIDs(t, home)); n != 5 {
		t.Errorf("history has %d runs after gc, want 5", n)
	}
}

func TestGCLogDays(t *testing.T) {
	home := convertedScenario(t)
	writeConfig(t, home, "retention:\n  history_days: 2\n  log_days: 1\n")
	fixClock(t, home, projectortest.T0.Add(25*time.Hour))
	r := pf(t, home, "gc")
	if r.code != 0 || !strings.Contains(r.stdout, "removed 0 run(s) and their logs (0 B)\nremoved the logs of 2 more run(s) (241 B)\n") {
		t.Fatalf("gc: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := len(historyIDs(t, home)); n != 7 {
		t.Errorf("history has %d runs, want all 7: only logs go", n)
	}
	r = pf(t, home, "logs", "backup", "dump", "--run", projectortest.BackupOK)
	if r.code != ExitNotFound || !strings.Contains(r.stderr, "is gone") {
		t.Errorf("logs of a run past log_days: %d %s", r.code, r.stderr)
	}
	r = pf(t, home, "gc")
	if r.code != 0 || strings.Contains(r.stdout, "the logs of") {
		t.Errorf("second gc removes logs again:\n%s", r.stdout)
	}
}

// TestReindexEqualsIncremental builds the database with history queries
// while the journal grows, then rebuilds it with reindex: every row of
// every table must be equal.
func TestReindexEqualsIncremental(t *testing.T) {
	home := t.TempDir()
	writeConfig(t, home, "")
	fixClock(t, home, projectortest.T0.Add(3*time.Hour))
	projectortest.ScenarioWith(t, home, func() {
		if r := pf(t, home, "history"); r.code != 0 {
			t.Fatalf("history: %d %s", r.code, r.stderr)
		}
	})
	dumpDB := func() string {
		db, err := projector.Open(filepath.Join(home, "picoflow.db"), projector.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var b strings.Builder
		if err := db.Dump(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	incremental := dumpDB()
	r := pf(t, home, "reindex")
	if r.code != 0 || !strings.Contains(r.stdout, "47 journal entries, 7 runs") {
		t.Fatalf("reindex: %d %s%s", r.code, r.stdout, r.stderr)
	}
	if rebuilt := dumpDB(); rebuilt != incremental {
		t.Fatalf("reindexed database differs from the incremental one\n--- incremental\n%s\n--- rebuilt\n%s", incremental, rebuilt)
	}
}

func TestReindexReplacesBadDatabase(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, path string)
	}{
		{"not a database", func(t *testing.T, path string) {
			projector.Remove(path)
			if err := os.WriteFile(path, []byte(strings.Repeat("garbage ", 1000)), 0o640); err != nil {
				t.Fatal(err)
			}
		}},
		{"newer schema", func(t *testing.T, path string) {
			db, err := sql.Open("sqlite3", path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec("PRAGMA user_version = 99"); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := scenarioHome(t)
			if r := pf(t, home, "history"); r.code != 0 {
				t.Fatal(r.stderr)
			}
			tc.spoil(t, filepath.Join(home, "picoflow.db"))
			r := pf(t, home, "reindex")
			if r.code != 0 || !strings.Contains(r.stderr, "replacing") {
				t.Fatalf("reindex: %d %s%s", r.code, r.stdout, r.stderr)
			}
			if n := len(historyIDs(t, home)); n != 7 {
				t.Fatalf("%d runs after reindex", n)
			}
		})
	}
}

func TestQueryRebuildsDamagedDatabase(t *testing.T) {
	home := scenarioHome(t)
	if err := os.WriteFile(filepath.Join(home, "picoflow.db"), []byte(strings.Repeat("garbage ", 1000)), 0o640); err != nil {
		t.Fatal(err)
	}
	if n := len(historyIDs(t, home)); n != 7 {
		t.Fatalf("%d runs", n)
	}
}
