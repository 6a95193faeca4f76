//go:build linux

package shell

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/executors"
)

// gateMarker names, in a gated shell's environment, the test that started
// it, so that the test finds the shell's pid before Started reports it.
const gateMarker = "PICOFLOW_GATE_TEST"

// gatedRequest returns a request for command whose shell is marked with a
// value of its own, the marker and the log's path.
func gatedRequest(t *testing.T, command string) (*executors.Request, string, string) {
	t.Helper()
	req, logPath := request(t, command)
	mark := gateMarker + "=" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	req.Env = append(req.Env, mark)
	return req, mark, logPath
}

// waitAtGate returns the pid of the shell marked mark once it waits in a
// read of a pipe: the gate (the shell reads it through fd 0, which a task
// has on /dev/null). The loop waits for a process this test started to get
// there; it gives up after ten seconds.
func waitAtGate(t *testing.T, mark string) int {
	t.Helper()
	for i := 0; i < 2000; i++ {
		if pid := findMarked(mark); pid > 0 {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/wchan")
			if err == nil && strings.HasSuffix(string(b), "pipe_read") {
				return pid
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no shell marked %s ever waited at its gate", mark)
	return 0
}

// findMarked returns the pid of a live (not zombie) process whose
// environment holds mark, or 0.
func findMarked(mark string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !strings.Contains("\x00"+string(env), "\x00"+mark+"\x00") {
			continue
		}
		if st, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil {
			if i := strings.LastIndexByte(string(st), ')'); i > 0 && strings.HasPrefix(string(st[i:]), ") Z") {
				continue
			}
		}
		return pid
	}
	return 0
}

func absent(t *testing.T, path, when string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: the command ran %s (stat: %v)", filepath.Base(path), when, err)
	}
}

// TestGate: a gated shell is started before Commit returns and waits there
// without running any of the command; once released it runs the command
// as an ungated shell does: the same $0, no arguments, the command's own
// line numbers, and no fd 3.
func TestGate(t *testing.T) {
	ledger := filepath.Join(t.TempDir(), "ran")
	command := `echo "$0 $# $LINENO"; [ -e /proc/$$/fd/3 ] && echo fd 3 is open
touch ` + ledger + `
no_such_command_for_the_gate_test`

	plain, plainLog := request(t, command)
	want := (&Shell{}).Execute(context.Background(), plain)
	wantLog := readLog(t, plainLog)
	if err := os.Remove(ledger); err != nil {
		t.Fatal(err)
	}

	req, mark, logPath := gatedRequest(t, command)
	asked := 0
	req.Commit = func(open func(bool)) bool {
		asked++
		waitAtGate(t, mark)
		absent(t, ledger, "before its start was committed")
		return commitAs(true)(open)
	}
	got := (&Shell{}).Execute(context.Background(), req)
	if asked != 1 {
		t.Errorf("Commit asked %d times, want once", asked)
	}
	if got.Status != want.Status || got.ExitCode != want.ExitCode || got.ExitCode != 127 {
		t.Errorf("gated: %v exit %d, ungated: %v exit %d (want 127 from the last line)",
			got.Status, got.ExitCode, want.Status, want.ExitCode)
	}
	if gotLog := readLog(t, logPath); gotLog != wantLog {
		t.Errorf("gated shell printed\n%s\nungated\n%s", gotLog, wantLog)
	}
	if _, err := os.Stat(ledger); err != nil {
		t.Errorf("released shell never ran the command: %v", err)
	}
}

// TestGateNotCommitted: when the start is not committed the shell ends
// without running the command and is reaped before Execute returns.
func TestGateNotCommitted(t *testing.T) {
	ledger := filepath.Join(t.TempDir(), "ran")
	req, mark, _ := gatedRequest(t, "touch "+ledger)
	started := false
	req.Started = func(int) { started = true }
	req.Commit = func(open func(bool)) bool {
		waitAtGate(t, mark)
		return commitAs(false)(open)
	}
	res := (&Shell{}).Execute(context.Background(), req)
	if res.Status != executors.Failed || !errors.Is(res.Err, errNotCommitted) {
		t.Errorf("got %v %v, want failed: %v", res.Status, res.Err, errNotCommitted)
	}
	if started {
		t.Error("Started was called for a start that was not committed")
	}
	absent(t, ledger, "although its start was not committed")
	if pid := findMarked(mark); pid > 0 {
		t.Errorf("the shell (pid %d) outlived Execute", pid)
	}
}

// gateHelper is set in the environment of this test binary re-run to hold
// a gated shell until it is killed.
const gateHelper = "PICOFLOW_TEST_GATE_HELPER"

// TestGateOwnerKilled: a picoflow killed (kill -9) while a shell waits at
// its gate leaves nothing running: the shell sees end of file on fd 3 and
// ends without running the command.
func TestGateOwnerKilled(t *testing.T) {
	if spec := os.Getenv(gateHelper); spec != "" {
		ledger, mark, _ := strings.Cut(spec, "|")
		req, _ := request(t, "touch "+ledger)
		req.Env = append(req.Env, mark)
		req.Commit = func(func(bool)) bool { select {} } // until killed
		(&Shell{}).Execute(context.Background(), req)
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ledger := filepath.Join(t.TempDir(), "ran")
	_, mark, _ := gatedRequest(t, "")
	helper := exec.Command(self, "-test.run=^TestGateOwnerKilled$", "-test.count=1")
	helper.Env = append(os.Environ(), gateHelper+"="+ledger+"|"+mark)
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() { // a failed wait below must not leave it holding its shell
		if !killed {
			_ = helper.Process.Kill()
			_ = helper.Wait()
		}
	})
	pid := waitAtGate(t, mark)
	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	killed = true
	// The orphan is reaped by whoever adopts it; wait (ten seconds at most)
	// for it to end, alive or zombie.
	for i := 0; i < 2000 && findMarked(mark) == pid; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if findMarked(mark) == pid {
		t.Fatalf("the gated shell (pid %d) still runs after its owner was killed", pid)
	}
	absent(t, ledger, "after its owner was killed at the gate")
}

// TestGateLongestCommand: a command of executors.MaxShellCommand bytes,
// the longest validate lets through, still fits in an argument with the
// gate before it.
func TestGateLongestCommand(t *testing.T) {
	tail := "; echo ran"
	command := ": " + strings.Repeat("x", executors.MaxShellCommand-2-len(tail)) + tail
	req, _, logPath := gatedRequest(t, command)
	req.Commit = commitAs(true)
	if res := (&Shell{}).Execute(context.Background(), req); res.Status != executors.Success {
		t.Fatalf("a %d-byte command: %v %v", len(command), res.Status, res.Err)
	}
	if got := readLog(t, logPath); got != "ran\n" {
		t.Errorf("printed %q, want ran", got)
	}
}
