package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// TestDaemonBinary runs the real binary as a daemon: signals, a second
// daemon, picoflow run and trigger against it.
func TestDaemonBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "picoflow")
	build := exec.Command("go", "build", "-o", bin, "./cmd/picoflow")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Run("sighup-keeps-good-version", func(t *testing.T) { t.Parallel(); testDaemonSIGHUP(t, bin) })
	t.Run("single-instance-run-and-trigger", func(t *testing.T) { t.Parallel(); testDaemonRefusals(t, bin) })
	t.Run("sigterm-while-task-runs", func(t *testing.T) { t.Parallel(); testDaemonSIGTERM(t, bin) })
	t.Run("run-and-resolve-beside", func(t *testing.T) { t.Parallel(); testDaemonBeside(t, bin) })
	t.Run("gc-beside", func(t *testing.T) { t.Parallel(); testDaemonGC(t, bin) })
	t.Run("cancel", func(t *testing.T) { t.Parallel(); testDaemonCancel(t, bin) })
	t.Run("cancel-grace", func(t *testing.T) { t.Parallel(); testDaemonCancelGrace(t, bin) })
	t.Run("forced-exit", func(t *testing.T) { t.Parallel(); testDaemonForcedExit(t, bin, os.Interrupt, os.Interrupt) })
	t.Run("forced-exit-sigterm", func(t *testing.T) {
		t.Parallel()
		testDaemonForcedExit(t, bin, syscall.SIGTERM, syscall.SIGTERM)
	})
	t.Run("long-home", func(t *testing.T) { t.Parallel(); testDaemonLongHome(t, bin) })
	t.Run("ui-token-only-in-config", func(t *testing.T) { t.Parallel(); testDaemonUIToken(t, bin) })
}

// dmnBuffer is an output sink read while the child writes.
type dmnBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *dmnBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *dmnBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// dmnEnv is a daemon test's home and workflows directory.
type dmnEnv struct {
	t         *testing.T
	bin       string
	home, dir string
}

func newDmnEnv(t *testing.T, bin string, files map[string]string) *dmnEnv {
	root := t.TempDir()
	e := &dmnEnv{t: t, bin: bin, home: filepath.Join(root, "home"), dir: filepath.Join(root, "wf")}
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for n, src := range files {
		e.write(n, src)
	}
	return e
}

func (e *dmnEnv) write(name, src string) {
	if err := os.WriteFile(filepath.Join(e.dir, name), []byte(src), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *dmnEnv) command(args ...string) *exec.Cmd {
	cmd := exec.Command(e.bin, args...)
	cmd.Env = append(os.Environ(), "PICOFLOW_HOME="+e.home, "PICOFLOW_CONFIG=", "NOTIFY_SOCKET=")
	return cmd
}

// dmnProc is a running daemon.
type dmnProc struct {
	cmd    *exec.Cmd
	stderr *dmnBuffer
	done   chan struct{}
	code   int
}

// startDaemon starts the daemon, with more flags when given, and waits
// until it is ready.
func (e *dmnEnv) startDaemon(flags ...string) *dmnProc {
	e.t.Helper()
	args := append([]string{"daemon", "--workflows", e.dir, "--poll", "200ms"}, flags...)
	p := &dmnProc{cmd: e.command(args...), stderr: &dmnBuffer{}, done: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		p.code = 0
		if ee, ok := err.(*exec.ExitError); ok {
			p.code = ee.ExitCode()
		}
		close(p.done)
	}()
	e.t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	e.waitFor(20*time.Second, "the daemon to be ready", func() bool { return strings.Contains(p.stderr.String(), "daemon ready") })
	return p
}

// stop sends SIGTERM and returns the exit code.
func (p *dmnProc) stop(t *testing.T) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		t.Fatalf("daemon did not exit after SIGTERM\n%s", p.stderr)
	}
	return p.code
}

// run runs a short command to completion.
func (e *dmnEnv) run(args ...string) (code int, stdout, stderr string) {
	e.t.Helper()
	cmd := e.command(args...)
	var o, er bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &er
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), o.String(), er.String()
	} else if err != nil {
		e.t.Fatal(err)
	}
	return 0, o.String(), er.String()
}

