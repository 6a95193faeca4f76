package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testSecondSignalForces stops a run with one signal and forces its exit
// with a second, in each order with a SIGTERM in it (two SIGINTs:
// testForcedExit): a user who runs kill PID twice gets what Ctrl-C twice
// gives. The exit is 130, the task's process group is killed and named,
// the run stays interrupted and the next run resumes it. While picoflow
// waits in the grace it uses (almost) no CPU, and under --log-format json
// its notices are JSON.
func testSecondSignalForces(t *testing.T, bin string) {
	for _, tc := range []struct {
		name          string
		first, second syscall.Signal
	}{
		{"term-term", syscall.SIGTERM, syscall.SIGTERM},
		{"int-term", syscall.SIGINT, syscall.SIGTERM},
		{"term-int", syscall.SIGTERM, syscall.SIGINT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			home := filepath.Join(dir, "home")
			cmd := `[ -e "$T/again" ] && exit 0; echo $$ > "$T/pgid"; exec sleep 120`
			file := writeWorkflow(t, dir, "twice", "", spec{name: "wait", cmd: cmd}, spec{name: "after", cmd: "true", deps: []string{"wait"}})
			c := start(t, bin, "run", "--home", home, "--grace", "60s", "--log-format", "json", file)
			pgid := c.taskGroup(t, filepath.Join(dir, "pgid"))
			c.waitFor(t, "the run's id", func() bool { return strings.Contains(c.stderrText(), `"run":"`) })
			sent := time.Now()
			if err := c.cmd.Process.Signal(tc.first); err != nil {
				t.Fatal(err)
			}
			c.waitFor(t, "the graceful stop notice", func() bool { return strings.Contains(c.stderrText(), "stopping gracefully") })
			if tc.second == syscall.SIGTERM && tc.first == syscall.SIGTERM {
				before := cpuTicks(t, c.cmd.Process.Pid)
				time.Sleep(2 * time.Second) // a measuring window (and past termEcho since the first), not a synchronisation
				if used := cpuTicks(t, c.cmd.Process.Pid) - before; used > 40 {
					t.Errorf("picoflow used %d CPU ticks (1/100 s) in 2 s of grace: a busy loop", used)
				}
				if time.Since(sent) <= termEcho {
					t.Fatalf("the measuring window ended within termEcho (%v)", termEcho)
				}
			}
			if err := c.cmd.Process.Signal(tc.second); err != nil {
				t.Fatal(err)
			}
			if code := c.wait(t); code != ExitForced {
				t.Fatalf("exit %d after %v then %v, want %d\n--- stderr\n%s", code, tc.first, tc.second, ExitForced, &c.stderr)
			}
			if want := "killed 1 task process group(s) (SIGKILL to pgid " + strconv.Itoa(pgid) + ")"; !strings.Contains(c.stderr.String(), want) {
				t.Errorf("stderr does not say %q:\n%s", want, &c.stderr)
			}
			waitGroupGone(t, pgid)
			for _, l := range strings.Split(c.stderr.String(), "\n") {
				if (strings.Contains(l, "stopping") || strings.Contains(l, "forced")) && !json.Valid([]byte(l)) {
					t.Errorf("under --log-format json a signal notice is not JSON: %s", l)
				}
			}
			m := regexp.MustCompile(`"run":"([^"]+)"`).FindStringSubmatch(c.stderr.String()) // --log-format json
			if m == nil {
				t.Fatalf("no run id in\n%s", &c.stderr)
			}
			id := m[1]
			if h := historyRun(t, home, id); h.Status != "interrupted" {
				t.Errorf("after a forced exit the run is %q, want interrupted", h.Status)
			}
			if err := os.WriteFile(filepath.Join(dir, "again"), nil, 0o640); err != nil {
				t.Fatal(err)
			}
			again := start(t, bin, "run", "--home", home, file)
			if code := again.wait(t); code != ExitOK || !strings.Contains(again.stdout.String(), "resuming run "+id) {
				t.Fatalf("the run after the forced exit: exit %d, want %d resuming %s\n%s%s", code, ExitOK, id, &again.stdout, &again.stderr)
			}
		})
	}
}

// testTimeoutEcho runs picoflow under GNU timeout and stops timeout with
// SIGTERM, as a service manager or a user would: timeout passes the signal
// to picoflow, then to its whole process group, so picoflow may get it
// twice at once (the kernel merges the two when the first is still
// pending). That echo must not force: the running task ends within the
// grace and the exit is 3. Then the echo made certain: a second SIGTERM
// sent as soon as picoflow said it stops (well within termEcho) is taken
// as the echo, not as a request to force.
func testTimeoutEcho(t *testing.T, bin string) {
	if _, err := exec.LookPath("timeout"); err != nil {
		t.Skip("GNU timeout is not installed")
	}
	for try := 0; try < 3; try++ {
		c, release := startWaiting(t, "timeout", "600", bin)
		if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil { // timeout's pid
			t.Fatal(err)
		}
		c.waitFor(t, "the graceful stop notice", func() bool { return strings.Contains(c.stderrText(), "stopping gracefully") })
		release()
		if code := c.wait(t); code != ExitInterrupted {
			t.Fatalf("try %d: exit %d after timeout forwarded SIGTERM, want %d\n--- stderr\n%s", try, code, ExitInterrupted, &c.stderr)
		}
	}
	for try := 0; ; try++ {
		c, release := startWaiting(t, bin)
		sent := time.Now()
		if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		c.waitFor(t, "the graceful stop notice", func() bool { return strings.Contains(c.stderrText(), "stopping gracefully") })
		if time.Since(sent) > termEcho/4 { // too late to be sure picoflow gets the second within termEcho
			if try < 5 {
				release()
				c.wait(t)
				continue
			}
			t.Fatalf("picoflow took over %v to notice SIGTERM, 6 times", termEcho/4)
		}
		if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		c.waitFor(t, "the echo notice", func() bool { return strings.Contains(c.stderrText(), "the echo of the first SIGTERM") })
		release()
		if code := c.wait(t); code != ExitInterrupted {
			t.Fatalf("exit %d after a SIGTERM and its echo, want %d\n--- stderr\n%s", code, ExitInterrupted, &c.stderr)
		}
		return
	}
}

