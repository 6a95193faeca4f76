package cli

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// The spare (engine/spare.go), attacked from outside the process: the next
// ready shell task's shell, started and waiting at its gate while every
// slot is taken.

// waitSpare waits until a shell of the tasks that see dir as $T waits at
// its gate while picoflow runs: the spare (a launched task's shell waits
// there only for the fsync of its start). It returns its pid.
func waitSpare(t *testing.T, c *child, dir string) int {
	t.Helper()
	var pid int
	c.waitFor(t, "a spare at its gate", func() bool {
		if g := gatedShells(dir); len(g) == 1 {
			pid = g[0]
			return true
		}
		return false
	})
	return pid
}

// noneLeft waits (ten seconds at most) until no process that sees dir as
// $T is alive.
func noneLeft(t *testing.T, dir, when string) {
	t.Helper()
	var left []int
	for range 1000 {
		if left = processesWithEnv("T=" + dir); len(left) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%s: processes of the run left: %v", when, left)
}

// logFiles lists the files of every run's log directory of workflow wf.
func runLogFiles(t *testing.T, home, wf string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(home, "logs", wf, "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	slices.Sort(m)
	return m
}

// TestSpareTimeout: a task's timeout counts from its start, not from when
// its shell began to wait at its gate as the spare: a task with a 1s
// timeout that waits 1.5 s as the spare and itself runs for no time
// succeeds.
func TestSpareTimeout(t *testing.T) {
	bin := testBinary(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file := writeWorkflow(t, dir, "sparetimeout", "{max_parallel: 1}",
		spec{name: "a", cmd: `while [ ! -e "$T/go" ]; do sleep 0.01; done`},
		spec{name: "b", cmd: ledger("b"), extra: "timeout: 1s"})
	c := start(t, bin, "run", "--home", home, file)
	waitSpare(t, c, dir)
	time.Sleep(1500 * time.Millisecond) // what is measured: the spare's wait outlasts b's timeout
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t); code != ExitOK {
		t.Fatalf("exit %d, want 0\n%s%s", code, &c.stdout, &c.stderr)
	}
	if got := readLedger(t, dir); !slices.Equal(got, []string{"b"}) {
		t.Errorf("ledger %v, want [b]", got)
	}
}

// TestSpareUserDismissed: a `user:` task's spare, dismissed by a stop,
// leaves nothing in the run's log directory: neither its log nor the
// $PICOFLOW_OUTPUT file created for the user before its shell started
// (no journal entry names that attempt). The run resumes and runs the task
// once, its output passed on.
func TestSpareUserDismissed(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("user: needs root")
	}
	bin := testBinary(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file := writeWorkflow(t, dir, "spareuser", "{max_parallel: 1}",
		spec{name: "a", cmd: `while [ ! -e "$T/go" ]; do sleep 0.01; done`},
		spec{name: "b", cmd: `echo K=v > "$PICOFLOW_OUTPUT"`, extra: "user: nobody"},
		spec{name: "c", cmd: `echo "$PICOFLOW_OUT_B_K" >> "$T/ledger"`, deps: []string{"b"}})
	c := start(t, bin, "run", "--home", home, file)
	waitSpare(t, c, dir)
	if err := c.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t); code != ExitInterrupted {
		t.Fatalf("exit %d, want %d\n%s%s", code, ExitInterrupted, &c.stdout, &c.stderr)
	}
	noneLeft(t, dir, "after the stop")
	for _, f := range runLogFiles(t, home, "spareuser") {
		if f != "a.1.log" {
			t.Errorf("the log directory holds %s after the stop; only a.1.log was named by the journal", f)
		}
	}
	r := start(t, bin, "run", "--home", home, file)
	if code := r.wait(t); code != ExitOK {
		t.Fatalf("resume: exit %d\n%s%s", code, &r.stdout, &r.stderr)
	}
	if got := readLedger(t, dir); !slices.Equal(got, []string{"v"}) {
		t.Errorf("ledger %v, want [v] (c once, with b's output)", got)
	}
}
