package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBinary builds the real picoflow binary once and runs it as a child
// process: signals, a second process, and kill -9.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "picoflow")
	build := exec.Command("go", "build", "-o", bin, "./cmd/picoflow")
	build.Dir = ".." // the module root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Run("sigterm-finishes-task-and-resumes", func(t *testing.T) { t.Parallel(); testSIGTERM(t, bin) })
	t.Run("second-run-refused", func(t *testing.T) { t.Parallel(); testSecondRun(t, bin) })
	t.Run("secrets-never-written", func(t *testing.T) { t.Parallel(); testSecretsNeverWritten(t, bin) })
	t.Run("second-signal-forces", func(t *testing.T) { t.Parallel(); testSecondSignalForces(t, bin) })
	t.Run("timeout-echo-does-not-force", func(t *testing.T) { t.Parallel(); testTimeoutEcho(t, bin) })
	t.Run("forced-exit-kills-tasks", func(t *testing.T) { t.Parallel(); testForcedExit(t, bin) })
	t.Run("signal-while-starting", func(t *testing.T) { t.Parallel(); testSignalWhileStarting(t, bin) })
	t.Run("fresh-kills-leftovers", func(t *testing.T) { t.Parallel(); testFreshKillsLeftovers(t, bin) })
	t.Run("cancel-foreground", func(t *testing.T) { t.Parallel(); testCancelForeground(t, bin) })
	t.Run("cancel-grace", func(t *testing.T) { t.Parallel(); testCancelGrace(t, bin) })
	t.Run("cancel-signal", func(t *testing.T) { t.Parallel(); testCancelSignal(t, bin) })
	t.Run("kill-9-during-handler", func(t *testing.T) { t.Parallel(); testKillDuringHandler(t, bin) })
	t.Run("kill-9-during-cancel", func(t *testing.T) { t.Parallel(); testKillDuringCancel(t, bin) })
	t.Run("kill-9-keeps-log", func(t *testing.T) { t.Parallel(); testKillKeepsLog(t, bin) })
	t.Run("inherited-fds-not-passed", func(t *testing.T) { t.Parallel(); testInheritedFds(t, bin) })
	t.Run("torture-kill-9", func(t *testing.T) { testTorture(t, bin) })
	t.Run("concurrent-workflows-kill-9", func(t *testing.T) { testConcurrentWorkflows(t, bin) })
	t.Run("gate-ledger-kill-9", func(t *testing.T) { testGateLedger(t, bin) })
}

// child is a picoflow process started by a test.
type child struct {
	cmd            *exec.Cmd
	stdout, stderr dmnBuffer // read while the child writes
	done           chan struct{}
	err            error
}

func (c *child) stderrText() string { return c.stderr.String() }

func start(t *testing.T, bin string, args ...string) *child {
	t.Helper()
	return startEnv(t, bin, nil, args...)
}

// startEnv is start with more environment variables ("KEY=VALUE").
func startEnv(t *testing.T, bin string, env []string, args ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
	c.cmd.Env = append(append(os.Environ(), "PICOFLOW_HOME=", "PICOFLOW_CONFIG="), env...)
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.done
	})
	return c
}

// exited reports whether the child has exited, without waiting.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// wait waits for the child's exit, at most a minute, and returns its code
// (-1 when a signal killed it).
func (c *child) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		t.Fatalf("picoflow did not exit\n--- stdout\n%s--- stderr\n%s", &c.stdout, &c.stderr)
	}
	var ee *exec.ExitError
	if errors.As(c.err, &ee) {
		return ee.ExitCode()
	}
	if c.err != nil {
		t.Fatal(c.err)
	}
	return 0
}

