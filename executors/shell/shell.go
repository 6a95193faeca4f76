package shell

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
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

var _ executors.Gater = (*Shell)(nil)

// Gates implements executors.Gater: the shell is started before the
// attempt's start is committed and runs the command once it is.
func (s *Shell) Gates() bool { return true }

// Execute implements executors.Executor.
func (s *Shell) Execute(ctx context.Context, req *executors.Request) executors.Result {
	cfg := req.Task.Shell
	if cfg == nil {
		return executors.Result{Status: executors.Failed, ExitCode: -1, NoRetry: true,
			Err: fmt.Errorf("task %q has no shell config", req.Task.Name)}
	}
	sh, err := s.shell()
	if err != nil {
		return executors.Result{Status: executors.Failed, ExitCode: -1, Err: fmt.Errorf("start: %w", err)}
	}
	if err := checkWorkdir(cfg.Workdir, req.Task.Name); err != nil {
		return executors.Result{Status: executors.Failed, ExitCode: -1, Err: err}
	}
	c := &command{args: []string{sh, "-c", cfg.Command}, dir: cfg.Workdir, env: req.Env,
		files: make([]uintptr, 3, 5), sys: syscall.SysProcAttr{Setpgid: true}}
	if err := credential(c, req.Task.User); err != nil {
		return executors.Result{Status: executors.Failed, ExitCode: -1, NoRetry: true, Err: err}
	}
	out, err := attachOutput(c, req)
	if err != nil {
		return executors.Result{Status: executors.Failed, ExitCode: -1, Err: err}
	}
	g, err := start(c, req, out)
	if err != nil {
		return executors.Result{Status: executors.Failed, ExitCode: -1, Err: fmt.Errorf("start: %w", err)}
	}
	pgid := c.pid
	if g != nil && !release(g, req, c, out) {
		return executors.Result{Status: executors.Failed, ExitCode: -1, Err: errNotCommitted}
	}
	if req.Started != nil {
		req.Started(pgid)
	}
	began := time.Now()
	status, err := executors.SuperviseProcess(ctx, req, DefaultKillGrace, c.wait,
		func(grace time.Duration, done <-chan error) error { return stopGroup(req, pgid, grace, done) })
	took := time.Since(began)
	// The leader is gone; whatever it left behind in its group goes too.
	// A task that means to leave a daemon running starts it with setsid.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	werr := out.drain()

	res := result(status, err)
	res.CPU = c.cpu
	switch status {
	case executors.TimedOut:
		res.Err = fmt.Errorf("timed out: ran %s, over its %s timeout", took.Round(100*time.Millisecond), req.Timeout)
	case executors.Interrupted:
		res.Err = errors.New("interrupted by shutdown")
	}
	if out.r == nil {
		werr = executors.CheckLog(req, res)
	}
	executors.LogFailed(req, &res, werr)
	return res
}

// result is the outcome of a shell that ended with err (from wait, or
// from stopping it), the reason it ended being status.
func result(status executors.Status, err error) executors.Result {
	res := executors.Result{Status: status}
	if err == nil {
		return res
	}
	res.ExitCode = -1
	if xe, ok := err.(*exitError); ok && !xe.ws.Signaled() { // wait's own error, never wrapped
		res.ExitCode = xe.ws.ExitStatus()
	}
	res.Err = err
	if status == executors.Success {
		res.Status = executors.Failed
	}
	return res
}

// shell returns the path of the shell: Path, looked up in $PATH when it
// names no directory, else /bin/sh.
func (s *Shell) shell() (string, error) {
	switch {
	case s.Path == "":
		return "/bin/sh", nil
	case strings.ContainsRune(s.Path, '/'):
		return s.Path, nil
	}
	return exec.LookPath(s.Path)
}

var errNotCommitted = errors.New("its start was not committed")

// start starts c, behind a gate when the engine asked for one
// (Request.Commit), and hands its output over to it.
func start(c *command, req *executors.Request, out *output) (g *gate, err error) {
	if req.Commit != nil {
		if g, err = newGate(c); err != nil { // fd 3
			out.abort()
			return nil, err
		}
	}
	uo, err := userOutput(c, req)
	if err == nil {
		err = c.start()
	}
	if uo != nil {
		uo.Close() // the task has its own
	}
	if err != nil {
		out.abort()
		if g != nil {
			g.abort()
		}
		return nil, err
	}
	out.started()
	return g, nil
}

