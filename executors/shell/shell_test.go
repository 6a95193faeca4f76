package shell

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picoflow/picoflow/executors"
)

// request returns a request for a shell task running command, its log in a
// temporary file. The log is returned too, to read what the task printed.
func request(t *testing.T, command string) (*executors.Request, string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "task.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	task := &executors.Task{Name: "t",
		Shell: &executors.ShellConfig{Command: command}}
	return &executors.Request{Run: "r", Workflow: "w", Task: task, Attempt: 1,
		Env: os.Environ(), Log: f, KillGrace: 5 * time.Second}, logPath
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitFile polls for a file that a task creates: a bounded wait on a
// condition, never a fixed sleep.
func waitFile(t *testing.T, path string) {
	t.Helper()
	for i := 0; i < 2000; i++ {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s never appeared", path)
}

// assertGroupGone reaps the processes left in process group pgid (orphans
// reparented to this subreaper) and checks that pid, a member, and the
// group no longer exist. The loop only waits for the kernel to finish a
// SIGKILL already sent; it gives up after five seconds.
func assertGroupGone(t *testing.T, pgid, pid int) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(-pgid, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.ECHILD) {
			break // every member that was our child is reaped
		}
		if got == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d survived the task: kill(pid, 0) = %v, want ESRCH", pid, err)
	}
	if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group %d survived the task: kill(-pgid, 0) = %v, want ESRCH", pgid, err)
	}
}

func TestExecute(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		command string
		env     []string
		workdir string
		timeout time.Duration
		// ready: the timeout starts once the command touched READY
		// (its output is in the log by then, however loaded the machine)
		ready bool

		status   executors.Status
		exitCode int
		err      string // substring of Result.Err; "" means nil
		noRetry  bool
		log      string // substring of the log
	}{
		{name: "success", command: "echo hello", status: executors.Success, log: "hello\n"},
		{name: "stderr-to-log", command: "echo oops >&2", status: executors.Success, log: "oops\n"},
		{name: "exit-code", command: "echo partial; exit 3", status: executors.Failed, exitCode: 3,
			err: "exit status 3", log: "partial"},
		{name: "exit-code-255", command: "exit 255", status: executors.Failed, exitCode: 255, err: "exit status 255"},
		{name: "killed-by-sigkill", command: "kill -KILL $$", status: executors.Failed, exitCode: -1,
			err: "killed by signal SIGKILL"},
		{name: "killed-by-sigsegv", command: "kill -SEGV $$", status: executors.Failed, exitCode: -1,
			err: "killed by signal SIGSEGV"},
		{name: "env", command: `printf '%s|%s' "$GREETING" "$EMPTY"`, env: []string{"GREETING=hi there", "EMPTY="},
			status: executors.Success, log: "hi there|"},
		{name: "env-is-complete", command: `printf '%s' "${HOME-unset}"`, env: []string{"ONLY=1"},
			status: executors.Success, log: "unset"},
		{name: "workdir", command: "pwd", workdir: dir, status: executors.Success, log: dir + "\n"},
		{name: "missing-workdir", command: "true", workdir: filepath.Join(dir, "nope"), status: executors.Failed,
			exitCode: -1, err: "workdir " + filepath.Join(dir, "nope") + ": no such directory"},
		{name: "timeout", command: "echo before; touch READY; sleep 300", timeout: 50 * time.Millisecond, ready: true,
			status: executors.TimedOut, exitCode: -1, err: "over its 50ms timeout", log: "before\n\n[picoflow "},
		{name: "timeout-noted-in-log", command: "sleep 300", timeout: 50 * time.Millisecond,
			status: executors.TimedOut, exitCode: -1, err: "timed out", log: "] timeout of 50ms reached: stopping the task (SIGTERM, then SIGKILL after"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, logPath := request(t, tc.command)
			if tc.env != nil {
				req.Env = tc.env
			}
			req.Task.Shell.Workdir = tc.workdir
			req.Timeout = tc.timeout
			if tc.ready {
				ready := filepath.Join(t.TempDir(), "ready")
				req.Task.Shell.Command = strings.ReplaceAll(tc.command, "READY", ready)
				req.Started = func(int) { waitFile(t, ready) } // the timeout starts after this returns
			}
			res := (&Shell{}).Execute(context.Background(), req)
			if res.Status != tc.status || res.ExitCode != tc.exitCode || res.NoRetry != tc.noRetry {
				t.Errorf("got status %s, exit code %d, noRetry %v; want %s, %d, %v (err %v)",
					res.Status, res.ExitCode, res.NoRetry, tc.status, tc.exitCode, tc.noRetry, res.Err)
			}
			switch {
			case tc.err == "" && res.Err != nil:
				t.Errorf("err = %v, want nil", res.Err)
			case tc.err != "" && (res.Err == nil || !strings.Contains(res.Err.Error(), tc.err)):
				t.Errorf("err = %v, want it to contain %q", res.Err, tc.err)
			}
			if got := readLog(t, logPath); !strings.Contains(got, tc.log) {
				t.Errorf("log = %q, want it to contain %q", got, tc.log)
			}
		})
	}
}

