package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/journal"
)

// withHandlers appends run handlers (YAML) to a workflow file.
func withHandlers(t *testing.T, file, yaml string) string {
	t.Helper()
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(yaml); err != nil {
		t.Fatal(err)
	}
	return file
}

// handlerYAML is one shell handler list entry.
func handlerYAML(list, name, cmd string) string {
	return list + ":\n  - name: " + name + "\n    type: shell\n    config:\n      command: '" + cmd + "'\n"
}

// runOf replays the home and returns run id.
func runOf(t *testing.T, home, id string) *engine.Run {
	t.Helper()
	r := homeState(t, home).Runs[id]
	if r == nil {
		t.Fatalf("no run %s", id)
	}
	return r
}

// TestCancelCommand cancels a run no process holds (a crash interrupted
// it): exit 0, its on_cancel handler runs, its DAG never runs again, and
// history and replay show who canceled it and why; then the exit codes of
// a finished and of an unknown run.
func TestCancelCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file := writeWorkflow(t, dir, "nightly", "",
		spec{name: "fetch", cmd: ledger("fetch")},
		spec{name: "load", cmd: ledger("load"), deps: []string{"fetch"}})
	withHandlers(t, file, handlerYAML("on_cancel", "undo", `echo undo >> "$T/ledger"`)+
		handlerYAML("on_success", "yay", `echo yay >> "$T/ledger"`))
	id := crashedRun(t, home, file, "fetch")

	if res := picoflow(t, "cancel", "--home", home, "no-such-run"); res.code != ExitNotFound {
		t.Errorf("cancel of an unknown run: %s", res)
	}
	res := picoflow(t, "cancel", "--home", home, id[:12], "--reason", "bad input file")
	if res.code != ExitOK || !strings.Contains(res.stdout, "run "+id+" canceled") {
		t.Fatalf("cancel: %s", res)
	}
	// No process ran fetch: nothing was "stopped after the grace".
	if strings.Contains(res.stdout, "stopped after the grace") || !strings.Contains(res.stdout, "cancel fetch  the run was canceled") {
		t.Errorf("cancel of a task no process ran says:\n%s", res.stdout)
	}
	if got := readLedger(t, dir); !slices.Equal(got, []string{"undo"}) {
		t.Errorf("ledger %v, want only the on_cancel handler", got)
	}
	r := runOf(t, home, id)
	if r.Status != engine.RunCanceled || r.CancelReason != "bad input file" || !strings.Contains(r.CanceledBy, "@") {
		t.Errorf("run %s, reason %q, by %q", r.Status, r.CancelReason, r.CanceledBy)
	}
	for task, want := range map[string]engine.TaskStatus{"fetch": engine.Canceled, "load": engine.Canceled, "undo": engine.Success, "yay": engine.Skipped} {
		if st := r.Tasks[task]; st == nil || st.Status != want {
			t.Errorf("task %s: %+v, want %s", task, st, want)
		}
	}
	sameTaskStatuses(t, home, id)
	res = picoflow(t, "cancel", "--home", home, id)
	if res.code != ExitFinished || !strings.Contains(res.stderr, "already finished with status canceled") {
		t.Errorf("second cancel: %s", res)
	}
	hist := picoflow(t, "history", "--home", home)
	if !strings.Contains(hist.stdout, "canceled by ") || !strings.Contains(hist.stdout, "bad input file") {
		t.Errorf("history does not say who canceled:\n%s", hist)
	}
	rep := picoflow(t, "replay", "--home", home, id)
	if !strings.Contains(rep.stdout, "run_canceled") || !strings.Contains(rep.stdout, "bad input file") {
		t.Errorf("replay does not show the cancel:\n%s", rep)
	}
	// A canceled run is never resumed: the next run starts afresh.
	if res := picoflow(t, "run", "--home", home, file); res.code != ExitOK || strings.Contains(res.stdout, "resuming") {
		t.Errorf("run after the cancel: %s", res)
	}
}

// TestFreshCancelsThroughEngine checks that run --fresh journals the
// superseded run's cancel as the engine does: run_canceled, then its
// handlers, then run_finished canceled.
func TestFreshCancelsThroughEngine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file := writeWorkflow(t, dir, "fresh2", "", spec{name: "a", cmd: ledger("a")})
	withHandlers(t, file, handlerYAML("on_cancel", "undo", `echo undo >> "$T/ledger"`))
	id := crashedRun(t, home, file, "a")
	if res := picoflow(t, "run", "--home", home, "--fresh", file); res.code != ExitOK {
		t.Fatalf("run --fresh: %s", res)
	}
	r := runOf(t, home, id)
	if r.Status != engine.RunCanceled || r.CancelReason != "superseded by picoflow run --fresh" {
		t.Errorf("superseded run %s (%q)", r.Status, r.CancelReason)
	}
	if got := readLedger(t, dir); !slices.Equal(got, []string{"undo", "a"}) {
		t.Errorf("ledger %v, want the old run's on_cancel, then the new run", got)
	}
}

