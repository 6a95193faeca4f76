package cli

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/picoflow/picoflow/journal"
)

// The head start (engine/headstart.go), attacked from outside the
// process: `picoflow run FILE` starts the first root task's shell before
// it holds and replays the workflow's journal; the shell waits at its gate
// and its log is an unnamed file in HOME/logs/WF until the run's
// directory exists.
//
// The tests hold picoflow between the head start and the journal's open
// without a sleep: a home whose layout conversion looks under way (its
// .journal-v2.tmp exists) makes picoflow take HOME/upgrade.lock first,
// which the test holds; picoflow waits for it (cli/upgrade.go). The
// test lets go once it has seen the head start's shell at its gate and
// done what it attacks with, and removes the marker first: picoflow then
// finds the conversion done by another writer and goes on.

// startHold holds a home's picoflow runs before they hold their journal.
type startHold struct {
	tmp  string
	lock *os.File
}

func holdStart(t *testing.T, home string) *startHold {
	t.Helper()
	h := &startHold{tmp: filepath.Join(home, ".journal-v2.tmp")}
	if err := os.Mkdir(h.tmp, 0o750); err != nil {
		t.Fatal(err)
	}
	lock, err := journal.LockFile(filepath.Join(home, "upgrade.lock"), "test")
	if err != nil {
		t.Fatal(err)
	}
	h.lock = lock
	t.Cleanup(h.release)
	return h
}

// release lets the held runs go on (the marker first: they find the
// conversion done).
func (h *startHold) release() {
	if h.lock == nil {
		return
	}
	_ = os.Remove(h.tmp)
	h.lock.Close()
	h.lock = nil
}

// headShell waits for the head start of c, a picoflow run held by a
// startHold: the one shell of the tasks that see dir as $T at its gate,
// of task, with an unnamed log file open in picoflow in wfLogs (the
// workflow's log directory). It returns the shell's pid and run id.
func headShell(t *testing.T, c *child, dir, task, wfLogs string) (int, string) {
	t.Helper()
	pid := waitSpare(t, c, dir)
	env := procEnv(pid)
	if env["PICOFLOW_TASK"] != task {
		t.Fatalf("the shell at its gate is of task %q, want the first root task %q", env["PICOFLOW_TASK"], task)
	}
	if n := unnamedIn(c.cmd.Process.Pid, wfLogs); n != 1 {
		t.Errorf("picoflow holds %d unnamed file(s) in %s while the head start waits, want its log", n, wfLogs)
	}
	return pid, env["PICOFLOW_RUN_ID"]
}

// procEnv is the environment of pid (empty once it is gone).
func procEnv(pid int) map[string]string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	m := map[string]string{}
	for _, kv := range strings.Split(string(b), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// unnamedIn counts pid's descriptors of unnamed (O_TMPFILE) files in dir:
// /proc shows them as DIR/#INODE (deleted).
func unnamedIn(pid int, dir string) int {
	fds := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, _ := os.ReadDir(fds)
	n := 0
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(fds, e.Name()))
		if err == nil && strings.HasPrefix(l, dir+"/#") && strings.HasSuffix(l, " (deleted)") {
			n++
		}
	}
	return n
}

// gone waits (ten seconds at most) until pid has exited.
func gone(t *testing.T, pid int, what string) {
	t.Helper()
	c := &child{done: make(chan struct{})} // never exits: waitFor only polls
	c.waitFor(t, what, func() bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		return err != nil || strings.Contains(string(b), ") Z ")
	})
}

// logTree lists every path under HOME/logs.
func logTree(t *testing.T, home string) []string {
	t.Helper()
	root := filepath.Join(home, "logs")
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		out = append(out, strings.TrimPrefix(p, root))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkLogDir: HOME/logs/WF holds only directories of runs the journal
// holds, each with only the logs (and outputs) of attempts whose start the
// journal holds.
func checkLogDir(t *testing.T, home, wf string) {
	t.Helper()
	runs := map[string]bool{}
	named := map[string]bool{}
	for _, ev := range homeEvents(t, home) {
		switch ev.Type {
		case journal.RunStarted:
			runs[ev.Run] = true
		case journal.TaskStarted:
			named[ev.LogPath] = true
			named[strings.TrimSuffix(ev.LogPath, ".log")+".out"] = true
		}
	}
	dir := filepath.Join(home, "logs", wf)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.IsDir() || !runs[e.Name()] {
			t.Errorf("%s holds %s (dir %v), which is no run the journal holds", dir, e.Name(), e.IsDir())
			continue
		}
		files, _ := os.ReadDir(filepath.Join(dir, e.Name()))
		for _, f := range files {
			if p := filepath.Join(dir, e.Name(), f.Name()); !named[p] {
				t.Errorf("%s: no task_started names it", p)
			}
		}
	}
}