// triggerStarted triggers workflow wf through the daemon and waits until
// its task has created mark; it returns the run id.
func (e *dmnEnv) triggerStarted(wf, mark string) string {
	e.t.Helper()
	code, stdout, stderr := e.run("trigger", wf)
	id := strings.TrimSpace(stdout)
	if code != ExitOK || id == "" {
		e.t.Fatalf("trigger %s: exit %d, %q %s", wf, code, stdout, stderr)
	}
	e.waitFor(20*time.Second, "the task to start", exists(mark))
	return id
}

func (e *dmnEnv) events() []*journal.Event {
	return homeEvents(e.t, e.home)
}

func (e *dmnEnv) count(pred func(*journal.Event) bool) int {
	n := 0
	for _, ev := range e.events() {
		if pred(ev) {
			n++
		}
	}
	return n
}

func (e *dmnEnv) waitFor(timeout time.Duration, what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const dmnQuick = "name: quick\nschedule: \"* * * * * *\"\ntasks:\n  - {name: a, type: shell, config: {command: \"true\"}}\n"

func testDaemonSIGHUP(t *testing.T, bin string) {
	e := newDmnEnv(t, bin, map[string]string{"quick.yaml": dmnQuick})
	p := e.startDaemon()
	fires := func() int {
		return e.count(func(ev *journal.Event) bool { return ev.Type == journal.ScheduleFired && ev.Workflow == "quick" })
	}
	e.waitFor(10*time.Second, "a fire", func() bool { return fires() >= 1 })
	e.write("quick.yaml", "name: quick\nschedule: [broken\n")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	e.waitFor(10*time.Second, "the error to be logged", func() bool {
		return strings.Contains(p.stderr.String(), "invalid workflow file: the previous good version of quick stays in effect")
	})
	n := fires()
	e.waitFor(10*time.Second, "the old definition to keep firing", func() bool { return fires() >= n+2 })
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, p.stderr)
	}
}

const dmnManual = "name: manual\nenv: {WHO: world}\ntasks:\n  - {name: hello, type: shell, config: {command: \"echo hello $WHO\"}}\n"

func testDaemonRefusals(t *testing.T, bin string) {
	e := newDmnEnv(t, bin, map[string]string{"manual.yaml": dmnManual})
	if code, _, stderr := e.run("trigger", "manual"); code != ExitNoDaemon || !strings.Contains(stderr, "no picoflow daemon is running") {
		t.Errorf("trigger without a daemon: exit %d, %s", code, stderr)
	}
	p := e.startDaemon()
	pid := "pid " + strconv.Itoa(p.cmd.Process.Pid)

	code, _, stderr := e.run("daemon", "--workflows", e.dir)
	if code != ExitLocked || !strings.Contains(stderr, pid) {
		t.Errorf("second daemon: exit %d, want %d naming %s: %s", code, ExitLocked, pid, stderr)
	}
	code, _, stderr = e.run("run", filepath.Join(e.dir, "manual.yaml"))
	if code != ExitOK {
		t.Errorf("run of a workflow the daemon does not run now: exit %d, want 0: %s", code, stderr)
	}
	code, stdout, stderr := e.run("trigger", "manual", "--param", "WHO=you")
	id := strings.TrimSpace(stdout)
	if code != 0 || id == "" {
		t.Fatalf("trigger: exit %d, %q %s", code, stdout, stderr)
	}
	e.waitFor(10*time.Second, "the triggered run to finish", func() bool {
		return e.count(func(ev *journal.Event) bool {
			return ev.Type == journal.RunFinished && ev.Run == id && ev.Status == journal.StatusSuccess
		}) == 1
	})
	if code, _, stderr := e.run("trigger", "nope"); code != ExitNotFound {
		t.Errorf("trigger of an unknown workflow: exit %d: %s", code, stderr)
	}
	if code, _, stderr := e.run("trigger", "manual", "--param", "NOPE=1"); code != ExitUsage {
		t.Errorf("trigger with an undeclared param: exit %d: %s", code, stderr)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, p.stderr)
	}
	if code, _, _ := e.run("trigger", "manual"); code != ExitNoDaemon {
		t.Errorf("trigger after the daemon stopped: exit %d, want %d", code, ExitNoDaemon)
	}
}

