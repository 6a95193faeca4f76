package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picoflow/picoflow/projector/projectortest"
)

func TestLogs(t *testing.T) {
	home := scenarioHome(t)
	// An attempt that succeeded without output has no log file (its run's
	// directory is there); gc removes a run's whole directory.
	if err := os.Remove(filepath.Join(home, "logs", "backup", projectortest.BackupOK, "upload.1.log")); err != nil {
		t.Fatal(err)
	}
	// Or an empty one, when no later attempt of the run took it over
	// (engine/logfile.go): logs says "no output" all the same.
	if err := os.Truncate(filepath.Join(home, "logs", "backup", projectortest.BackupOK, "dump.1.log"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(home, "logs", "backup", projectortest.BackupTimeout)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string // the whole output
		stderr string // a part of it
	}{
		{"latest run and attempt", []string{"logs", "report", "fetch"}, 0,
			"fetch attempt 1: working\nfetch attempt 1: done\n", "run " + projectortest.ReportOK + ", fetch attempt 1 (success)"},
		{"latest attempt of a run", []string{"logs", "report", "fetch", "--run", projectortest.ReportFailed}, 0,
			"fetch attempt 2: working\nfetch attempt 2: done\n", "fetch attempt 2 (failed)"},
		{"given attempt", []string{"logs", "report", "fetch", "--run", projectortest.ReportFailed, "--attempt", "1"}, 0,
			"fetch attempt 1: working\nfetch attempt 1: done\n", "fetch attempt 1 (failed)"},
		{"skips runs that did not run the task", []string{"logs", "backup", "compress"}, 0,
			"compress attempt 1: working\ncompress attempt 1: done\n", projectortest.BackupLive + ", compress attempt 1 (running)"},
		{"no such task", []string{"logs", "backup", "nope"}, ExitNotFound, "", "no task nope of workflow backup has run"},
		{"no such attempt", []string{"logs", "report", "fetch", "--run", projectortest.ReportOK, "--attempt", "3"}, ExitNotFound, "",
			"no attempt 3 of task fetch of workflow report in run " + projectortest.ReportOK},
		{"succeeded without output", []string{"logs", "backup", "upload", "--run", projectortest.BackupOK}, 0, "",
			"no output: the attempt succeeded without writing anything"},
		{"succeeded with an empty log", []string{"logs", "backup", "dump", "--run", projectortest.BackupOK}, 0, "",
			"no output: the attempt succeeded without writing anything"},
		{"log removed", []string{"logs", "backup", "compress", "--run", projectortest.BackupTimeout}, ExitNotFound, "", "is gone"},
		{"usage", []string{"logs", "backup"}, ExitUsage, "", "needs WORKFLOW and TASK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := pf(t, home, tc.args...)
			if r.code != tc.code || r.stdout != tc.stdout || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("exit %d, stdout %q, stderr %q\nwant %d, %q, %q", r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

func fastFollow(t *testing.T, home string) {
	tune(t, home, func(m *Main) { m.FollowPoll, m.FollowJournalPoll = 10*time.Millisecond, 50*time.Millisecond })
}

// TestLogsFollow runs a real task that waits at barriers (FIFOs) the test
// opens: the task writes "started", waits; the test starts logs --follow
// and reads "started" from it, then lets the task write its next line,
// and opens the last barrier only once follow has shown that line. A
// follow that printed nothing new until the attempt ended would never get
// there, and fails here.
func TestLogsFollow(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	for _, b := range []string{"b1", "b2"} {
		if err := syscall.Mkfifo(filepath.Join(dir, b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	file := writeWorkflow(t, dir, "stream", "", spec{name: "talk",
		cmd: `echo started; read x < "$T/b1"; echo first line; read x < "$T/b2"; echo last line`})
	ctx, ran := runStarted(t, home, file)

	pr, pw := io.Pipe()
	followed := make(chan cliOut, 1)
	go func() {
		r := pfTo(ctx, t, home, pw, "logs", "stream", "talk", "--follow")
		pw.Close()
		followed <- r
	}()
	out := bufio.NewReader(pr)
	for _, want := range []string{"started", "first line"} {
		if want == "first line" {
			release(t, filepath.Join(dir, "b1"))
		}
		line, err := out.ReadString('\n')
		if err != nil || line != want+"\n" {
			t.Fatalf("logs --follow printed %q (%v), want %q while the attempt runs", line, err, want)
		}
	}
	release(t, filepath.Join(dir, "b2"))
	rest, err := io.ReadAll(out)
	if err != nil || string(rest) != "last line\n" {
		t.Errorf("after the last barrier logs --follow printed %q (%v), want %q", rest, err, "last line\n")
	}
	if r := <-followed; r.code != 0 || !strings.Contains(r.stderr, "attempt 1 of talk ended: success") {
		t.Errorf("logs --follow: exit %d, stderr %s", r.code, r.stderr)
	}
	if r := <-ran; r.code != 0 {
		t.Errorf("run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// release opens the barrier FIFO a task waits at, and lets it go.
func release(t *testing.T, fifo string) {
	t.Helper()
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("go\n")
	f.Close()
}

// pollUntil checks cond every 10 ms until it holds, and fails the test
// with why once ctx is done.
func pollUntil(ctx context.Context, t *testing.T, why string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal(why)
		case <-tick.C:
		}
	}
}

// waitForLogLine waits until the run in home has a log of the talk task
// that holds line.
func waitForLogLine(ctx context.Context, t *testing.T, home, line string) {
	t.Helper()
	pollUntil(ctx, t, fmt.Sprintf("no log with %q: the task did not start", line), func() bool {
		logs, _ := filepath.Glob(filepath.Join(home, "logs", "stream", "*", "talk.1.log"))
		for _, l := range logs {
			if b, _ := os.ReadFile(l); strings.Contains(string(b), line+"\n") {
				return true
			}
		}
		return false
	})
}

func TestLogsFollowInterruptedRun(t *testing.T) {
	home := scenarioHome(t)
	fastFollow(t, home)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := pfCtx(ctx, t, home, "logs", "backup", "compress", "-f")
	if ctx.Err() != nil || r.code != 0 || !strings.Contains(r.stderr, "is interrupted: no process runs it") {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
}

func TestLogsFollowStopsOnCancel(t *testing.T) {
	home := scenarioHome(t)
	fastFollow(t, home)
	release, err := holdWorkflow(home, "backup")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := pfCtx(ctx, t, home, "logs", "backup", "compress", "--follow")
	if r.code != 0 || time.Since(start) > 5*time.Second {
		t.Fatalf("exit %d after %s: %s", r.code, time.Since(start), r.stderr)
	}
}

// TestLogsFollowBeforeTheFileExists: follow waits for a running attempt's
// log file to appear and still notices the end of the attempt's run.
func TestLogsFollowBeforeTheFileExists(t *testing.T) {
	home := scenarioHome(t)
	if err := os.Remove(filepath.Join(home, "logs", "backup", projectortest.BackupLive, "compress.1.log")); err != nil {
		t.Fatal(err)
	}
	fastFollow(t, home)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := pfCtx(ctx, t, home, "logs", "backup", "compress", "-f")
	if ctx.Err() != nil || r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "is interrupted: no process runs it") {
		t.Fatalf("exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
}

// TestLogsFollowHoldsTheLog: an attempt that writes nothing is followed
// while it runs; it succeeds, and the next task starts while logs --follow
// still has its file open. The next task must not be given that file (it
// would show in the follow): the follow prints nothing and ends on the
// attempt's success.
func TestLogsFollowHoldsTheLog(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := syscall.Mkfifo(filepath.Join(dir, "b1"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := writeWorkflow(t, dir, "stream", "", spec{name: "talk", cmd: `echo $$ > "$T/started"; read x < "$T/b1"`},
		spec{name: "next", cmd: "echo next", deps: []string{"talk"}})
	fastFollow(t, home)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // bounds a failure
	defer cancel()
	ran := make(chan cliOut, 1)
	go func() { ran <- pfCtx(ctx, t, home, "run", file) }()
	pollUntil(ctx, t, "the task did not start", func() bool { return fileExists(filepath.Join(dir, "started")) })
	followed := make(chan cliOut, 1)
	go func() { followed <- pfCtx(ctx, t, home, "logs", "stream", "talk", "--follow") }()
	waitFollowing(ctx, t, home, "talk")
	release(t, filepath.Join(dir, "b1"))
	if r := <-ran; r.code != 0 {
		t.Fatalf("run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := <-followed; r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "attempt 1 of talk ended: success") {
		t.Errorf("logs --follow: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	if r := pf(t, home, "logs", "stream", "next"); r.code != 0 || r.stdout != "next\n" {
		t.Errorf("logs of next: exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
}

func fileExists(path string) bool { _, err := os.Stat(path); return err == nil }

// waitFollowing waits until logs --follow, run in this process, has the
// task's log open: two descriptors of this process name it (the engine's
// and the follow's).
func waitFollowing(ctx context.Context, t *testing.T, home, task string) {
	t.Helper()
	pollUntil(ctx, t, "logs --follow did not open the log of "+task, func() bool {
		logs, _ := filepath.Glob(filepath.Join(home, "logs", "*", "*", task+".1.log"))
		return len(logs) == 1 && openHere(logs[0]) >= 2
	})
}

// TestLogsFollowTheAttemptsFile: logs --follow opened a file at the
// attempt's log path that is not the attempt's (another attempt's free log
// stands there for a moment while the attempt tries to reuse it, and goes
// back when a process holds it; the attempt then creates its own). The test
// plays that with the real run: it moves the task's log aside, puts an
// empty file at its path, waits until the follow has it open, puts the
// task's log back over it and lets the task write. The follow must switch
// to the attempt's file and print what the task wrote.
func TestLogsFollowTheAttemptsFile(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := syscall.Mkfifo(filepath.Join(dir, "b1"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := writeWorkflow(t, dir, "stream", "", spec{name: "talk", cmd: `echo started; read x < "$T/b1"; echo after`})
	ctx, ran := runStarted(t, home, file)
	logs, _ := filepath.Glob(filepath.Join(home, "logs", "stream", "*", "talk.1.log"))
	if len(logs) != 1 {
		t.Fatalf("logs: %v", logs)
	}
	log := logs[0]
	if err := os.Rename(log, log+".aside"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(log, nil, 0o640); err != nil { // the other attempt's free log
		t.Fatal(err)
	}
	followed := make(chan cliOut, 1)
	go func() { followed <- pfCtx(ctx, t, home, "logs", "stream", "talk", "--follow") }()
	pollUntil(ctx, t, "logs --follow did not open the file at the log's path", func() bool { return openHere(log) > 0 })
	if err := os.Rename(log+".aside", log); err != nil {
		t.Fatal(err)
	}
	release(t, filepath.Join(dir, "b1"))
	if r := <-ran; r.code != 0 {
		t.Fatalf("run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := <-followed; r.code != 0 || r.stdout != "started\nafter\n" {
		t.Errorf("logs --follow: exit %d, stdout %q (want the attempt's file: %q), stderr %s", r.code, r.stdout, "started\nafter\n", r.stderr)
	}
}

// openHere counts the descriptors of this process that name path.
func openHere(path string) int {
	fds, _ := filepath.Glob("/proc/self/fd/*")
	n := 0
	for _, fd := range fds {
		if p, err := os.Readlink(fd); err == nil && p == path {
			n++
		}
	}
	return n
}

// TestLogsOfAnAttemptWithoutItsFile: an attempt whose start was journaled
// but whose log file was never kept (picoflow killed right after the
// start, before the attempt opened it; or right after a success whose
// empty file went to another attempt, before the end was journaled) is
// not one whose logs gc removed: its run's directory is there. The test
// interrupts a real run and removes the attempt's file as such a kill
// leaves it.
func TestLogsOfAnAttemptWithoutItsFile(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := syscall.Mkfifo(filepath.Join(dir, "b1"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := writeWorkflow(t, dir, "stream", "{shutdown_grace: 100ms}", spec{name: "talk", cmd: `echo started; read x < "$T/b1"`})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // bounds a failure
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan cliOut, 1)
	go func() { ran <- pfCtx(runCtx, t, home, "run", file) }()
	waitForLogLine(ctx, t, home, "started")
	stop()
	if r := <-ran; r.code != ExitInterrupted {
		t.Fatalf("run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	logs, _ := filepath.Glob(filepath.Join(home, "logs", "stream", "*", "talk.1.log"))
	if len(logs) != 1 {
		t.Fatalf("logs: %v", logs)
	}
	if err := os.Remove(logs[0]); err != nil {
		t.Fatal(err)
	}
	r := pf(t, home, "logs", "stream", "talk")
	if r.code != ExitNotFound || strings.Contains(r.stderr, "gc") || !strings.Contains(r.stderr, "picoflow stopped before keeping it") {
		t.Errorf("logs: exit %d, stderr %s; want %d and no word of gc", r.code, r.stderr, ExitNotFound)
	}
}

// runStarted runs file in home in the background, with logs --follow
// polling fast, and returns once its task has logged "started": the
// context bounds the test, the channel gets the run's outcome.
func runStarted(t *testing.T, home, file string) (context.Context, <-chan cliOut) {
	t.Helper()
	fastFollow(t, home)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // bounds a failure
	t.Cleanup(cancel)
	ran := make(chan cliOut, 1)
	go func() { ran <- pfCtx(ctx, t, home, "run", file) }()
	waitForLogLine(ctx, t, home, "started")
	return ctx, ran
}