// testCancelForeground cancels a foreground picoflow run from another
// process: the running task is killed after the grace, on_cancel runs in
// the foreground process, which exits 1 (canceled).
func testCancelForeground(t *testing.T, bin string) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file := writeWorkflow(t, dir, "fg", "{shutdown_grace: 300ms}",
		spec{name: "long", cmd: `echo $$ > "$T/pgid"; exec sleep 120`},
		spec{name: "after", cmd: ledger("after"), deps: []string{"long"}})
	withHandlers(t, file, handlerYAML("on_cancel", "undo", `echo undo >> "$T/ledger"`))
	c := start(t, bin, "run", "--home", home, file)
	pgid := c.taskGroup(t, filepath.Join(dir, "pgid"))
	id := onlyRun(t, home)
	cancel := start(t, bin, "cancel", "--home", home, id, "--reason", "operator")
	if code := cancel.wait(t); code != ExitOK {
		t.Fatalf("cancel: exit %d\n%s%s", code, &cancel.stdout, &cancel.stderr)
	}
	if code := c.wait(t); code != ExitFailed || !strings.Contains(c.stderr.String(), "canceled") {
		t.Fatalf("the canceled run: exit %d\n%s", code, &c.stderr)
	}
	waitGroupGone(t, pgid)
	r := runOf(t, home, id)
	if r.Status != engine.RunCanceled || r.CancelReason != "operator" {
		t.Errorf("run %s (%q)", r.Status, r.CancelReason)
	}
	if got := readLedger(t, dir); !slices.Equal(got, []string{"undo"}) {
		t.Errorf("ledger %v, want undo", got)
	}
}

// onlyRun returns the id of the one run in the home's journals.
func onlyRun(t *testing.T, home string) string {
	t.Helper()
	st := homeState(t, home)
	if len(st.Runs) != 1 {
		t.Fatalf("%d runs, want 1", len(st.Runs))
	}
	for id := range st.Runs {
		return id
	}
	return ""
}

// testKillDuringHandler kills picoflow with SIGKILL while a handler runs:
// the next run resumes the run, a handler that finished never runs again,
// the interrupted one runs again, and on_exit runs once.
func testKillDuringHandler(t *testing.T, bin string) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file := writeWorkflow(t, dir, "hkill", "", spec{name: "work", cmd: "exit 2"})
	slow := `if [ -e "$T/slow" ]; then echo slow-again >> "$T/ledger"; exit 0; fi; echo slow >> "$T/ledger"; echo $$ > "$T/slow"; exec sleep 120`
	withHandlers(t, file, "on_failure:\n  - {name: first, type: shell, config: {command: 'echo first >> \"$T/ledger\"'}}\n"+
		"  - {name: slow, type: shell, config: {command: '"+slow+"'}}\n"+
		handlerYAML("on_exit", "bye", `echo bye >> "$T/ledger"`))
	c := start(t, bin, "run", "--home", home, "--max-parallel", "1", file)
	c.taskGroup(t, filepath.Join(dir, "slow"))
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.wait(t)
	again := start(t, bin, "run", "--home", home, file)
	if code := again.wait(t); code != ExitFailed {
		t.Fatalf("resume: exit %d, want 1 (the run failed; handlers do not change it)\n%s%s", code, &again.stdout, &again.stderr)
	}
	got := readLedger(t, dir)
	if !slices.Equal(got, []string{"first", "slow", "slow-again", "bye"}) {
		t.Errorf("ledger %v, want first, slow, slow-again, bye", got)
	}
	r := runOf(t, home, onlyRun(t, home))
	if r.Status != engine.RunFailed || r.Resumes != 1 {
		t.Errorf("run %s after %d resumes", r.Status, r.Resumes)
	}
	sameTaskStatuses(t, home, r.ID)
}

