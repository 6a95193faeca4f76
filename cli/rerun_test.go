package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// etlWorkflow: extract → transform → load, extract → report. transform
// fails while $T/break exists; load checks that it sees extract's output
// of the run that first made it (rows 7), so a reused output must reach it.
func etlWorkflow(t *testing.T, dir string) string {
	t.Helper()
	return writeWorkflow(t, dir, "etl", "",
		spec{name: "extract", cmd: ledger("extract") + `; echo "ROWS=$(cat "$T/rows")" >> "$PICOFLOW_OUTPUT"`},
		spec{name: "transform", cmd: ledger("transform") + `; [ ! -e "$T/break" ]`, deps: []string{"extract"}},
		spec{name: "load", cmd: ledger("load") + `; [ "$PICOFLOW_OUT_EXTRACT_ROWS" = 7 ]`, deps: []string{"extract", "transform"}},
		spec{name: "report", cmd: ledger("report"), deps: []string{"extract"}})
}

func runIDOf(t *testing.T, stdout string) string {
	t.Helper()
	m := runIDRe.FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no run id in\n%s", stdout)
	}
	return m[1]
}

// historyRun returns one run of history --json.
func historyRun(t *testing.T, home, id string) runJSON {
	t.Helper()
	out := pf(t, home, "history", "--json")
	var runs []runJSON
	if err := json.Unmarshal([]byte(out.stdout), &runs); err != nil {
		t.Fatalf("history --json: %v\n%s", err, out.stdout)
	}
	for _, r := range runs {
		if r.RunID == id {
			return r
		}
	}
	t.Fatalf("run %s not in history --json:\n%s", id, out.stdout)
	return runJSON{}
}

// TestRerun reruns a failed run with --failed and then one task with
// --from: a ledger shows that only the selected tasks and their downstream
// ran again, and history, replay and the exit codes say what happened.
func TestRerun(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file := etlWorkflow(t, dir)
	write(t, filepath.Join(dir, "rows"), "7")
	write(t, filepath.Join(dir, "break"), "")
	first := pf(t, home, "run", file)
	if first.code != ExitFailed {
		t.Fatalf("first run: %v", first)
	}
	orig := runIDOf(t, first.stdout)
	before := readLedger(t, dir)
	slices.Sort(before)
	if !slices.Equal(before, []string{"extract", "report", "transform"}) {
		t.Fatalf("first run ledger %v", before)
	}

	// The fix: transform works now, and extract would give other rows.
	os.Remove(filepath.Join(dir, "break"))
	write(t, filepath.Join(dir, "rows"), "9")
	os.Remove(filepath.Join(dir, "ledger"))
	again := pf(t, home, "rerun", orig[:12], "--failed")
	if again.code != ExitOK {
		t.Fatalf("rerun --failed: %v", again)
	}
	if got := readLedger(t, dir); !slices.Equal(got, []string{"transform", "load"}) {
		t.Errorf("rerun --failed ran %v, want [transform load]", got)
	}
	for _, want := range []string{"reusing 2 task(s) (extract, report), running 2: transform, load", "a rerun of " + orig,
		"reuse  extract  success in run " + orig} {
		if !strings.Contains(again.stdout, want) {
			t.Errorf("rerun output lacks %q:\n%s", want, again.stdout)
		}
	}
	rerun := runIDOf(t, again.stdout)
	h := historyRun(t, home, rerun)
	if h.Trigger != "rerun" || h.RerunOf != orig || h.Status != "success" {
		t.Errorf("history of the rerun: trigger %q rerun_of %q status %q", h.Trigger, h.RerunOf, h.Status)
	}
	reused := map[string]string{}
	for _, k := range h.Tasks {
		reused[k.Name] = k.ReusedFrom
		if k.ReusedFrom != "" && (k.Attempts != 0 || k.Status != "success") {
			t.Errorf("reused task %s: %d attempts, status %s", k.Name, k.Attempts, k.Status)
		}
	}
	if want := map[string]string{"extract": orig, "report": orig, "transform": "", "load": ""}; !mapsEqual(reused, want) {
		t.Errorf("reused_from by task %v, want %v", reused, want)
	}
	sameInReplay(t, home, h)
	rep := pf(t, home, "replay", "--json", rerun)
	if !strings.Contains(rep.stdout, `"rerun_of":"`+orig+`"`) || !strings.Contains(rep.stdout, `"reused_from":"`+orig+`"`) {
		t.Errorf("replay --json does not show where the rerun came from:\n%s", rep.stdout)
	}

	// --from a task of the rerun: only it runs; the rest is reused from the
	// rerun (whose extract output was itself reused: still 7).
	os.Remove(filepath.Join(dir, "ledger"))
	if out := pf(t, home, "rerun", rerun, "--from", "load"); out.code != ExitOK {
		t.Fatalf("rerun --from load: %v", out)
	}
	if got := readLedger(t, dir); !slices.Equal(got, []string{"load"}) {
		t.Errorf("rerun --from load ran %v", got)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestRerunRefusals checks the errors of rerun: each exit code and message.
func TestRerunRefusals(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file := etlWorkflow(t, dir)
	write(t, filepath.Join(dir, "rows"), "7")
	ok := pf(t, home, "run", file)
	if ok.code != ExitOK {
		t.Fatalf("run: %v", ok)
	}
	id := runIDOf(t, ok.stdout)
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown-run", []string{"20990101-000000-deadbeef", "--failed"}, ExitNotFound, "no run 20990101-000000-deadbeef"},
		{"unknown-task", []string{id, "--from", "lod"}, ExitNotFound, `no task "lod" (did you mean "load"?)`},
		{"nothing-selected", []string{id}, ExitUsage, "rerun needs --from TASK or --failed"},
		{"nothing-failed", []string{id, "--failed"}, ExitUsage, "nothing to run again"},
		{"no-run-id", []string{"--failed"}, ExitUsage, "exactly one RUN_ID"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := pf(t, home, append([]string{"rerun"}, tc.args...)...)
			if out.code != tc.code || !strings.Contains(out.stderr, tc.msg) {
				t.Errorf("exit %d (want %d), stderr %q (want %q)", out.code, tc.code, out.stderr, tc.msg)
			}
		})
	}
	if got := readLedger(t, dir); len(got) != 4 {
		t.Errorf("a refused rerun ran tasks: ledger %v", got)
	}
}

