package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
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
// its shell began to wait at its gate as the spare: a task with a 100ms
// timeout that waits 150 ms as the spare (fresh still: engine spareFresh
// is 200 ms) and itself runs for no time succeeds, in the spare's shell.
func TestSpareTimeout(t *testing.T) {
	bin := testBinary(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file := writeWorkflow(t, dir, "sparetimeout", "{max_parallel: 1}",
		spec{name: "a", cmd: `while [ ! -e "$T/go" ]; do sleep 0.01; done`},
		spec{name: "b", cmd: `echo $$ >> "$T/ledger"`, extra: "timeout: 100ms"})
	c := start(t, bin, "run", "--home", home, file)
	spare := waitSpare(t, c, dir)
	time.Sleep(150 * time.Millisecond) // what is measured: the spare's wait outlasts b's timeout
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t); code != ExitOK {
		t.Fatalf("exit %d, want 0\n%s%s", code, &c.stdout, &c.stderr)
	}
	got := readLedger(t, dir)
	if len(got) != 1 {
		t.Fatalf("ledger %v, want b's shell once", got)
	}
	if got[0] != strconv.Itoa(spare) { // a slow machine: a took over 50 ms to see go and end
		t.Logf("b ran in shell %s, not in the spare %d (it outlived its freshness): nothing measured", got[0], spare)
	}
}