func testDaemonSIGTERM(t *testing.T, bin string) {
	mark := filepath.Join(t.TempDir(), "started")
	wf := "name: slow\ntasks:\n  - {name: work, type: shell, config: {command: \"touch " + mark + "; sleep 1.5; echo done\"}}\n" +
		"  - {name: after, type: shell, depends_on: [work], config: {command: \"true\"}}\n"
	e := newDmnEnv(t, bin, map[string]string{"slow.yaml": wf})
	p := e.startDaemon()
	id := e.triggerStarted("slow", mark)
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0\n%s", code, p.stderr)
	}
	finishedOK := func(task string) bool {
		return e.count(func(ev *journal.Event) bool {
			return ev.Type == journal.TaskFinished && ev.Run == id && ev.Task == task && ev.Status == journal.StatusSuccess
		}) == 1
	}
	if !finishedOK("work") {
		t.Fatalf("the running task did not finish within the grace\n%s", p.stderr)
	}
	// Not finished: "after" never started. The next daemon resumes it.
	p = e.startDaemon()
	e.waitFor(20*time.Second, "the resumed run to finish", func() bool {
		return e.count(func(ev *journal.Event) bool {
			return ev.Type == journal.RunFinished && ev.Run == id && ev.Status == journal.StatusSuccess
		}) == 1
	})
	if !finishedOK("after") || e.count(func(ev *journal.Event) bool { return ev.Type == journal.TaskStarted && ev.Task == "work" }) != 1 {
		t.Errorf("resume ran the wrong tasks")
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, p.stderr)
	}
}