// release waits for the attempt's start to be committed and opens the
// gate; when it was not, the shell ends unrun and is reaped, and release
// says false.
func release(g *gate, req *executors.Request, c *command, out *output) bool {
	g.started()
	ok := req.Commit(g.open)
	if !ok {
		_ = syscall.Kill(-c.pid, syscall.SIGKILL)
		_ = c.wait()
		_ = out.drain()
	}
	return ok
}

// checkWorkdir reports a workdir that is not a directory ("" is the
// current one).
func checkWorkdir(dir, task string) error {
	if dir == "" {
		return nil
	}
	fi, err := os.Stat(dir)
	if err == nil && fi.IsDir() {
		return nil
	}
	why := "no such directory"
	if err == nil {
		why = "not a directory"
	} else if !errors.Is(err, os.ErrNotExist) {
		why = unwrapPath(err).Error()
	}
	return fmt.Errorf("workdir %s: %s (config.workdir of task %s)", dir, why, task)
}

// devNull returns /dev/null opened once for reading, every task's stdin.
var devNull = sync.OnceValues(func() (*os.File, error) { return os.Open(os.DevNull) })

// DrainWait bounds how long output still arriving through a pipe is read
// after the task's process group is gone: a daemon the task started with
// setsid may hold the pipe open forever.
const DrainWait = 2 * time.Second

// output connects a task's stdout and stderr, one stream so that their
// order is kept. A file (the log) is handed to the process as is; any
// other writer (a masking writer) is fed from a pipe we own, so that the
// process group is still killed the moment its leader exits and only then
// is the pipe drained.
type output struct {
	r, w *os.File
	done chan struct{}
	err  error // the first write error of the copy, set before done closes
}

func attachOutput(c *command, req *executors.Request) (*output, error) {
	null, err := devNull()
	if err != nil {
		return nil, fmt.Errorf("stdin: %w", err)
	}
	c.files[0] = null.Fd()
	stdout, _ := req.Streams()
	if f, ok := stdout.(*os.File); ok {
		c.files[1], c.files[2] = f.Fd(), f.Fd()
		return &output{}, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("output pipe: %w", err)
	}
	c.files[1], c.files[2] = w.Fd(), w.Fd()
	o := &output{r: r, w: w, done: make(chan struct{})}
	go func() {
		defer close(o.done)
		w := &keepWriting{w: stdout}
		_, _ = io.Copy(w, r)
		o.err = w.err
	}()
	return o, nil
}

// keepWriting records the first write error of w and drops what follows,
// so that the task never blocks on a pipe nobody reads.
type keepWriting struct {
	w   io.Writer
	err error
}

func (k *keepWriting) Write(p []byte) (int, error) {
	if k.err == nil {
		_, k.err = k.w.Write(p)
	}
	return len(p), nil
}

// started closes our copy of the write end: the reader sees EOF once every
// process of the task has let go of it.
func (o *output) started() {
	if o.w != nil {
		o.w.Close()
	}
}

func (o *output) abort() {
	if o.w != nil {
		o.w.Close()
		_ = o.drain()
	}
}

// drain waits for the copy to end, at most DrainWait, and returns the
// copy's write error.
func (o *output) drain() error {
	if o.r == nil {
		return nil
	}
	t := time.NewTimer(DrainWait)
	defer t.Stop()
	select {
	case <-o.done:
	case <-t.C:
		o.r.Close() // ends the copy; a late writer gets EPIPE
		<-o.done
	}
	o.r.Close()
	return o.err
}

// stopGroup sends SIGTERM to the process group, then SIGKILL after grace if
// its leader has not exited, and returns the leader's wait error. A SIGKILL
// is noted in the attempt's log.
func stopGroup(req *executors.Request, pgid int, grace time.Duration, done <-chan error) error {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		executors.Note(req, "the task still ran %s after SIGTERM: killed it (SIGKILL)", grace)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return <-done
	}
}

// unwrapPath drops the *fs.PathError wrapper of err, whose path the caller
// names already.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
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