// testKillDuringCancel kills picoflow with SIGKILL while its on_cancel
// handler runs: the run stays canceled (its DAG never runs again), and a
// second cancel finishes it.
func testKillDuringCancel(t *testing.T, bin string) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file := writeWorkflow(t, dir, "ckill", "{shutdown_grace: 200ms}",
		spec{name: "long", cmd: `exec sleep 120`},
		spec{name: "after", cmd: ledger("after"), deps: []string{"long"}})
	withHandlers(t, file, handlerYAML("on_cancel", "undo", `echo undo >> "$T/ledger"; echo $$ > "$T/undo"; exec sleep 120`)+
		handlerYAML("on_exit", "bye", `echo bye >> "$T/ledger"`))
	c := start(t, bin, "run", "--home", home, file)
	c.waitFor(t, "the task to start", func() bool {
		st := homeState(t, home)
		return len(st.Runs) == 1 && anyRunning(st)
	})
	id := onlyRun(t, home)
	if code := start(t, bin, "cancel", "--home", home, id).wait(t); code != ExitOK {
		t.Fatal("cancel failed")
	}
	undo := c.taskGroup(t, filepath.Join(dir, "undo"))
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.wait(t)
	if st := picoflow(t, "status", "--home", home); !strings.Contains(st.stdout, "canceling: requested by ") {
		t.Errorf("status does not show the cancel in progress:\n%s", st)
	}
	again := start(t, bin, "cancel", "--home", home, id, "--reason", "again")
	if code := again.wait(t); code != ExitOK {
		t.Fatalf("cancel after the crash: exit %d\n%s%s", code, &again.stdout, &again.stderr)
	}
	waitGroupGone(t, undo)
	r := runOf(t, home, id)
	if r.Status != engine.RunCanceled || r.Tasks["after"].Status != engine.Canceled || r.Tasks["undo"].Status != engine.Canceled {
		t.Errorf("run %s, after %s, undo %s", r.Status, r.Tasks["after"].Status, r.Tasks["undo"].Status)
	}
	if got := readLedger(t, dir); !slices.Equal(got, []string{"undo", "bye"}) {
		t.Errorf("ledger %v, want undo, bye", got)
	}
	sameTaskStatuses(t, home, id)
	n := 0
	for _, e := range journalEvents(t, home, "ckill") {
		if e.Type == journal.RunCanceled {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d run_canceled events, want 1: the first cancel stands", n)
	}
}

func anyRunning(st *engine.State) bool {
	for _, r := range st.Runs {
		for _, t := range r.Tasks {
			if t.Status == engine.Running {
				return true
			}
		}
	}
	return false
}

func journalEvents(t *testing.T, home, wf string) []*journal.Event {
	t.Helper()
	var evs []*journal.Event
	if err := journal.Scan(journalDir(home, wf), journal.ScanOptions{}, func(e *journal.Event) error {
		evs = append(evs, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestCancelV1Home cancels the interrupted run of a home the previous
// release wrote (no run_canceled, SQLite schema 1): cancel converts the
// home like any writer, journals the cancel, and history and replay show
// it from the new event; the finished runs answer exit 10.
func TestCancelV1Home(t *testing.T) {
	home, ledger := v1Home(t)
	r := pf(t, home, "cancel", v1BetaLive, "--reason", "old run")
	if r.code != ExitOK {
		t.Fatalf("cancel: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(ledger); len(b) != 0 {
		t.Errorf("the canceled run ran %q", b)
	}
	if !pathExists(filepath.Join(home, "journal-v1")) {
		t.Error("cancel did not convert the home")
	}
	checkV1History(t, home, "canceled")
	if h := pf(t, home, "history"); !strings.Contains(h.stdout, "canceled by ") || !strings.Contains(h.stdout, "old run") {
		t.Errorf("history:\n%s", h.stdout)
	}
	if r := pf(t, home, "cancel", v1AlphaOK); r.code != ExitFinished {
		t.Errorf("cancel of a finished run of the old home: exit %d\n%s", r.code, r.stderr)
	}
}

// sameTaskStatuses checks that the projector (history --json) and the
// engine's reducer (replay) agree on the status of every task of run id.
func sameTaskStatuses(t *testing.T, home, id string) {
	t.Helper()
	res := picoflow(t, "history", "--home", home, "--json", "--tasks")
	var runs []runJSON
	if err := json.Unmarshal([]byte(res.stdout), &runs); err != nil {
		t.Fatalf("history --json: %v\n%s", err, res)
	}
	r := runOf(t, home, id)
	for _, hr := range runs {
		if hr.RunID != id {
			continue
		}
		if hr.Status != r.Status.String() {
			t.Errorf("run %s: projector %s, reducer %s", id, hr.Status, r.Status)
		}
		if len(hr.Tasks) != len(r.Tasks) {
			t.Errorf("projector has %d tasks, reducer %d", len(hr.Tasks), len(r.Tasks))
		}
		for _, task := range hr.Tasks {
			if st := r.Tasks[task.Name]; st == nil || st.Status.String() != task.Status {
				t.Errorf("task %s: projector %s, reducer %v", task.Name, task.Status, st)
			}
		}
		return
	}
	t.Errorf("history has no run %s", id)
}

// testCancelSignal sends SIGUSR1 with no request file to a foreground
// run: the run is canceled, journaled as asked by "signal".
func testCancelSignal(t *testing.T, bin string) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file := writeWorkflow(t, dir, "usr1", "{shutdown_grace: 200ms}",
		spec{name: "long", cmd: `echo $$ > "$T/pgid"; exec sleep 120`})
	c := start(t, bin, "run", "--home", home, file)
	pgid := c.taskGroup(t, filepath.Join(dir, "pgid"))
	if err := c.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t); code != ExitFailed {
		t.Fatalf("exit %d, want 1 (canceled)\n%s", code, &c.stderr)
	}
	waitGroupGone(t, pgid)
	r := runOf(t, home, onlyRun(t, home))
	if r.Status != engine.RunCanceled || r.CanceledBy != "signal" {
		t.Errorf("run %s by %q, want canceled by signal", r.Status, r.CanceledBy)
	}
}