// testDaemonBeside runs `picoflow run FILE` of a file outside the daemon's
// directory while the daemon runs, and resolves an in-doubt task while a
// run of the same workflow in the daemon holds the workflow's journal: the
// CLI hands the resolution over and reports it as if it wrote it.
func testDaemonBeside(t *testing.T, bin string) {
	mark := filepath.Join(t.TempDir(), "go")
	hold := "name: hold\noverlap: allow\ntasks:\n  - {name: push, type: shell, idempotent: false, config: {command: \"true\"}}\n" +
		"  - {name: wait, type: shell, depends_on: [push], config: {command: \"while [ ! -e " + mark + " ]; do sleep 0.05; done\"}}\n"
	e := newDmnEnv(t, bin, map[string]string{"hold.yaml": hold})
	held := crashedRun(t, e.home, filepath.Join(e.dir, "hold.yaml"), "push") // in doubt once the daemon resumes it
	p := e.startDaemon()
	e.waitFor(10*time.Second, "the crashed run to be held in doubt", func() bool {
		return e.count(func(ev *journal.Event) bool { return ev.Type == journal.TaskInDoubt && ev.Run == held }) == 1
	})

	outside := filepath.Join(t.TempDir(), "outside.yaml")
	if err := os.WriteFile(outside, []byte(dmnManual), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := e.run("run", outside); code != ExitOK {
		t.Errorf("run FILE beside the daemon: exit %d: %s", code, stderr)
	}

	code, stdout, stderr := e.run("trigger", "hold")
	live := strings.TrimSpace(stdout)
	if code != ExitOK {
		t.Fatalf("trigger: exit %d: %s", code, stderr)
	}
	e.waitFor(10*time.Second, "the live run to wait", func() bool {
		return e.count(func(ev *journal.Event) bool {
			return ev.Type == journal.TaskStarted && ev.Run == live && ev.Task == "wait"
		}) == 1
	})
	if code, _, stderr := e.run("run", filepath.Join(e.dir, "hold.yaml")); code != ExitLocked || !strings.Contains(stderr, "pid "+strconv.Itoa(p.cmd.Process.Pid)) {
		t.Errorf("run of a workflow the daemon runs now: exit %d, want %d naming the daemon: %s", code, ExitLocked, stderr)
	}
	code, stdout, stderr = e.run("resolve", held, "push", "--succeeded")
	if code != ExitOK || !strings.Contains(stdout, "resolved as success") {
		t.Fatalf("resolve beside the daemon: exit %d\n%s%s", code, stdout, stderr)
	}
	if n := e.count(func(ev *journal.Event) bool { return ev.Type == journal.TaskResolved && ev.Run == held }); n != 1 {
		t.Errorf("%d TaskResolved events, want 1", n)
	}
	if !strings.Contains(p.stderr.String(), "in-doubt task resolved") {
		t.Errorf("the daemon did not write the resolution\n%s", p.stderr)
	}
	if code, _, stderr := e.run("resolve", held, "push", "--failed"); code != ExitUsage || !strings.Contains(stderr, "not in doubt") {
		t.Errorf("a second resolve: exit %d, want %d as without a daemon: %s", code, ExitUsage, stderr)
	}
	// resume while the daemon holds the journal: handed over, and the CLI
	// waits for the run's end like a resume in its own process.
	resume := e.command("resume", held)
	var rout dmnBuffer
	resume.Stdout, resume.Stderr = &rout, &rout
	if err := resume.Start(); err != nil {
		t.Fatal(err)
	}
	e.waitFor(10*time.Second, "the daemon to resume the held run", func() bool { // its second takeover: the first was at start
		return e.count(func(ev *journal.Event) bool { return ev.Type == journal.RunResumed && ev.Run == held }) == 2
	})
	if err := os.WriteFile(mark, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := resume.Wait(); err != nil || !strings.Contains(rout.String(), "in the daemon") {
		t.Errorf("resume handed over to the daemon: %v\n%s\n--- daemon\n%s", err, &rout, p.stderr)
	}
	for _, id := range []string{held, live} { // held ended before resume returned; live ends on its own
		e.waitFor(10*time.Second, "run "+id+" to succeed", func() bool {
			return e.count(func(ev *journal.Event) bool {
				return ev.Type == journal.RunFinished && ev.Run == id && ev.Status == journal.StatusSuccess
			}) == 1
		})
	}
	if code, _, stderr := e.run("resume", held); code != ExitUsage || !strings.Contains(stderr, "not interrupted") {
		t.Errorf("resume of a finished run beside the daemon: exit %d: %s", code, stderr)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, p.stderr)
	}
}

// testDaemonGC runs gc while a run in the daemon holds its workflow's
// journal: gc hands the cut over to the daemon, which truncates it.
func testDaemonGC(t *testing.T, bin string) {
	mark := filepath.Join(t.TempDir(), "go")
	wf := "name: gcw\noverlap: allow\nenv: {WAIT: \"0\"}\ntasks:\n" +
		"  - {name: a, type: shell, config: {command: \"if [ \\\"$WAIT\\\" = 1 ]; then while [ ! -e " + mark + " ]; do sleep 0.05; done; fi\"}}\n"
	e := newDmnEnv(t, bin, map[string]string{"gcw.yaml": wf})
	p := e.startDaemon()
	finished := func() int {
		return e.count(func(ev *journal.Event) bool {
			return ev.Type == journal.RunFinished && ev.Status == journal.StatusSuccess
		})
	}
	for i := 1; i <= 2; i++ {
		if code, _, stderr := e.run("trigger", "gcw"); code != ExitOK {
			t.Fatalf("trigger: exit %d: %s", code, stderr)
		}
		e.waitFor(10*time.Second, "a quick run to finish", func() bool { return finished() == i })
	}
	if code, _, stderr := e.run("trigger", "gcw", "--param", "WAIT=1"); code != ExitOK {
		t.Fatalf("trigger: exit %d: %s", code, stderr)
	}
	e.waitFor(10*time.Second, "the long run to start", func() bool {
		return e.count(func(ev *journal.Event) bool { return ev.Type == journal.TaskProcess }) == 3
	})
	if err := os.WriteFile(filepath.Join(e.home, "config.yaml"), []byte("retention: {history_days: 365, max_runs_per_workflow: 1}\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := e.run("gc")
	if code != ExitOK || !strings.Contains(stdout, "removed 2 run(s)") || !strings.Contains(stdout, "journal gcw: truncated entries 1–") ||
		!strings.Contains(stdout, "by the daemon, which holds it") {
		t.Errorf("gc beside the daemon: exit %d\n%s%s\n--- daemon\n%s", code, stdout, stderr, p.stderr)
	}
	if n := e.count(func(ev *journal.Event) bool { return ev.Type == journal.RunStarted }); n != 1 {
		t.Errorf("%d runs left in the journal, want the live one", n)
	}
	if err := os.WriteFile(mark, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e.waitFor(10*time.Second, "the long run to finish", func() bool { return finished() == 1 })
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, p.stderr)
	}
}