// TestSIGKILLNotedInLog times out a task that ignores SIGTERM: the log
// says when PicoFlow stopped it and when it had to SIGKILL it, and the
// error gives the real run time besides the timeout.
func TestSIGKILLNotedInLog(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "trapped")
	req, logPath := request(t, "trap '' TERM; touch "+ready+"; sleep 300")
	req.Timeout, req.KillGrace = 50*time.Millisecond, 200*time.Millisecond
	req.Started = func(int) { waitFile(t, ready) } // the timeout starts after the trap is set
	res := (&Shell{}).Execute(context.Background(), req)
	if res.Status != executors.TimedOut || res.Err == nil || !strings.Contains(res.Err.Error(), "over its 50ms timeout") {
		t.Fatalf("got %s: %v", res.Status, res.Err)
	}
	log := readLog(t, logPath)
	for _, want := range []string{"] timeout of 50ms reached: stopping the task (SIGTERM, then SIGKILL after 200ms)",
		"] the task still ran 200ms after SIGTERM: killed it (SIGKILL)"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log does not say %q:\n%s", want, log)
		}
	}
}

func TestExecuteRefusesTaskWithoutShellConfig(t *testing.T) {
	req, _ := request(t, "true")
	req.Task.Shell = nil
	res := (&Shell{}).Execute(context.Background(), req)
	if res.Status != executors.Failed || !res.NoRetry || res.Err == nil || !strings.Contains(res.Err.Error(), "no shell config") {
		t.Fatalf("got %+v, want a non-retryable failure naming the missing shell config", res)
	}
}

// TestStopKillsProcessGroup checks that a timeout and a shutdown both stop
// every process of the task, including a grandchild in the background.
func TestStopKillsProcessGroup(t *testing.T) {
	subreaper(t)
	tests := []struct {
		name       string
		grandchild string // started in the background; its pid is checked
		timeout    time.Duration
		cancel     bool
		status     executors.Status
		err        string
	}{
		{name: "timeout", grandchild: "sleep 300", timeout: 100 * time.Millisecond,
			status: executors.TimedOut, err: "over its 100ms timeout"},
		{name: "shutdown", grandchild: "sleep 300", cancel: true,
			status: executors.Interrupted, err: "interrupted by shutdown"},
		// The leader exits on SIGTERM at once; the grandchild that ignores
		// it must still go, without waiting for KillGrace.
		{name: "grandchild-ignores-term", grandchild: `sh -c "trap '' TERM; sleep 300"`, timeout: 100 * time.Millisecond,
			status: executors.TimedOut, err: "over its 100ms timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pidfile := filepath.Join(dir, "pid")
			req, _ := request(t, tc.grandchild+" & echo $! > "+pidfile+".tmp; mv "+pidfile+".tmp "+pidfile+"; sleep 300")
			req.Timeout = tc.timeout
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var leader int
			req.Started = func(pgid int) {
				leader = pgid
				// The timeout clock starts after this returns: waiting here
				// makes sure the grandchild exists before it fires.
				waitFile(t, pidfile)
				if tc.cancel {
					cancel()
				}
			}
			res := (&Shell{}).Execute(ctx, req)
			if res.Status != tc.status || res.ExitCode != -1 || res.Err == nil || !strings.Contains(res.Err.Error(), tc.err) {
				t.Fatalf("got status %s, exit code %d, err %v; want %s, -1, %q", res.Status, res.ExitCode, res.Err, tc.status, tc.err)
			}
			b, err := os.ReadFile(pidfile)
			if err != nil {
				t.Fatal(err)
			}
			grandchild, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatalf("pid file: %v", err)
			}
			assertGroupGone(t, leader, grandchild)
		})
	}
}

