package cli

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// TestGateDiskFull fills the file system of the home during runs of a
// chain, a fan-out and retried tasks, with k pages left, k = 0, 1, ...: a
// commit fails at whatever it needs to write first (a journal page, a log
// file, its directory). Whatever failed, no task's code ran unless its
// start was in the journal (the ledger against the journal, as in
// gate-ledger-kill-9), the exit code is one of the table's, and once the
// space is freed the run ends successfully.
func TestGateDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs to fill it needs root")
	}
	bin := testBinary(t)
	fs := mountTmpfs(t, "4m")
	filler := filepath.Join(fs, "filler")
	rnd := rand.New(rand.NewPCG(1, 2))
	outcomes := map[int]int{}
	for k := range envInt(t, "PICOFLOW_GATE_PAGES", 12) {
		fillLeaving(t, filler, k)
		gateOnFullDisk(t, bin, fs, k, rnd, outcomes, func() { os.Remove(filler) })
	}
	t.Logf("exit codes with the space used up: %v", outcomes)
	if outcomes[ExitInternal] == 0 {
		t.Error("the disk never filled during a run")
	}
}

// TestGateOutOfInodes is TestGateDiskFull with the inodes used up, k left.
func TestGateOutOfInodes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs to use up its inodes needs root")
	}
	bin := testBinary(t)
	fs := mountTmpfs(t, "64m,nr_inodes=200")
	fill := filepath.Join(fs, "fill")
	if err := os.Mkdir(fill, 0o755); err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(3, 4))
	outcomes := map[int]int{}
	for k := range envInt(t, "PICOFLOW_GATE_INODES", 40) {
		gateOnFullDisk(t, bin, fs, k, rnd, outcomes, useUpInodes(t, fill, k))
	}
	t.Logf("exit codes with the inodes used up: %v", outcomes)
	if outcomes[ExitInternal]+outcomes[ExitFailed] == 0 {
		t.Error("the inodes never ran out during a run")
	}
}

// gateOnFullDisk runs a workflow of gateShape on the full file system fs,
// frees it (free), runs it again to its end and checks the ledger against
// the journal.
func gateOnFullDisk(t *testing.T, bin, fs string, k int, rnd *rand.Rand, outcomes map[int]int, free func()) {
	t.Helper()
	g := newGateTrial(t, bin, k, rnd)
	g.home = filepath.Join(fs, fmt.Sprintf("home-%d", k))
	g.jdir = filepath.Join(g.home, "journal", "gate")
	c := startEnv(t, bin, []string{"GATE_GEN=0"}, "run", "--home", g.home, g.file)
	code := c.wait(t)
	free()
	outcomes[code]++
	if code != ExitOK {
		t.Logf("k=%d: exit %d: %s\n%s", k, code, strings.TrimSpace(c.stderr.String()), lastLines(c.stdout.String(), 4))
	}
	if code != ExitOK && code != ExitInternal && code != ExitFailed {
		t.Fatalf("k=%d: exit %d on a full disk\n%s%s", k, code, &c.stdout, &c.stderr)
	}
	g.pids = append(g.pids, c.cmd.Process.Pid)
	if _, ok := g.snapshot(); !ok {
		t.FailNow()
	}
	printedStarts(t, k, c.stdout.String(), g.starts[0])
	again := startEnv(t, bin, []string{"GATE_GEN=1"}, "run", "--home", g.home, g.file)
	if code := again.wait(t); code != ExitOK {
		t.Fatalf("k=%d: the run after freeing space: exit %d\n%s%s", k, code, &again.stdout, &again.stderr)
	}
	g.pids = append(g.pids, again.cmd.Process.Pid)
	if _, ok := g.snapshot(); !ok || !g.check() {
		t.Fatalf("k=%d: on the full disk: exit %d\n%s%s", k, code, &c.stdout, &c.stderr)
	}
	if err := os.RemoveAll(g.home); err != nil {
		t.Fatal(err)
	}
}

// fillLeaving fills the file system of path with a file at path, then
// shortens it to leave about k pages free.
func fillLeaving(t *testing.T, path string, k int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	var n int64
	for {
		w, err := f.Write(buf)
		n += int64(w)
		if err != nil {
			if pe, ok := err.(*os.PathError); !ok || pe.Err != syscall.ENOSPC {
				t.Fatal(err)
			}
			break
		}
	}
	if err := f.Truncate(max(0, n-int64(k)*4096)); err != nil {
		t.Fatal(err)
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

var (
	runStartedRe = regexp.MustCompile(`(?m)^\S+ run (\S+) of \S+ started`)
	startLineRe  = regexp.MustCompile(`(?m)^\S+\s+start\s+(\S+)(?: \(attempt (\d+)\))?$`)
)

// printedStarts checks that every start picoflow printed (`start TASK`,
// `start TASK (attempt N)`) is in the journal (starts, "run task attempt"
// counted): a start whose commit failed is not announced.
func printedStarts(t *testing.T, k int, stdout string, starts map[string]int) {
	t.Helper()
	m := runStartedRe.FindStringSubmatch(stdout)
	if m == nil {
		return // the run never started
	}
	for _, s := range startLineRe.FindAllStringSubmatch(stdout, -1) {
		attempt := s[2]
		if attempt == "" {
			attempt = "1"
		}
		if key := m[1] + " " + s[1] + " " + attempt; starts[key] == 0 {
			t.Errorf("k=%d: picoflow printed %q, a start the journal does not hold (%s)", k, strings.TrimSpace(s[0]), key)
		}
	}
}