// TestUserTaskNoSpare: a `user:` task gets no spare (its fork looks the
// account up, which the task before it may create): while a runs at
// max_parallel 1, no shell of b waits at its gate. A stop then leaves
// nothing of b in the run's log directory, neither a log nor the
// $PICOFLOW_OUTPUT file made for the user before its shell starts (no
// journal entry names such an attempt), and the resumed run runs b once,
// its output passed on.
func TestUserTaskNoSpare(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("user: needs root")
	}
	bin := testBinary(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file := writeWorkflow(t, dir, "spareuser", "{max_parallel: 1}",
		spec{name: "a", cmd: `: > "$T/a.running"; while [ ! -e "$T/go" ]; do sleep 0.01; done`},
		spec{name: "b", cmd: `echo K=v > "$PICOFLOW_OUTPUT"`, extra: "user: nobody"},
		spec{name: "c", cmd: `echo "$PICOFLOW_OUT_B_K" >> "$T/ledger"`, deps: []string{"b"}})
	c := start(t, bin, "run", "--home", home, file)
	c.waitFor(t, "a running", func() bool {
		_, err := os.Stat(filepath.Join(dir, "a.running"))
		return err == nil
	})
	if g := gatedShells(dir); len(g) != 0 {
		t.Errorf("shells %v wait at their gate while a runs: b, a user: task, got a spare", g)
	}
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
	named := map[string]bool{}
	for _, ev := range homeEvents(t, home) {
		if ev.Type == journal.TaskStarted {
			named[filepath.Base(ev.LogPath)] = true
		}
	}
	for _, f := range runLogFiles(t, home, "spareuser") {
		if !named[f] { // b's start may have been committed as the stop came: b.1.log is then its
			t.Errorf("the log directory holds %s after the stop; the journal names %v", f, named)
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

// TestSpareStartInputs: what a task reads when it starts is read when its
// turn comes, not when its shell was forked ahead as the spare, since the
// task that runs before it may change it. At max_parallel 1, task a runs
// while b waits as the spare (or would), then a changes what b reads:
//
//   - secret: a rotates the secret file b's env references; b sees the
//     new value (a secret file is read for each attempt);
//   - workdir-created: a creates b's workdir; b runs in it;
//   - workdir-recreated: a replaces b's workdir by a new directory; b
//     runs in the new one, not in the removed one.
func TestSpareStartInputs(t *testing.T) {
	bin := testBinary(t)
	wait := `while [ ! -e "$T/go" ]; do sleep 0.01; done; `
	tests := []struct {
		name, change, extra, cmd, want string
		mkdir                          bool
	}{
		{"secret", `printf 'new\n' > "$T/tok.tmp"; chmod 600 "$T/tok.tmp"; mv "$T/tok.tmp" "$T/tok"`,
			"env: {TOKEN: \"${secret:tok}\"}", `echo "$TOKEN" >> "$T/ledger"`, "new", false},
		{"workdir-created", `mkdir "$T/w"; echo made > "$T/w/m"`,
			"", `cat m >> "$T/ledger"`, "made", false},
		{"workdir-recreated", `rm -rf "$T/w"; mkdir "$T/w"; echo remade > "$T/w/m"`,
			"", `cat m >> "$T/ledger"`, "remade", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			home := filepath.Join(dir, "home")
			if err := os.MkdirAll(home, 0o750); err != nil {
				t.Fatal(err)
			}
			tok := filepath.Join(dir, "tok")
			cfg := "secrets:\n  tok: {file: " + tok + "}\n"
			for p, s := range map[string]string{tok: "old\n", filepath.Join(home, "config.yaml"): cfg} {
				if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tc.mkdir {
				if err := os.Mkdir(filepath.Join(dir, "w"), 0o750); err != nil {
					t.Fatal(err)
				}
			}
			b := "{command: " + strconv.Quote(tc.cmd) + "}"
			if tc.extra == "" {
				b = "{command: " + strconv.Quote(tc.cmd) + ", workdir: " + strconv.Quote(filepath.Join(dir, "w")) + "}"
			}
			src := "name: spareinputs\nenv: {T: " + strconv.Quote(dir) + "}\nconfig: {max_parallel: 1}\ntasks:\n" +
				"  - {name: a, type: shell, config: {command: " + strconv.Quote(wait+tc.change) + "}}\n" +
				"  - name: b\n    type: shell\n    config: " + b + "\n    " + tc.extra + "\n"
			file := filepath.Join(dir, "spareinputs.yaml")
			if err := os.WriteFile(file, []byte(src), 0o640); err != nil {
				t.Fatal(err)
			}
			c := start(t, bin, "run", "--home", home, file)
			// a waits for go: let b's spare, if there is one, start first
			// (it is forked in the turn that launched a; half a second at
			// most for one that never comes).
			c.waitFor(t, "a to start", func() bool { return len(processesWithEnv("PICOFLOW_TASK=a")) > 0 })
			for range 50 {
				if len(gatedShells(dir)) > 0 {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o640); err != nil {
				t.Fatal(err)
			}
			if code := c.wait(t); code != ExitOK {
				t.Fatalf("exit %d, want 0\n%s%s", code, &c.stdout, &c.stderr)
			}
			if got := readLedger(t, dir); !slices.Equal(got, []string{tc.want}) {
				t.Errorf("b read %v, want [%s]", got, tc.want)
			}
		})
	}
}

// TestSpareStaleKeepsLog: a spare that waited too long (engine spareFresh,
// 200 ms) is dismissed when its turn comes and the task starts in a new
// shell, with the same log path: the dismissed spare's clean-up must not
// remove the new attempt's log. Three times over: a1 waits for go1 while
// b1 is the spare, and so on; each b prints a line and fails, so its log
// is kept.
func TestSpareStaleKeepsLog(t *testing.T) {
	bin := testBinary(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	var specs []spec
	for k := 1; k <= 3; k++ {
		specs = append(specs,
			spec{name: fmt.Sprintf("a%d", k), cmd: fmt.Sprintf(`while [ ! -e "$T/go%d" ]; do sleep 0.01; done`, k)},
			spec{name: fmt.Sprintf("b%d", k), cmd: fmt.Sprintf("echo out of b%d; exit 1", k)})
	}
	file := writeWorkflow(t, dir, "sparestale", "{max_parallel: 1}", specs...)
	c := start(t, bin, "run", "--home", home, file)
	for k := 1; k <= 3; k++ {
		waitSpare(t, c, dir)
		time.Sleep(300 * time.Millisecond) // what is measured: the spare outlives its freshness
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("go%d", k)), nil, 0o640); err != nil {
			t.Fatal(err)
		}
		c.waitFor(t, fmt.Sprintf("b%d to end", k), func() bool { return strings.Contains(c.stdout.String(), fmt.Sprintf("FAIL   b%d", k)) })
	}
	if code := c.wait(t); code != ExitFailed {
		t.Fatalf("exit %d, want %d\n%s%s", code, ExitFailed, &c.stdout, &c.stderr)
	}
	for k := 1; k <= 3; k++ {
		r := picoflow(t, "logs", "--home", home, "sparestale", fmt.Sprintf("b%d", k))
		if want := fmt.Sprintf("out of b%d\n", k); r.code != ExitOK || r.stdout != want {
			t.Errorf("logs b%d: exit %d, %q, want %q\n%s", k, r.code, r.stdout, want, r.stderr)
		}
	}
}