// TestStopEscalatesToSIGKILL checks the SIGTERM → KillGrace → SIGKILL
// sequence: a task that handles SIGTERM gets to run its handler; one that
// ignores it is killed once KillGrace has passed, not before.
func TestStopEscalatesToSIGKILL(t *testing.T) {
	tests := []struct {
		name      string
		command   string
		killGrace time.Duration
		minTook   time.Duration // a lower bound only: SIGKILL cannot come earlier
		log       string
	}{
		{name: "term-honoured", command: `trap 'echo got TERM; exit 0' TERM; touch "$READY"; while :; do sleep 1; done`,
			killGrace: time.Minute, log: "got TERM"},
		{name: "term-ignored", command: `trap '' TERM; touch "$READY"; sleep 300`,
			killGrace: 300 * time.Millisecond, minTook: 300 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ready := filepath.Join(t.TempDir(), "ready")
			req, logPath := request(t, tc.command)
			req.Env = append(req.Env, "READY="+ready)
			req.KillGrace = tc.killGrace
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stopAt time.Time
			req.Started = func(int) {
				waitFile(t, ready) // the trap is set
				stopAt = time.Now()
				cancel()
			}
			res := (&Shell{}).Execute(ctx, req)
			took := time.Since(stopAt)
			if res.Status != executors.Interrupted || res.ExitCode != -1 && res.ExitCode != 0 {
				t.Errorf("got status %s, exit code %d, want interrupted", res.Status, res.ExitCode)
			}
			if took < tc.minTook {
				t.Errorf("stopped %s after the shutdown began; SIGKILL must wait KillGrace %s", took, tc.killGrace)
			}
			if got := readLog(t, logPath); !strings.Contains(got, tc.log) {
				t.Errorf("log = %q, want %q", got, tc.log)
			}
		})
	}
}

