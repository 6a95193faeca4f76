package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// TestRunDiskFull fills the file system of the home during a run of the
// real binary: the run stops with exit 7 naming "no space left on device"
// and the journal file, never a bare "journal is closed". On the full disk,
// with the run in the journal but not in the history database (catching up
// would need to write), history, status, logs, replay and journal verify
// all answer, exit 0; once space is freed, run FILE resumes the run and
// finishes it.
func TestRunDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs to fill it needs root; run the tests as root to cover a full disk")
	}
	bin := testBinary(t)
	fs := mountTmpfs(t, "2m")
	dir := t.TempDir() // the workflow and its ledger live off the small fs
	hm := filepath.Join(fs, "home")
	filler := filepath.Join(fs, "filler")
	// After a fills the disk, the events of 40 more tasks outgrow the
	// journal's last allocated page.
	tasks := []spec{{name: "a", cmd: "echo a-was-here; " + ledger("a") + "; cat /dev/zero > " + filler + " 2>/dev/null; true"}}
	prev := "a"
	for i := range 40 {
		name := fmt.Sprintf("t%02d", i)
		tasks = append(tasks, spec{name: name, cmd: ledger(name), deps: []string{prev}})
		prev = name
	}
	file := writeWorkflow(t, dir, "fill", "", tasks...)
	bin1 := func(args ...string) (int, string, string) {
		t.Helper()
		c := start(t, bin, args...)
		code := c.wait(t)
		return code, c.stdout.String(), c.stderr.String()
	}

	// A run the history database holds, before the disk fills.
	okFile := writeWorkflow(t, dir, "ok", "", spec{name: "x", cmd: "true"})
	if code, stdout, stderr := bin1("run", "--home", hm, okFile); code != ExitOK {
		t.Fatalf("run ok: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr := bin1("run", "--home", hm, file)
	if code != ExitInternal || !strings.Contains(stderr, "no space left on device") || strings.Contains(stderr, "journal is closed") {
		t.Fatalf("run on a full disk: exit %d\n%s%s", code, stdout, stderr)
	}
	t.Logf("on a full disk: %s", stderr)

	// The read-only commands, on the full disk.
	code, stdout, stderr = bin1("history", "--home", hm, "--json")
	var runs []runJSON
	if code != ExitOK || json.Unmarshal([]byte(stdout), &runs) != nil || len(runs) != 2 || runs[0].Workflow != "fill" {
		t.Fatalf("history on a full disk: exit %d, want the run of fill and the one of ok\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "answering from the journals") {
		t.Errorf("history on a full disk: no warning that the history database is behind:\n%s", stderr)
	}
	for _, args := range [][]string{
		{"status", "--home", hm},
		{"logs", "--home", hm, "fill", "a"},
		{"replay", "--home", hm, runs[0].RunID},
		{"journal", "verify", "--home", hm},
	} {
		code, stdout, stderr := bin1(args...)
		if code != ExitOK {
			t.Errorf("%s on a full disk: exit %d\n%s%s", args[0], code, stdout, stderr)
		}
		if args[0] == "status" && (!strings.Contains(stdout, "fill") || !strings.Contains(stdout, runs[0].RunID)) {
			t.Errorf("status on a full disk does not show the run of fill:\n%s", stdout)
		}
		if args[0] == "logs" && !strings.Contains(stdout, "a-was-here") {
			t.Errorf("logs on a full disk: %q, want the log of a", stdout)
		}
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = bin1("run", "--home", hm, file)
	if code != ExitOK || !strings.Contains(stdout, "resuming run") {
		t.Fatalf("run after freeing space: exit %d\n%s%s", code, stdout, stderr)
	}
	checkResumedLedger(t, dir)
}

// mountTmpfs mounts a tmpfs of the given size (as mount's size= option)
// on a new temporary directory, unmounted at cleanup. It needs root.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	fs := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", fs).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", fs).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	})
	return fs
}

// checkResumedLedger checks the ledger of TestRunDiskFull after the resume:
// every task ran, t39 last, and only the task whose end could not be
// journaled may have run twice.
func checkResumedLedger(t *testing.T, dir string) {
	t.Helper()
	got := readLedger(t, dir)
	twice := 0
	for name, n := range countWords(got) {
		if n == 2 {
			twice++
		}
		if n > 2 || twice > 1 {
			t.Errorf("%s ran %d times", name, n)
		}
	}
	if len(got) < 41 || got[len(got)-1] != "t39" {
		t.Errorf("ledger %v: want every task, t39 last; only the task whose end could not be journaled may run twice", got)
	}
}

func countWords(words []string) map[string]int {
	c := map[string]int{}
	for _, w := range words {
		c[w]++
	}
	return c
}

var (
	startedRe  = regexp.MustCompile(`run (\S+) was started and stays resumable`)
	resumingRe = regexp.MustCompile(`resuming run (\S+)`)
)

// TestRunOutOfInodes runs a workflow whose definition is bigger than a
// journal segment (its run_started goes in a segment of its own,
// journal/bigentry.go) with k inodes left, k = 0, 1, ... until the run
// succeeds, and then once more with every inode free. Whatever ran out
// first (the entry's own segment, the empty one after it, the log
// directory, the log file), the exit code and message tell what the next
// run does: exit 7 saying "run X was started" → it resumes X; any other
// failure → it starts a new run.
func TestRunOutOfInodes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs to use up its inodes needs root")
	}
	bin := testBinary(t)
	fs := mountTmpfs(t, "64m,nr_inodes=400")
	dir := t.TempDir()
	hm := filepath.Join(fs, "home")
	file := writeWorkflow(t, dir, "big", "", spec{name: "a", cmd: "echo a"})
	line := "# " + strings.Repeat("x", 97) + "\n"
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(strings.Repeat(line, (1<<20)/len(line)+2000))
		f.Close()
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err == nil {
		err = os.WriteFile(cfg, []byte("resources:\n  max_workflow_file: 4MiB\n"), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	run := func() (int, string, string) {
		c := start(t, bin, "run", "--home", hm, "--config", cfg, file)
		code := c.wait(t)
		return code, c.stdout.String(), c.stderr.String()
	}
	if code, out, errs := run(); code != ExitOK { // the home, the journal, HOME/logs/big
		t.Fatalf("first run: exit %d\n%s%s", code, out, errs)
	}
	fill := filepath.Join(fs, "fill")
	if err := os.Mkdir(fill, 0o755); err != nil {
		t.Fatal(err)
	}
	var ownSegment, started bool
	for k := 0; ; k++ {
		if k == 20 {
			t.Fatal("the run never succeeded")
		}
		free := useUpInodes(t, fill, k)
		code, out, errs := run()
		free()
		code2, out2, errs2 := run()
		if code2 != ExitOK {
			t.Fatalf("k=%d: the run after freeing the inodes: exit %d\n%s%s", k, code2, out2, errs2)
		}
		resumed := resumingRe.FindStringSubmatch(out2)
		said := startedRe.FindStringSubmatch(errs)
		t.Logf("k=%d: exit %d: %s", k, code, strings.TrimSpace(errs))
		switch {
		case code == ExitOK:
			if !ownSegment || !started {
				t.Errorf("the inodes never ran out at the big entry's segments (%v) or after the run started (%v)", ownSegment, started)
			}
			return
		case code == ExitInternal && said != nil:
			started = true
			if resumed == nil || resumed[1] != said[1] {
				t.Errorf("k=%d: exit 7 said run %s was started; the next run printed\n%s", k, said[1], out2)
			}
		case code == ExitInternal || code == ExitFailed:
			ownSegment = ownSegment || strings.Contains(errs, "in a segment of its own")
			if resumed != nil {
				t.Errorf("k=%d: exit %d did not say a run was started, and the next run resumed %s:\n%s", k, code, resumed[1], errs)
			}
		default:
			t.Fatalf("k=%d: exit %d\n%s%s", k, code, out, errs)
		}
	}
}

// useUpInodes creates empty files in dir until the file system has no
// inode left, then removes keep of them; the function it returns removes
// the rest.
func useUpInodes(t *testing.T, dir string, keep int) func() {
	t.Helper()
	var made []string
	for i := 0; ; i++ {
		p := filepath.Join(dir, fmt.Sprintf("inode-%d", i))
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		made = append(made, p)
	}
	for range min(keep, len(made)) {
		os.Remove(made[len(made)-1])
		made = made[:len(made)-1]
	}
	return func() {
		for _, p := range made {
			os.Remove(p)
		}
	}
}
