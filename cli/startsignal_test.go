package cli

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/picoflow/picoflow/journal"
)

// testSignalWhileStarting sends SIGINT (or SIGTERM) to picoflow run while
// it still reads its workflow file: the file is a named pipe the test
// writes only once picoflow said it stops, so the signal certainly came
// before the journal was opened and before any task. No task may start:
// the exit is 3 with a message that says so, and
//   - in a fresh home no run is journaled;
//   - where an interrupted run waits, it is not resumed (no run_resumed,
//     its leftover process untouched), stays interrupted, and the next
//     run of the file resumes it.
func testSignalWhileStarting(t *testing.T, bin string) {
	for _, tc := range []struct {
		name        string
		sig         syscall.Signal
		interrupted bool
	}{
		{"sigint-fresh-home", syscall.SIGINT, false},
		{"sigterm-interrupted-run", syscall.SIGTERM, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			home := filepath.Join(dir, "home")
			cmd := `echo $$ >> "$T/ledger"; [ -e "$T/again" ] && exit 0; exec sleep 120`
			file := writeWorkflow(t, dir, "early", "", spec{name: "work", cmd: cmd})
			def, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var id string
			if tc.interrupted {
				id = killedRun(t, bin, home, file, filepath.Join(dir, "ledger"))
			}
			ledger0, _ := os.ReadFile(filepath.Join(dir, "ledger"))

			fifo := filepath.Join(dir, "fifo.yaml")
			if err := syscall.Mkfifo(fifo, 0o640); err != nil {
				t.Fatal(err)
			}
			c := start(t, bin, "run", "--home", home, fifo)
			w, err := os.OpenFile(fifo, os.O_WRONLY, 0) // returns once picoflow opened it: its signals are caught
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if err := c.cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			c.waitFor(t, "the graceful stop notice", func() bool { return strings.Contains(c.stderrText(), "stopping gracefully") })
			if _, err := w.Write(def); err != nil {
				t.Fatal(err)
			}
			w.Close()
			code := c.wait(t)
			want := "stopped by a signal before the run started: no task was started and no run was journaled"
			if tc.interrupted {
				want = "stopped by a signal before run " + id + " resumed: no task was started; it stays resumable"
			}
			if code != ExitInterrupted || !strings.Contains(c.stderrText(), want) {
				t.Fatalf("exit %d, want %d and %q\n--- stdout\n%s--- stderr\n%s", code, ExitInterrupted, want, &c.stdout, &c.stderr)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "ledger")); string(b) != string(ledger0) {
				t.Fatalf("a task started after the signal: ledger %q, was %q", b, ledger0)
			}
			starts, resumes := countType(home, "early", journal.RunStarted), countType(home, "early", journal.RunResumed)
			if wantStarts := btoi(tc.interrupted); starts != wantStarts || resumes != 0 {
				t.Fatalf("journal: %d run_started, %d run_resumed; want %d and 0", starts, resumes, wantStarts)
			}
			if !tc.interrupted {
				return
			}
			if h := historyRun(t, home, id); h.Status != "interrupted" {
				t.Fatalf("run %s is %q after the early signal, want interrupted", id, h.Status)
			}
			if err := os.WriteFile(filepath.Join(dir, "again"), nil, 0o640); err != nil {
				t.Fatal(err)
			}
			again := start(t, bin, "run", "--home", home, file)
			if code := again.wait(t); code != ExitOK || !strings.Contains(again.stdout.String(), "resuming run "+id) {
				t.Fatalf("the next run: exit %d, want %d resuming %s\n%s%s", code, ExitOK, id, &again.stdout, &again.stderr)
			}
		})
	}
}

// killedRun runs file and kills picoflow with -9 once its task wrote its
// process group to pgidFile (the task is left running): the run stays
// interrupted. It returns the run's id.
func killedRun(t *testing.T, bin, home, file, pgidFile string) string {
	t.Helper()
	c := start(t, bin, "run", "--home", home, file)
	c.taskGroup(t, pgidFile)
	c.waitFor(t, "the run's line", func() bool { return runIDRe.MatchString(c.stdout.String()) })
	id := runIDOf(t, c.stdout.String())
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	c.wait(t)
	return id
}

// countType counts the events of type typ in workflow wf's journal.
func countType(home, wf string, typ journal.Type) int {
	n := 0
	_ = journal.Scan(journalDir(home, wf), journal.ScanOptions{}, func(ev *journal.Event) error {
		n += btoi(ev.Type == typ)
		return nil
	})
	return n
}