// TestRerunKill9 kills a rerun with kill -9 while its selected task runs,
// then resumes it: the reused task never runs in the rerun, the killed one
// runs again, its downstream once.
func TestRerunKill9(t *testing.T) {
	bin := testBinary(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	gate := `touch "$T/b.started"; [ ! -e "$T/fail" ] || exit 1; i=0; while [ ! -e "$T/release.$PICOFLOW_ATTEMPT" ]; do i=$((i+1)); [ $i -lt 6000 ] || exit 1; sleep 0.01; done; `
	file := writeWorkflow(t, dir, "gated", "",
		spec{name: "a", cmd: ledger("a") + `; echo "V=a-1" >> "$PICOFLOW_OUTPUT"`},
		spec{name: "b", cmd: ledger("b-start") + "; " + gate + ledger("b"), deps: []string{"a"}},
		spec{name: "c", cmd: ledger("c") + `; [ "$PICOFLOW_OUT_A_V" = a-1 ]`, deps: []string{"a", "b"}})
	write(t, filepath.Join(dir, "fail"), "")
	first := pf(t, home, "run", file)
	if first.code != ExitFailed {
		t.Fatalf("first run: %v", first)
	}
	orig := runIDOf(t, first.stdout)
	os.Remove(filepath.Join(dir, "fail"))
	os.Remove(filepath.Join(dir, "b.started"))
	os.Remove(filepath.Join(dir, "ledger"))

	c := start(t, bin, "rerun", "--home", home, orig, "--from", "b")
	c.waitFor(t, "task b of the rerun to start", exists(filepath.Join(dir, "b.started")))
	live := runIDOf(t, c.stdout.String())
	// While it runs: rerunning it, or the workflow again, is refused.
	if r := pf(t, home, "rerun", live, "--from", "b"); r.code != ExitLocked || !strings.Contains(r.stderr, "is still running") {
		t.Errorf("rerun of a live run: %v", r)
	}
	if r := pf(t, home, "rerun", orig, "--from", "b"); r.code != ExitLocked {
		t.Errorf("rerun while the workflow runs: %v", r)
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.wait(t)
	rerun := live
	// Killed, it is interrupted: rerun points at resume.
	if r := pf(t, home, "rerun", rerun, "--failed"); r.code != ExitUsage || !strings.Contains(r.stderr, "picoflow resume "+rerun) {
		t.Errorf("rerun of an interrupted run: %v", r)
	}
	// Only the resumed attempt (2) is released: the killed run's attempt 1
	// lives on as an orphan until resume kills it, and must never finish.
	write(t, filepath.Join(dir, "release.2"), "")
	res := pf(t, home, "resume", rerun)
	if res.code != ExitOK {
		t.Fatalf("resume of the killed rerun: %v", res)
	}
	if got := readLedger(t, dir); !slices.Equal(got, []string{"b-start", "b-start", "b", "c"}) {
		t.Errorf("ledger of the rerun and its resume %v, want [b-start b-start b c] (a reused, never run)", got)
	}
	h := historyRun(t, home, rerun)
	sameInReplay(t, home, h)
	if h.Status != "success" || h.RerunOf != orig {
		t.Errorf("resumed rerun: status %q rerun_of %q", h.Status, h.RerunOf)
	}
	for _, k := range h.Tasks {
		if want := map[string]int{"a": 0, "b": 2, "c": 1}[k.Name]; k.Attempts != want {
			t.Errorf("task %s: %d attempts, want %d", k.Name, k.Attempts, want)
		}
		if (k.ReusedFrom == orig) != (k.Name == "a") {
			t.Errorf("task %s reused_from %q", k.Name, k.ReusedFrom)
		}
	}
}

// sameInReplay checks that the journal's fold (replay --json) says of
// each task of a run what the history database (history --json) says:
// status, attempts, exit code and the run it was reused from.
func sameInReplay(t *testing.T, home string, h runJSON) {
	t.Helper()
	out := pf(t, home, "replay", "--json", h.RunID)
	lines := strings.Split(strings.TrimSpace(out.stdout), "\n")
	var final replayFinal
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &final); err != nil || len(final.Tasks) != len(h.Tasks) {
		t.Fatalf("replay --json %s: %v\n%v", h.RunID, err, out)
	}
	for i, r := range final.Tasks {
		k := h.Tasks[i]
		if r.Name != k.Name || r.Status != k.Status || r.Attempts != k.Attempts || r.ReusedFrom != k.ReusedFrom ||
			(r.ExitCode == nil) != (k.ExitCode == nil) {
			t.Errorf("run %s task %s: replay %+v, history %+v", h.RunID, k.Name, r, k)
		}
	}
}
