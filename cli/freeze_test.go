//go:build linux

package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestForcedExitOnFrozenDisk forces an exit (a second SIGINT) while a
// journal write hangs in the kernel: the home is on an ext4 file system
// that fsfreeze froze (as a snapshot tool does) when a task's end was
// being journaled. The forced exit must still kill the tasks and say so
// at once, not wait for the disk (journal.Freeze waits for the write in
// progress a bounded time); once the disk is thawed the process exits 130
// and the run resumes.
func TestForcedExitOnFrozenDisk(t *testing.T) {
	bin, mnt := freezableHome(t)
	dir := t.TempDir() // the workflow, its flags and the tasks' pgid: off the frozen disk
	hm := filepath.Join(mnt, "home")
	file := writeWorkflow(t, dir, "frozen", "",
		spec{name: "long", cmd: `[ -e "$T/go" ] && exit 0; echo $$ > "$T/pgid"; exec sleep 120`},
		spec{name: "ends", cmd: `while [ ! -e "$T/go" ]; do sleep 0.01; done`})
	c := start(t, bin, "run", "--home", hm, "--grace", "60s", file)
	pgid := c.taskGroup(t, filepath.Join(dir, "pgid"))
	c.waitFor(t, "the run to be printed", func() bool { return strings.Contains(c.stdout.String(), "start  ends") })

	freeze(t, mnt)
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	pid := c.cmd.Process.Pid
	c.waitFor(t, "picoflow to block writing the task's end to the frozen disk", func() bool { return threadInD(pid) })
	for _, notice := range []string{"stopping gracefully", "forced exit"} {
		if err := c.cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		c.waitFor(t, "the notice "+notice+" with the disk frozen", func() bool { return strings.Contains(c.stderrText(), notice) })
	}
	if want := "killed 1 task process group(s) (SIGKILL to pgid " + strconv.Itoa(pgid) + ")"; !strings.Contains(c.stderrText(), want) {
		t.Errorf("stderr does not say %q:\n%s", want, c.stderrText())
	}
	if !strings.Contains(c.stderrText(), "a journal write still in progress after 1s was left unfinished") {
		t.Errorf("stderr does not say the journal write was left unfinished:\n%s", c.stderrText())
	}
	waitGroupGone(t, pgid)

	run(t, "fsfreeze", "-u", mnt)
	if code := c.wait(t); code != ExitForced {
		t.Fatalf("exit %d after two SIGINTs, want %d\n--- stderr\n%s", code, ExitForced, &c.stderr)
	}
	again := start(t, bin, "run", "--home", hm, file)
	if code := again.wait(t); code != ExitOK || !strings.Contains(again.stdout.String(), "resuming run") {
		t.Fatalf("run after the thaw: exit %d, want it to resume the run\n%s%s", code, &again.stdout, &again.stderr)
	}
}

// freezableHome skips a test that cannot loop-mount an ext4 and freeze
// it (fsfreeze needs root), else returns the binary and the mount point.
func freezableHome(t *testing.T) (bin, mnt string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("a loop-mounted ext4 and fsfreeze need root")
	}
	for _, tool := range []string{"mkfs.ext4", "fsfreeze"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip(tool + " is not installed")
		}
	}
	return testBinary(t), mountExt4(t)
}

// freeze freezes the file system at mnt; the test's cleanup thaws it
// (registered now: it runs before a child's cleanup waits for the child).
func freeze(t *testing.T, mnt string) {
	t.Helper()
	run(t, "fsfreeze", "-f", mnt)
	t.Cleanup(func() { exec.Command("fsfreeze", "-u", mnt).Run() })
}

// mountExt4 makes a small ext4 file system in an image file and
// loop-mounts it on a new directory, unmounted at cleanup.
func mountExt4(t *testing.T) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "ext4.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 32<<20); err != nil {
		t.Fatal(err)
	}
	run(t, "mkfs.ext4", "-q", "-F", img)
	mnt := t.TempDir()
	run(t, "mount", "-o", "loop", img, mnt)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
}

// threadInD reports whether a thread of pid sleeps uninterruptibly (state
// D): blocked in the kernel, here by the frozen file system.
func threadInD(pid int) bool {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/stat")
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'D' {
			return true
		}
	}
	return false
}
