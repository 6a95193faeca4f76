package shell

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picoflow/picoflow/executors"
	"github.com/picoflow/picoflow/executors/secret"
)

// With a writer that is not a file (the secret wrapper's masking writer),
// output goes through a pipe: one stream for stdout and stderr, in order,
// masked.
func TestMaskedOutput(t *testing.T) {
	req, logPath := request(t, `echo "pw=$PW"; echo "to stderr: $PW" >&2; printf 'split: hun'; printf 'ter2\n'`)
	req.Env = append(req.Env, "PW=hunter2")
	var r secret.Redactor
	r.Add("hunter2")
	w := r.Writer(req.Log)
	req.Stdout, req.Stderr = w, r.Writer(req.Log)
	res := (&Shell{}).Execute(context.Background(), req)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if res.Status != executors.Success {
		t.Fatal(res.Err)
	}
	if got, want := readLog(t, logPath), "pw=***\nto stderr: ***\nsplit: ***\n"; got != want {
		t.Errorf("log %q, want %q", got, want)
	}
}

// A daemon that escaped the process group with setsid and kept the output
// pipe cannot hold the task: the pipe is drained for at most DrainWait.
func TestMaskedOutputDaemonKeepsPipe(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "daemon.pid")
	// The task waits until the daemon has its own session, else the group
	// kill at the task's end would still reach it.
	req, logPath := request(t, `setsid sh -c 'echo $$ > `+pidFile+`.tmp; mv `+pidFile+`.tmp `+pidFile+`; exec sleep 60' &
		while [ ! -s `+pidFile+` ]; do :; done; echo started`)
	var r secret.Redactor
	w := r.Writer(req.Log)
	req.Stdout = w
	start := time.Now()
	res := (&Shell{}).Execute(context.Background(), req)
	took := time.Since(start)
	w.Flush()
	b, _ := os.ReadFile(pidFile)
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
		defer syscall.Kill(pid, syscall.SIGKILL)
	}
	if res.Status != executors.Success {
		t.Fatal(res.Err)
	}
	if took < DrainWait {
		t.Errorf("took %s: the daemon did not hold the pipe; the test proves nothing", took)
	}
	if took > DrainWait+5*time.Second {
		t.Errorf("took %s; the pipe should be given up after %s", took, DrainWait)
	}
	if got := readLog(t, logPath); got != "started\n" {
		t.Errorf("log %q", got)
	}
}

// Going through a pipe must not change how a timeout stops the group.
func TestMaskedOutputTimeout(t *testing.T) {
	subreaper(t)
	dir := t.TempDir()
	req, _ := request(t, `sleep 60 & echo $! > child; wait`)
	req.Task.Shell.Workdir = dir
	req.Stdout = (&secret.Redactor{}).Writer(req.Log)
	req.Timeout = 200 * time.Millisecond
	var pgid int
	req.Started = func(g int) { pgid = g }
	res := (&Shell{}).Execute(context.Background(), req)
	if res.Status != executors.TimedOut {
		t.Fatalf("got %v: %v", res.Status, res.Err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "child"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid == 0 {
		t.Fatal("no child pid")
	}
	assertGroupGone(t, pgid, pid)
}