// TestStartedReportsProcessGroup checks that Started receives the group id
// the task's processes really run in.
func TestStartedReportsProcessGroup(t *testing.T) {
	req, logPath := request(t, `read -r _ _ _ _ pgrp _ < /proc/$$/stat; echo "$$ $pgrp"`)
	var got []int
	req.Started = func(pgid int) { got = append(got, pgid) }
	res := (&Shell{}).Execute(context.Background(), req)
	if res.Status != executors.Success {
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	fields := strings.Fields(readLog(t, logPath))
	if len(fields) != 2 || len(got) != 1 {
		t.Fatalf("log %q, Started calls %v", fields, got)
	}
	pid, _ := strconv.Atoi(fields[0])
	pgrp, _ := strconv.Atoi(fields[1])
	if got[0] != pgrp || pgrp != pid {
		t.Errorf("Started(%d); the shell %d runs in group %d: want the shell leading its own group", got[0], pid, pgrp)
	}
	if pgrp == syscall.Getpgrp() {
		t.Errorf("the task shares the test's process group %d", pgrp)
	}
}

// TestOutputIsStreamed checks that a task's output goes straight to the log
// file: 50 MB of output must not pass through the memory of this process.
func TestOutputIsStreamed(t *testing.T) {
	const size = 50 << 20
	before := vmHWM(t)
	req, logPath := request(t, "head -c "+strconv.Itoa(size)+" /dev/zero")
	res := (&Shell{}).Execute(context.Background(), req)
	if res.Status != executors.Success {
		t.Fatalf("status %s: %v", res.Status, res.Err)
	}
	fi, err := os.Stat(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != size {
		t.Errorf("log has %d bytes, want %d", fi.Size(), size)
	}
	if grew := vmHWM(t) - before; grew > 20<<20 {
		t.Errorf("peak RSS grew by %d MiB while the task printed 50 MiB", grew>>20)
	}
}

// vmHWM returns this process's peak resident set size in bytes.
func vmHWM(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Skip("no VmHWM in /proc/self/status")
	return 0
}

func TestUser(t *testing.T) {
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	root := os.Geteuid() == 0
	tests := []struct {
		name   string
		user   string
		skip   string
		status executors.Status
		err    string
		log    string
	}{
		{name: "as-nobody", user: "nobody", skip: map[bool]string{false: "switching users needs root"}[root],
			status: executors.Success, log: nobody.Uid + "\n"},
		{name: "non-root-refused", user: "nobody", skip: map[bool]string{true: "running as root"}[root],
			status: executors.Failed, err: "picoflow must run as root to switch users"},
		{name: "unknown-user", user: "no-such-user-picoflow", status: executors.Failed, err: `task user "no-such-user-picoflow"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip != "" {
				t.Skip(tc.skip)
			}
			req, logPath := request(t, "id -u")
			req.Task.User = tc.user
			res := (&Shell{}).Execute(context.Background(), req)
			if res.Status != tc.status {
				t.Fatalf("status %s (%v), want %s", res.Status, res.Err, tc.status)
			}
			if tc.err != "" {
				if res.Err == nil || !strings.Contains(res.Err.Error(), tc.err) || !res.NoRetry {
					t.Errorf("err = %v (noRetry %v), want a non-retryable error containing %q", res.Err, res.NoRetry, tc.err)
				}
			}
			if got := readLog(t, logPath); got != tc.log {
				t.Errorf("log = %q, want %q", got, tc.log)
			}
		})
	}
}

// TestUserOutput: a task that runs as another user writes its
// $PICOFLOW_OUTPUT although the file lies in a directory only root may
// enter (the run's log directory), gated or not.
func TestUserOutput(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root")
	}
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	for _, gated := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "gated"}[gated], func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "logs")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			req, logPath := request(t, `echo k=v >> "$PICOFLOW_OUTPUT" && echo more=1 >> "$PICOFLOW_OUTPUT"`)
			req.Task.User = "nobody"
			req.OutputFile = filepath.Join(dir, "t.1.out")
			req.Env = append(req.Env, "PICOFLOW_OUTPUT="+req.OutputFile)
			if gated {
				req.Commit = commitAs(true)
			}
			if res := (&Shell{}).Execute(context.Background(), req); res.Status != executors.Success {
				t.Fatalf("%v %v\n%s", res.Status, res.Err, readLog(t, logPath))
			}
			b, err := os.ReadFile(req.OutputFile)
			if err != nil || string(b) != "k=v\nmore=1\n" {
				t.Errorf("output file %q (%v), want both lines", b, err)
			}
		})
	}
}

// commitAs is a Request.Commit that answers ok at once, as the engine's
// does once the batch is committed: it opens the executor's gate.
func commitAs(ok bool) func(open func(bool)) bool {
	return func(open func(bool)) bool {
		if open != nil {
			open(ok)
		}
		return ok
	}
}

// TestCPUReported: the result carries the CPU time of the task's
// processes, the shell's and the children it waited for: a busy loop's
// is most of its run, a sleep's a small part.
func TestCPUReported(t *testing.T) {
	for _, tc := range []struct {
		name, cmd string
		busy      bool
	}{
		{"busy loop", `i=0; while [ $i -lt 40000 ]; do i=$((i+1)); done`, true},
		{"busy child", `sh -c 'i=0; while [ $i -lt 40000 ]; do i=$((i+1)); done'`, true},
		{"sleep", `sleep 0.3`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := request(t, tc.cmd)
			began := time.Now()
			res := (&Shell{}).Execute(context.Background(), req)
			wall := time.Since(began)
			if res.Status != executors.Success {
				t.Fatalf("status %v: %v", res.Status, res.Err)
			}
			if res.CPU <= 0 || res.CPU > wall {
				t.Fatalf("CPU %v, want more than 0 and at most the run's %v", res.CPU, wall)
			}
			if busy := res.CPU > wall/4; busy != tc.busy {
				t.Errorf("CPU %v of a %v run: busy %v, want %v", res.CPU, wall, busy, tc.busy)
			}
		})
	}
}