// waitFor polls until cond holds or the child exits, at most 20 seconds.
func (c *child) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 4000; i++ {
		if cond() {
			return
		}
		if c.exited() {
			t.Fatalf("picoflow exited before %s\n--- stdout\n%s--- stderr\n%s", what, &c.stdout, &c.stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func exists(path string) func() bool {
	return func() bool { _, err := os.Stat(path); return err == nil }
}

var runIDRe = regexp.MustCompile(`run (\S+) of \S+ started`)

// testSIGTERM stops a run with SIGTERM while a 3-second task runs: the task
// finishes within --grace, picoflow exits 3, and the next run resumes the
// run without running a finished task again.
func testSIGTERM(t *testing.T, bin string) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file := writeWorkflow(t, dir, "term", "{max_parallel: 1}",
		spec{name: "first", cmd: ledger("first")},
		spec{name: "slow", cmd: `touch "$T/slow.started"; sleep 3; ` + ledger("slow"), deps: []string{"first"}},
		spec{name: "last", cmd: ledger("last"), deps: []string{"slow"}})
	c := start(t, bin, "run", "--home", home, "--grace", "10s", file)
	c.waitFor(t, "the slow task to start", exists(filepath.Join(dir, "slow.started")))
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t); code != ExitInterrupted {
		t.Fatalf("exit %d after SIGTERM, want %d\n--- stdout\n%s--- stderr\n%s", code, ExitInterrupted, &c.stdout, &c.stderr)
	}
	if !strings.Contains(c.stdout.String(), "ok     slow") || !strings.Contains(c.stderr.String(), "stopping gracefully") {
		t.Errorf("the slow task did not finish within the grace period\n--- stdout\n%s--- stderr\n%s", &c.stdout, &c.stderr)
	}
	if got := readLedger(t, dir); !slices.Equal(got, []string{"first", "slow"}) {
		t.Errorf("after SIGTERM the ledger is %v, want [first slow]", got)
	}
	m := runIDRe.FindStringSubmatch(c.stdout.String())
	if m == nil {
		t.Fatalf("no run id in\n%s", &c.stdout)
	}

	again := start(t, bin, "run", "--home", home, file)
	if code := again.wait(t); code != ExitOK {
		t.Fatalf("re-run: exit %d\n%s%s", code, &again.stdout, &again.stderr)
	}
	if want := fmt.Sprintf("resuming run %s (2 of 3 tasks already done)", m[1]); !strings.Contains(again.stdout.String(), want) {
		t.Errorf("re-run does not say %q:\n%s", want, &again.stdout)
	}
	if got := readLedger(t, dir); !slices.Equal(got, []string{"first", "slow", "last"}) {
		t.Errorf("ledger %v, want each task once", got)
	}
}

// testSecondRun checks that while picoflow runs a workflow, a second
// `run` of it is refused with exit 5 and a message naming the process that
// holds it, while a run of another workflow in the same home goes ahead.
func testSecondRun(t *testing.T, bin string) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	hold := `touch "$T/held"; i=0; while [ ! -e "$T/release" ]; do i=$((i+1)); [ $i -lt 6000 ] || exit 1; sleep 0.01; done`
	file := writeWorkflow(t, dir, "hold", "", spec{name: "hold", cmd: hold})
	other := writeWorkflow(t, dir, "other", "", spec{name: "x", cmd: ledger("other")})
	c := start(t, bin, "run", "--home", home, file)
	c.waitFor(t, "the task to hold", exists(filepath.Join(dir, "held")))
	pid := "pid " + strconv.Itoa(c.cmd.Process.Pid)

	tests := []struct {
		name string
		file string
		want []string
		code int
	}{
		{name: "same-workflow", file: file, code: ExitLocked, want: []string{"workflow hold is already running in " + pid, "refusing"}},
		{name: "other-workflow", file: other, code: ExitOK, want: nil},
	}
	for _, tc := range tests {
		res := picoflow(t, "run", "--home", home, tc.file)
		if res.code != tc.code {
			t.Errorf("%s: got %s\nwant exit %d", tc.name, res, tc.code)
		}
		for _, w := range tc.want {
			if !strings.Contains(res.stderr, w) {
				t.Errorf("%s: stderr does not say %q:\n%s", tc.name, w, res.stderr)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "release"), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t); code != ExitOK {
		t.Fatalf("the first run: exit %d\n%s%s", code, &c.stdout, &c.stderr)
	}
	if res := picoflow(t, "run", "--home", home, other); res.code != ExitOK {
		t.Errorf("once the first run ended: %s", res)
	}
}