// startWaiting starts argv... run FILE, FILE a workflow whose first task
// waits for release (called once the test is done with it) and whose
// second depends on it, and waits for the first task to run.
func startWaiting(t *testing.T, argv ...string) (*child, func()) {
	t.Helper()
	dir := t.TempDir()
	wait := `touch "$T/started"; i=0; while [ ! -e "$T/release" ]; do i=$((i+1)); [ $i -lt 2000 ] || exit 1; sleep 0.02; done`
	file := writeWorkflow(t, dir, "echo", "", spec{name: "wait", cmd: wait}, spec{name: "after", cmd: "true", deps: []string{"wait"}})
	args := append(argv[1:], "run", "--home", filepath.Join(dir, "home"), "--grace", "60s", file)
	c := start(t, argv[0], args...)
	c.waitFor(t, "the task to start", exists(filepath.Join(dir, "started")))
	return c, func() {
		if err := os.WriteFile(filepath.Join(dir, "release"), nil, 0o640); err != nil {
			t.Fatal(err)
		}
	}
}

// testForcedExit forces an exit with a second SIGINT while a task runs: the
// exit is 130, picoflow says it killed the task's process group, and no
// process of that group is left.
func testForcedExit(t *testing.T, bin string) {
	dir := t.TempDir()
	file := writeWorkflow(t, dir, "forced", "", spec{name: "long", cmd: `echo $$ > "$T/pgid"; sleep 120; sleep 120`})
	c := start(t, bin, "run", "--home", filepath.Join(dir, "home"), "--grace", "60s", file)
	pgid := c.taskGroup(t, filepath.Join(dir, "pgid"))
	if err := c.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "the graceful stop notice", func() bool { return strings.Contains(c.stderrText(), "stopping gracefully") })
	if err := c.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t); code != ExitForced {
		t.Fatalf("exit %d after two SIGINTs, want %d\n--- stderr\n%s", code, ExitForced, &c.stderr)
	}
	if want := "killed 1 task process group(s) (SIGKILL to pgid " + strconv.Itoa(pgid) + ")"; !strings.Contains(c.stderr.String(), want) {
		t.Errorf("stderr does not say %q:\n%s", want, &c.stderr)
	}
	waitGroupGone(t, pgid)
	// The kill is not journaled as the task's outcome: the run stays
	// interrupted, for resume (it used to race to "failed").
	if h := historyRun(t, filepath.Join(dir, "home"), runIDOf(t, c.stdout.String())); h.Status != "interrupted" {
		t.Errorf("after a forced exit the run is %q, want interrupted", h.Status)
	}
}

// testFreshKillsLeftovers kills picoflow with -9 while a task runs, then
// abandons the run with run --fresh: the leftover task process is killed
// before the new run starts, so two copies never run at once.
func testFreshKillsLeftovers(t *testing.T, bin string) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	cmd := `if [ -e "$T/second" ]; then exit 0; fi; echo $$ > "$T/pgid"; exec sleep 120`
	file := writeWorkflow(t, dir, "fresh", "", spec{name: "long", cmd: cmd, extra: "idempotent: false"})
	c := start(t, bin, "run", "--home", home, file)
	pgid := c.taskGroup(t, filepath.Join(dir, "pgid"))
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	c.wait(t)
	if err := os.WriteFile(filepath.Join(dir, "second"), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	again := start(t, bin, "run", "--home", home, "--fresh", file)
	if code := again.wait(t); code != ExitOK {
		t.Fatalf("run --fresh: exit %d\n%s%s", code, &again.stdout, &again.stderr)
	}
	if !strings.Contains(again.stdout.String(), "killed 1 leftover process group(s)") {
		t.Errorf("run --fresh does not say it killed the leftover:\n%s", &again.stdout)
	}
	waitGroupGone(t, pgid)
}

// taskGroup waits for a task to write its process group id ($$ of the
// task's shell) into path, and kills that group when the test ends.
func (c *child) taskGroup(t *testing.T, path string) int {
	t.Helper()
	c.waitFor(t, "the task to start", func() bool { b, _ := os.ReadFile(path); return strings.HasSuffix(string(b), "\n") })
	b, _ := os.ReadFile(path)
	pgid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL) })
	return pgid
}

// cpuTicks is utime+stime of pid.
func cpuTicks(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	_, cpu, _, ok := parseStat(b)
	if !ok {
		t.Fatalf("cannot parse %s", b)
	}
	return cpu
}

// waitGroupGone waits until no live (non-zombie) process is in the group.
func waitGroupGone(t *testing.T, pgid int) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if !groupAlive(pgid) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process group %d still runs", pgid)
}

func groupAlive(pgid int) bool {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if state, _, pg, ok := parseParent(b); ok && pg == pgid && state != 'Z' {
			return true
		}
	}
	return false
}
