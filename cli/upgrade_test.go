package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The runs of testdata/home-v1 (see its README).
const (
	v1AlphaOK     = "20261201-073149-84a7"
	v1AlphaFailed = "20261201-073149-adbd"
	v1BetaLive    = "20261201-073149-467e"
)

// v1Home copies the home the previous release wrote into a temporary
// directory, with the ledger its tasks append to.
func v1Home(t *testing.T) (home, ledger string) {
	t.Helper()
	dir := t.TempDir()
	home = filepath.Join(dir, "home")
	if err := os.CopyFS(home, os.DirFS(filepath.Join("testdata", "home-v1", "home"))); err != nil {
		t.Fatal(err)
	}
	ledger = filepath.Join(dir, "ledger")
	t.Setenv("PF_LEDGER", ledger)
	return home, ledger
}

// checkV1History checks that history shows the three runs, beta's as want.
func checkV1History(t *testing.T, home, beta string) {
	t.Helper()
	r := pf(t, home, "history")
	if r.code != 0 {
		t.Fatalf("history: exit %d\n%s", r.code, r.stderr)
	}
	for id, status := range map[string]string{v1AlphaOK: "success", v1AlphaFailed: "failed", v1BetaLive: beta} {
		if !strings.Contains(r.stdout, id) || !lineHas(r.stdout, id, status) {
			t.Errorf("history does not show run %s as %s:\n%s", id, status, r.stdout)
		}
	}
	for _, id := range []string{v1AlphaOK, v1AlphaFailed, v1BetaLive} {
		if r := pf(t, home, "replay", id); r.code != 0 || !strings.Contains(r.stdout, "run "+id) {
			t.Errorf("replay %s: exit %d\n%s%s", id, r.code, r.stdout, r.stderr)
		}
	}
}

func lineHas(text, id, word string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, id) {
			return slices.Contains(strings.Fields(l), word)
		}
	}
	return false
}

