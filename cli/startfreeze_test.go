//go:build linux

package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/picoflow/picoflow/journal"
)

// TestSignalDuringStartCommit sends SIGINT while the batch that starts a
// task is being journaled: the home is on an ext4 that fsfreeze froze when
// task a ended, so picoflow blocks writing a's end with b's start. The
// signal comes after the loop's last check and before b's process may
// run: b must not run once the disk thaws (it is journaled interrupted,
// not in doubt although not idempotent: it never ran), the exit is 3, and
// the next run resumes the run and runs b.
func TestSignalDuringStartCommit(t *testing.T) {
	bin, mnt := freezableHome(t)
	dir := t.TempDir() // the workflow, its flags and the ledger: off the frozen disk
	hm := filepath.Join(mnt, "home")
	file := writeWorkflow(t, dir, "startfreeze", "",
		spec{name: "a", cmd: `[ -e "$T/again" ] && exit 0; touch "$T/a"; while [ ! -e "$T/go" ]; do sleep 0.01; done`},
		spec{name: "b", cmd: ledger("b"), deps: []string{"a"}, extra: "idempotent: false"})
	c := start(t, bin, "run", "--home", hm, "--grace", "60s", file)
	c.waitFor(t, "a to run", exists(filepath.Join(dir, "a")))
	c.waitFor(t, "a's start to be durable", func() bool { return strings.Contains(c.stdout.String(), "start  a") })

	freeze(t, mnt)
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	pid := c.cmd.Process.Pid
	c.waitFor(t, "picoflow to block journaling a's end and b's start", func() bool { return threadInD(pid) })
	if err := c.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "the graceful stop notice", func() bool { return strings.Contains(c.stderrText(), "stopping gracefully") })
	run(t, "fsfreeze", "-u", mnt)
	if code := c.wait(t); code != ExitInterrupted {
		t.Fatalf("exit %d, want %d\n--- stdout\n%s--- stderr\n%s", code, ExitInterrupted, &c.stdout, &c.stderr)
	}
	if got := readLedger(t, dir); len(got) != 0 {
		t.Fatalf("ledger %v: b ran after the signal", got)
	}
	if n := countType(hm, "startfreeze", journal.TaskInDoubt); n != 0 {
		t.Fatalf("%d task_in_doubt: b never ran", n)
	}
	if err := os.WriteFile(filepath.Join(dir, "again"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	again := start(t, bin, "run", "--home", hm, file)
	if code := again.wait(t); code != ExitOK || !strings.Contains(again.stdout.String(), "resuming run") {
		t.Fatalf("the next run: exit %d, want it to resume the run\n%s%s", code, &again.stdout, &again.stderr)
	}
	if got := readLedger(t, dir); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("ledger %v after the resume, want b once", got)
	}
}
