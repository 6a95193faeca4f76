package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunDiskFull fills the file system of the home during a run: the run
// stops with exit 7 naming "no space left on device" and the journal file,
// never a bare "journal is closed"; read-only journal commands work on the
// full disk; once space is freed, run FILE resumes the run and finishes it.
func TestRunDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs to fill it needs root; run the tests as root to cover a full disk")
	}
	fs := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", fs).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", fs).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	})
	dir := t.TempDir() // the workflow and its ledger live off the small fs
	hm := filepath.Join(fs, "home")
	filler := filepath.Join(fs, "filler")
	// After a fills the disk, the events of 40 more tasks outgrow the
	// journal's last allocated page.
	tasks := []spec{{name: "a", cmd: ledger("a") + "; cat /dev/zero > " + filler + " 2>/dev/null; true"}}
	prev := "a"
	for i := range 40 {
		name := fmt.Sprintf("t%02d", i)
		tasks = append(tasks, spec{name: name, cmd: ledger(name), deps: []string{prev}})
		prev = name
	}
	file := writeWorkflow(t, dir, "fill", "", tasks...)

	res := picoflow(t, "run", "--home", hm, file)
	if res.code != ExitInternal || !strings.Contains(res.stderr, "no space left on device") || strings.Contains(res.stderr, "journal is closed") {
		t.Fatalf("run on a full disk: %s", res)
	}
	t.Logf("on a full disk: %s", res.stderr)
	if res := picoflow(t, "journal", "verify", "--home", hm); res.code != ExitOK {
		t.Errorf("verify on a full disk: %s", res)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	res = picoflow(t, "run", "--home", hm, file)
	if res.code != ExitOK || !strings.Contains(res.stdout, "resuming run") {
		t.Fatalf("run after freeing space: %s", res)
	}
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