// TestUpgradeV1Home opens a home of the previous release: readers read it
// as it is, the first writer converts it, and the interrupted run resumes
// without running its finished task again.
func TestUpgradeV1Home(t *testing.T) {
	home, ledger := v1Home(t)
	checkV1History(t, home, "interrupted")
	if !isV1Journal(filepath.Join(home, "journal")) || pathExists(filepath.Join(home, "journal-v1")) {
		t.Fatal("a reader converted the home")
	}

	if err := os.WriteFile(ledger+".go", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := pf(t, home, "resume", v1BetaLive)
	if r.code != 0 {
		t.Fatalf("resume: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	got, _ := os.ReadFile(ledger)
	if string(got) != "beta-two\nbeta-three\n" {
		t.Errorf("the resumed run ran %q, want beta-two and beta-three only", got)
	}
	for _, p := range []string{"journal/alpha", "journal/beta", "journal/LOCK", "journal-v1/00000000000000000001"} {
		if !pathExists(filepath.Join(home, p)) {
			t.Errorf("after the upgrade %s is missing", p)
		}
	}
	if isV1Journal(filepath.Join(home, "journal")) || pathExists(filepath.Join(home, ".journal-v2.tmp")) {
		t.Error("the single journal is still in HOME/journal")
	}
	checkV1History(t, home, "success")
	// Journals copied off a board replay offline: the old single journal
	// (read in place: replay never writes) and a workflow's journal.
	for dir, id := range map[string]string{
		filepath.Join("testdata", "home-v1", "home", "journal"): v1AlphaFailed,
		filepath.Join(home, "journal", "beta"):                  v1BetaLive,
		filepath.Join(home, "journal"):                          v1AlphaOK,
	} {
		r := pf(t, t.TempDir(), "replay", "--journal", dir, id)
		if r.code != 0 || !strings.Contains(r.stdout, "run "+id) {
			t.Errorf("replay --journal %s %s: exit %d\n%s%s", dir, id, r.code, r.stdout, r.stderr)
		}
	}
	if r := pf(t, home, "reindex"); r.code != 0 || !strings.Contains(r.stdout, "3 runs") {
		t.Errorf("reindex after the upgrade: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The workflow runs again as usual on the converted home.
	r = pf(t, home, "run", filepath.Join("testdata", "home-v1", "workflows", "alpha.yaml"))
	if r.code != 0 {
		t.Fatalf("run after the upgrade: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestUpgradeCutShort: a conversion a crash cut short is rolled back
// (before the old journal moved) or finished (after), by the next writer.
func TestUpgradeCutShort(t *testing.T) {
	alpha := filepath.Join("testdata", "home-v1", "workflows", "alpha.yaml")
	t.Run("copy-half-built", func(t *testing.T) {
		home, _ := v1Home(t)
		tmp := filepath.Join(home, ".journal-v2.tmp", "alpha")
		if err := os.MkdirAll(tmp, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tmp, "00000000000000000001"), []byte("half"), 0o640); err != nil {
			t.Fatal(err)
		}
		checkV1History(t, home, "interrupted")
		if r := pf(t, home, "run", alpha); r.code != 0 {
			t.Fatalf("run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		checkV1History(t, home, "interrupted")
		if pathExists(filepath.Join(home, ".journal-v2.tmp")) || !pathExists(filepath.Join(home, "journal", "beta")) {
			t.Error("the half-built copy was not replaced by a full conversion")
		}
	})
	t.Run("between-renames", func(t *testing.T) {
		home, _ := v1Home(t)
		if r := pf(t, home, "run", alpha); r.code != 0 { // converts
			t.Fatalf("run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		// Back to the moment between step 3 and step 4.
		if err := os.Rename(filepath.Join(home, "journal"), filepath.Join(home, ".journal-v2.tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(home, "picoflow.db")); err != nil {
			t.Fatal(err)
		}
		checkV1History(t, home, "interrupted") // read from journal-v1
		if r := pf(t, home, "run", alpha); r.code != 0 {
			t.Fatalf("run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if pathExists(filepath.Join(home, ".journal-v2.tmp")) || !pathExists(filepath.Join(home, "journal", "beta")) {
			t.Error("the conversion was not finished")
		}
		r := pf(t, home, "history", "alpha")
		if n := strings.Count(r.stdout, "alpha"); n != 4 {
			t.Errorf("history shows %d alpha runs, want 4 (2 converted, 2 new)\n%s", n, r.stdout)
		}
	})
}

// TestDamagedJournalOfOneWorkflow: damage in one workflow's journal leaves
// history, replay and runs of the other workflows working.
func TestDamagedJournalOfOneWorkflow(t *testing.T) {
	home, _ := v1Home(t)
	alpha := filepath.Join("testdata", "home-v1", "workflows", "alpha.yaml")
	if r := pf(t, home, "run", alpha); r.code != 0 { // converts the home
		t.Fatalf("run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	src := filepath.Join("..", "journal", "testdata", "damaged-older-segment")
	if err := os.CopyFS(filepath.Join(home, "journal", "bad"), os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	if r := pf(t, home, "history", "alpha"); r.code != 0 || !strings.Contains(r.stdout, v1AlphaOK) {
		t.Errorf("history beside a damaged journal: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// beta's journal comes after bad's: replay reads past the damage.
	if r := pf(t, home, "replay", v1BetaLive); r.code != 0 || !strings.Contains(r.stdout, "run "+v1BetaLive) || !strings.Contains(r.stderr, "damaged") {
		t.Errorf("replay beside a damaged journal: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := pf(t, home, "run", alpha); r.code != 0 {
		t.Errorf("run beside a damaged journal: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestUpgradeV1Rerun reruns a failed run the previous release wrote: the
// home is converted, the projection migrated (schema 3 records reruns),
// the task that succeeded is reused, and the run's parameters (FAIL=1) are
// the rerun's too, so the failed task fails again.
func TestUpgradeV1Rerun(t *testing.T) {
	home, ledger := v1Home(t)
	r := pf(t, home, "rerun", v1AlphaFailed, "--failed")
	if r.code != ExitFailed {
		t.Fatalf("rerun: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got, _ := os.ReadFile(ledger); string(got) != "alpha-check\n" {
		t.Errorf("the rerun ran %q, want alpha-check only", got)
	}
	h := historyRun(t, home, runIDOf(t, r.stdout))
	if h.RerunOf != v1AlphaFailed || h.Trigger != "rerun" || len(h.Tasks) != 2 || h.Tasks[0].ReusedFrom != v1AlphaFailed {
		t.Errorf("history of the rerun: %+v", h)
	}
	checkV1History(t, home, "interrupted")
}

// TestV1HomeLogs: the previous release's attempts name log files outside
// this copy of its home (its journal holds absolute paths): they read as
// gone, never as an attempt without output, whose run directory exists.
// The attempts a resume runs on that home follow the current rule: a
// success without output keeps no file (or, the run's last, an empty one)
// and logs says "no output".
func TestV1HomeLogs(t *testing.T) {
	home, ledger := v1Home(t)
	logs := func(wantCode int, wantErr string, args ...string) {
		t.Helper()
		r := pf(t, home, append([]string{"logs"}, args...)...)
		if r.code != wantCode || r.stdout != "" || !strings.Contains(r.stderr, wantErr) ||
			wantErr == "" && strings.Contains(r.stderr, "no output") {
			t.Errorf("logs %v: exit %d, stdout %q, stderr %q; want %d, %q", args, r.code, r.stdout, r.stderr, wantCode, wantErr)
		}
	}
	logs(ExitNotFound, "is gone", "alpha", "fetch", "--run", v1AlphaOK)
	if err := os.WriteFile(ledger+".go", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := pf(t, home, "resume", v1BetaLive); r.code != 0 {
		t.Fatalf("resume: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	logs(ExitNotFound, "is gone", "beta", "one", "--run", v1BetaLive)
	logs(0, "no output", "beta", "two", "--run", v1BetaLive, "--attempt", "2") // its file went to three
	logs(0, "no output", "beta", "three", "--run", v1BetaLive)                 // the run's last: kept, empty
	if fi, err := os.Stat(filepath.Join(home, "logs", "beta", v1BetaLive, "three.1.log")); err != nil || fi.Size() != 0 {
		t.Errorf("the run's last log: %v, want an empty file", err)
	}
}

// TestNewHomeLayoutSyncs checks the order of a new home's directory
// fsyncs (syncLayout): HOME's parent and HOME are fsynced at once (each
// sync waits until the other has started), both before the layout marker
// exists; HOME/journal is fsynced once, after both returned, with the
// marker and the workflow's directory in it (its log directory is made
// beside them, not fsynced).
func TestNewHomeLayoutSyncs(t *testing.T) {
	h := home(filepath.Join(t.TempDir(), "home"))
	top, err := h.makeLayout("wf")
	if err != nil {
		t.Fatal(err)
	}
	if pathExists(h.layoutMarker()) {
		t.Fatal("makeLayout made the marker before any fsync")
	}
	var mu sync.Mutex
	var order []string // "sync DIR" when a sync starts, "done DIR" when it returns
	started := map[string]chan struct{}{top: make(chan struct{}), string(h): make(chan struct{})}
	other := map[string]string{top: string(h), string(h): top}
	record := func(dir string) error {
		mu.Lock()
		order = append(order, "sync "+dir)
		if dir != h.journal() && pathExists(h.layoutMarker()) {
			t.Errorf("the marker exists before %s is fsynced", dir)
		}
		mu.Unlock()
		if c := started[dir]; c != nil {
			close(c)
			select { // the other one's fsync must not wait for this one
			case <-started[other[dir]]:
			case <-time.After(time.Minute):
				t.Errorf("%s was fsynced alone: %s did not start meanwhile", dir, other[dir])
			}
		}
		mu.Lock()
		order = append(order, "done "+dir)
		mu.Unlock()
		return nil
	}
	if err := h.syncLayout(top, record); err != nil {
		t.Fatal(err)
	}
	if n := len(order); n != 6 || order[4] != "sync "+h.journal() || order[5] != "done "+h.journal() {
		t.Fatalf("fsyncs %q: want HOME's parent and HOME (at once), then HOME/journal", order)
	}
	for _, d := range []string{h.layoutMarker(), journalDir(string(h), "wf"), filepath.Join(h.logs(), "wf")} {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			t.Errorf("%s is not a directory after the layout's fsyncs (%v)", d, err)
		}
	}
}