// runOK runs file to its end and wants exit 0; it returns the run's id.
func runOK(t *testing.T, bin, home string, args ...string) string {
	t.Helper()
	c := start(t, bin, append([]string{"run", "--home", home}, args...)...)
	if code := c.wait(t); code != ExitOK {
		t.Fatalf("picoflow run %v: exit %d\n%s%s", args, code, &c.stdout, &c.stderr)
	}
	m := runIDRe.FindStringSubmatch(c.stdout.String())
	if m == nil {
		return ""
	}
	return m[1]
}

// journaledRun reports whether the journal holds a run_started of id.
func journaledRun(t *testing.T, home, id string) bool {
	for _, ev := range homeEvents(t, home) {
		if ev.Type == journal.RunStarted && ev.Run == id {
			return true
		}
	}
	return false
}

// TestHeadStartResume: the next run after an interrupted one resumes it;
// its head start (a new run's first task, whose ledger line shows it ran)
// is dismissed unrun, leaves no shell, and nothing of it stays in the
// workflow's log directory. Three rounds: the first held at the head
// start (so it certainly waits there), the others at full speed.
func TestHeadStartResume(t *testing.T) {
	bin := testBinary(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file := writeWorkflow(t, dir, "hsresume", "",
		spec{name: "a", cmd: ledger("a")},
		spec{name: "b", deps: []string{"a"}, cmd: `echo $$ > "$T/pgid"; [ -e "$T/again" ] && exit 0; exec sleep 120`})
	again := filepath.Join(dir, "again")
	for round := range 3 {
		_ = os.Remove(again)
		_ = os.Remove(filepath.Join(dir, "pgid"))
		id := killedRun(t, bin, home, file, filepath.Join(dir, "pgid"))
		if got := readLedger(t, dir); len(got) != round+1 {
			t.Fatalf("round %d: ledger %v after the killed run, want %d lines", round, got, round+1)
		}
		if err := os.WriteFile(again, nil, 0o640); err != nil {
			t.Fatal(err)
		}
		var hold *startHold
		if round == 0 {
			hold = holdStart(t, home)
		}
		c := start(t, bin, "run", "--home", home, file)
		hsID := ""
		if hold != nil {
			var pid int
			pid, hsID = headShell(t, c, dir, "a", filepath.Join(home, "logs", "hsresume"))
			hold.release()
			defer gone(t, pid, "the dismissed head start's shell to exit")
		}
		if code := c.wait(t); code != ExitOK {
			t.Fatalf("round %d: resume: exit %d\n%s%s", round, code, &c.stdout, &c.stderr)
		}
		if !strings.Contains(c.stdout.String(), "resuming run "+id) {
			t.Errorf("round %d: run did not resume %s:\n%s", round, id, &c.stdout)
		}
		if got := readLedger(t, dir); len(got) != round+1 {
			t.Errorf("round %d: ledger %v after the resume, want %d lines (a ran once per killed run)", round, got, round+1)
		}
		noneLeft(t, dir, "after the resume")
		if hsID != "" {
			if _, err := os.Stat(filepath.Join(home, "logs", "hsresume", hsID)); !os.IsNotExist(err) {
				t.Errorf("the head start's run %s has a log directory (%v)", hsID, err)
			}
			if journaledRun(t, home, hsID) {
				t.Errorf("the head start's run %s was journaled", hsID)
			}
		}
		checkLogDir(t, home, "hsresume")
	}
}

// TestHeadStartLocked: a second `picoflow run` of a workflow another
// process runs exits 5; its head start's shell never runs, is gone once
// picoflow has exited, and nothing new is in HOME/logs.
func TestHeadStartLocked(t *testing.T) {
	bin := testBinary(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	goFile := filepath.Join(dir, "go")
	file := writeWorkflow(t, dir, "hslocked", "",
		spec{name: "a", cmd: `echo a >> "$T/ledger"; while [ ! -e "$T/go" ]; do sleep 0.01; done`})
	if err := os.WriteFile(goFile, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	runOK(t, bin, home, file) // HOME/logs/hslocked exists: the next runs have a head start
	if err := os.Remove(goFile); err != nil {
		t.Fatal(err)
	}
	c1 := start(t, bin, "run", "--home", home, file)
	c1.waitFor(t, "a running", func() bool { return len(readLedger(t, dir)) == 2 })
	c1.waitFor(t, "the run's line", func() bool { return runIDRe.MatchString(c1.stdout.String()) })
	id1 := runIDOf(t, c1.stdout.String())
	tree := logTree(t, home)
	onlyFirst := func(when string) {
		t.Helper()
		for _, p := range processesWithEnv("T=" + dir) {
			if r := procEnv(p)["PICOFLOW_RUN_ID"]; r != "" && r != id1 {
				t.Errorf("%s: process %d of run %s is alive; only run %s runs", when, p, r, id1)
			}
		}
	}
	for round := range 3 {
		var hold *startHold
		if round == 0 {
			hold = holdStart(t, home)
		}
		c2 := start(t, bin, "run", "--home", home, file)
		pid := 0
		if hold != nil {
			pid, _ = headShell(t, c2, dir, "a", filepath.Join(home, "logs", "hslocked"))
			hold.release()
		}
		if code := c2.wait(t); code != ExitLocked {
			t.Fatalf("round %d: second run: exit %d, want %d\n%s%s", round, code, ExitLocked, &c2.stdout, &c2.stderr)
		}
		if pid != 0 {
			gone(t, pid, "the head start's shell to exit")
		}
		onlyFirst("after the second run exited")
		if got := readLedger(t, dir); len(got) != 2 {
			t.Errorf("round %d: ledger %v, want 2 lines (the head start's shell ran?)", round, got)
		}
		if now := logTree(t, home); !slices.Equal(now, tree) {
			t.Errorf("round %d: HOME/logs changed\nbefore %v\nafter  %v", round, tree, now)
		}
	}
	if err := os.WriteFile(goFile, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if code := c1.wait(t); code != ExitOK {
		t.Fatalf("first run: exit %d\n%s%s", code, &c1.stdout, &c1.stderr)
	}
	checkLogDir(t, home, "hslocked")
}

// TestHeadStartKill9: picoflow killed with -9 while its head start waits
// at its gate (held before the journal): the shell exits unrun, nothing
// stays in HOME/logs (the unnamed log goes with the last descriptor), no
// run was journaled, and the next run runs the task once.
func TestHeadStartKill9(t *testing.T) {
	bin := testBinary(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file := writeWorkflow(t, dir, "hskill", "", spec{name: "a", cmd: ledger("a")})
	runOK(t, bin, home, file)
	tree := logTree(t, home)
	hold := holdStart(t, home)
	c := start(t, bin, "run", "--home", home, file)
	pid, hsID := headShell(t, c, dir, "a", filepath.Join(home, "logs", "hskill"))
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	c.wait(t)
	gone(t, pid, "the head start's shell to exit")
	noneLeft(t, dir, "after kill -9")
	leftNothing(t, home, dir, hsID, tree, 1)
	hold.release()
	runOK(t, bin, home, file)
	if got := readLedger(t, dir); len(got) != 2 {
		t.Errorf("ledger %v after the next run, want 2 lines", got)
	}
	checkLogDir(t, home, "hskill")
}

// TestHeadStartSignal: SIGINT while the head start waits (held before
// the journal): once, picoflow exits 3 once let go, having started
// nothing; twice, it exits 130 at once. Either way the task never ran,
// no process and no file of the head start stays, and the next run runs
// the task once.
func TestHeadStartSignal(t *testing.T) {
	bin := testBinary(t)
	for _, tc := range []struct {
		name  string
		twice bool
		want  int
	}{{"once", false, ExitInterrupted}, {"twice", true, ExitForced}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			home := filepath.Join(dir, "home")
			file := writeWorkflow(t, dir, "hssig", "", spec{name: "a", cmd: ledger("a")})
			runOK(t, bin, home, file)
			tree := logTree(t, home)
			hold := holdStart(t, home)
			c := start(t, bin, "run", "--home", home, file)
			pid, hsID := headShell(t, c, dir, "a", filepath.Join(home, "logs", "hssig"))
			if err := c.cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			c.waitFor(t, "the graceful stop notice", func() bool { return strings.Contains(c.stderrText(), "stopping gracefully") })
			if tc.twice {
				if err := c.cmd.Process.Signal(syscall.SIGINT); err != nil {
					t.Fatal(err)
				}
			} else {
				hold.release()
			}
			if code := c.wait(t); code != tc.want {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.want, &c.stdout, &c.stderr)
			}
			hold.release()
			gone(t, pid, "the head start's shell to exit")
			noneLeft(t, dir, "after the signal")
			leftNothing(t, home, dir, hsID, tree, 1)
			runOK(t, bin, home, file)
			if got := readLedger(t, dir); len(got) != 2 {
				t.Errorf("ledger %v after the next run, want 2 lines", got)
			}
			checkLogDir(t, home, "hssig")
		})
	}
}

// leftNothing checks what a dismissed head start of run hsID leaves: the
// ledger has want lines (its task did not run), HOME/logs is the tree it
// was before, and no journal entry names the run.
func leftNothing(t *testing.T, home, dir, hsID string, tree []string, want int) {
	t.Helper()
	if got := readLedger(t, dir); len(got) != want {
		t.Errorf("ledger %v, want %d line(s) (the head start ran?)", got, want)
	}
	if now := logTree(t, home); !slices.Equal(now, tree) {
		t.Errorf("HOME/logs changed\nbefore %v\nafter  %v", tree, now)
	}
	if journaledRun(t, home, hsID) {
		t.Errorf("the head start's run %s was journaled", hsID)
	}
}
