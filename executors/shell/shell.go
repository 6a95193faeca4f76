// Package shell runs shell tasks: `/bin/sh -c COMMAND` in a process group of
// its own, so that a timeout or a shutdown can stop every process the task
// started. It must never leave a process of a task running after Execute
// returns.
package shell

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"

	"github.com/picoflow/picoflow/executors"
)

// DefaultKillGrace is the wait between SIGTERM and SIGKILL.
const DefaultKillGrace = 5 * time.Second

// Shell is the executor of `type: shell` tasks.
type Shell struct {
	// Path of the shell, /bin/sh when empty.
	Path string
}

var _ executors.Executor = (*Shell)(nil)

// Execute implements executors.Executor.
func (s *Shell) Execute(ctx context.Context, req *executors.Request) executors.Result {
	cfg := req.Task.Shell
	if cfg == nil {
		return executors.Result{Status: executors.Failed, ExitCode: -1, NoRetry: true,
			Err: fmt.Errorf("task %q has no shell config", req.Task.Name)}
	}
	sh := s.Path
	if sh == "" {
		sh = "/bin/sh"
	}
	cmd := exec.Command(sh, "-c", cfg.Command)
	cmd.Dir = cfg.Workdir
	cmd.Env = req.Env
	cmd.Stdout = req.Log
	cmd.Stderr = req.Log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := credential(cmd, req.Task.User); err != nil {
		return executors.Result{Status: executors.Failed, ExitCode: -1, NoRetry: true, Err: err}
	}
	if err := cmd.Start(); err != nil {
		return executors.Result{Status: executors.Failed, ExitCode: -1, Err: fmt.Errorf("start: %w", err)}
	}
	pgid := cmd.Process.Pid
	if req.Started != nil {
		req.Started(pgid)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var timeout <-chan time.Time
	if req.Timeout > 0 {
		t := time.NewTimer(req.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	grace := req.KillGrace
	if grace <= 0 {
		grace = DefaultKillGrace
	}
	var err error
	status := executors.Success
	select {
	case err = <-done:
	case <-timeout:
		status = executors.TimedOut
		err = stopGroup(pgid, grace, done)
	case <-ctx.Done():
		status = executors.Interrupted
		err = stopGroup(pgid, grace, done)
	}
	// The leader is gone; whatever it left behind in its group goes too.
	// A task that means to leave a daemon running starts it with setsid.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)

	res := executors.Result{Status: status}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.ExitCode = -1
			res.Err = fmt.Errorf("killed by signal %s", sigName(ws.Signal()))
		} else {
			res.Err = fmt.Errorf("exit status %d", res.ExitCode)
		}
	default:
		res.ExitCode = -1
		res.Err = err
	}
	switch status {
	case executors.TimedOut:
		res.Err = fmt.Errorf("timed out after %s", req.Timeout)
	case executors.Interrupted:
		res.Err = errors.New("interrupted by shutdown")
	default:
		if err != nil {
			res.Status = executors.Failed
		}
	}
	return res
}

// stopGroup sends SIGTERM to the process group, then SIGKILL after grace if
// its leader has not exited, and returns the leader's wait error.
func stopGroup(pgid int, grace time.Duration, done <-chan error) error {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return <-done
	}
}

func sigName(s syscall.Signal) string {
	switch s {
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGSEGV:
		return "SIGSEGV"
	case syscall.SIGABRT:
		return "SIGABRT"
	case syscall.SIGHUP:
		return "SIGHUP"
	case syscall.SIGPIPE:
		return "SIGPIPE"
	}
	return fmt.Sprintf("%d (%s)", int(s), s)
}
