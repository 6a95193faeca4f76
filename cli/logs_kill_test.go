package cli

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// testKillKeepsLog kills picoflow with -9 while a task runs: the task
// writes straight into its log file, so it is not killed by a SIGPIPE and
// what it writes after picoflow died is in its log; `logs` shows the whole
// of it, before and after the resumed run (which runs the task again as
// attempt 2). FIFOs order the steps.
func testKillKeepsLog(t *testing.T, bin string) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	for _, f := range []string{"b1", "b2"} {
		if err := syscall.Mkfifo(filepath.Join(dir, f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := `if [ "$PICOFLOW_ATTEMPT" -gt 1 ]; then echo again; exit 0; fi
echo before; echo $$ > "$T/pgid.tmp"; mv "$T/pgid.tmp" "$T/pgid"
read x < "$T/b1"; echo after; echo done > "$T/b2"`
	file := writeWorkflow(t, dir, "orphan", "", spec{name: "talk", cmd: cmd})
	c := start(t, bin, "run", "--home", home, file)
	c.taskGroup(t, filepath.Join(dir, "pgid"))
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	c.wait(t)
	release(t, filepath.Join(dir, "b1"))
	if b, err := os.ReadFile(filepath.Join(dir, "b2")); err != nil || string(b) != "done\n" { // "after" is written
		t.Fatalf("the task whose picoflow was killed answered %q, %v", b, err)
	}
	logs := func(want string, args ...string) {
		t.Helper()
		r := pf(t, home, append([]string{"logs", "orphan", "talk"}, args...)...)
		if r.code != ExitOK || r.stdout != want {
			t.Errorf("logs %s: exit %d, stdout %q, want %q\n%s", strings.Join(args, " "), r.code, r.stdout, want, r.stderr)
		}
	}
	logs("before\nafter\n")
	again := start(t, bin, "run", "--home", home, file) // resumes the run
	if code := again.wait(t); code != ExitOK {
		t.Fatalf("resume: exit %d\n%s%s", code, &again.stdout, &again.stderr)
	}
	logs("before\nafter\n", "--attempt", "1")
	logs("again\n", "--attempt", "2")
}
