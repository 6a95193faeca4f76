package executors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Executor runs one attempt of a task. Execute blocks until the attempt has
// ended and everything it started is gone. Cancelling ctx means the attempt
// is being interrupted (shutdown): the executor stops it as fast as it can
// and reports StatusInterrupted.
type Executor interface {
	Execute(ctx context.Context, req *Request) Result
}

// Request describes one attempt.
type Request struct {
	Run      string
	Workflow string
	Task     *Task
	Attempt  int

	// Env is the complete environment of the attempt, KEY=VALUE.
	Env []string
	// TaskEnv is the tail of Env that the workflow defines for this attempt:
	// the workflow's env (run parameters applied), the task's env, the
	// PICOFLOW_* variables and upstream outputs. Remote executors send these
	// and never the local environment.
	TaskEnv []string
	// RefKeys are the TaskEnv keys whose value is the definition's own text
	// and holds "${": the only values in which ${secret:NAME} and ${env:VAR}
	// are resolved. Run parameters and upstream outputs are data and are
	// never resolved, so that a value arriving from outside (an HTTP
	// response, a trigger) cannot name a secret.
	RefKeys map[string]bool
	// Timeout bounds the attempt (0: none). The executor enforces it and
	// reports StatusTimeout.
	Timeout time.Duration
	// KillGrace is how long a process gets between SIGTERM and SIGKILL.
	KillGrace time.Duration
	// Log receives the attempt's stdout and stderr, streamed.
	Log *os.File
	// Stdout and Stderr, when set, receive the attempt's output streams in
	// place of Log: the secret wrapper sets them to writers that mask secret
	// values on their way into Log. Executors write through Streams; one that
	// merges the two streams of a process into one (shell) uses Stdout.
	Stdout, Stderr io.Writer
	// OutputFile is the path exported as $PICOFLOW_OUTPUT.
	OutputFile string
	// Started, when set, is called once a local process group exists.
	Started func(pgid int)
	// Commit is set when the executor Gates (see Gater): it blocks until
	// the batch that starts the attempt is committed and says whether it
	// was. On false the task must never run. open, when not nil, is
	// called with that answer exactly once before Commit returns, maybe
	// on another goroutine (the engine's loop, as soon as it knows): an
	// executor that holds its task behind a gate opens it there, and the
	// task goes on without waiting for Execute's goroutine to run again.
	// It must be quick and must not block.
	Commit func(open func(ok bool)) bool
}

// Gater is an Executor that can get an attempt ready while the batch that
// starts it is being committed, so that the work (a fork and an exec)
// overlaps the commit's fsync. When Gates says so, the engine calls
// Execute before the commit with Request.Commit set: Execute may prepare
// whatever runs none of the task's own code, calls Commit before any of it
// runs, and on false undoes what it prepared and returns (its result is
// dropped). An Execute that returns without calling Commit is waited for
// as if it had.
type Gater interface {
	Executor
	Gates() bool
}

// Gates reports whether ex is a Gater that gates.
func Gates(ex Executor) bool {
	g, ok := ex.(Gater)
	return ok && g.Gates()
}

// Streams returns where the attempt's output goes: Stdout and Stderr when
// set, else Log (io.Discard when there is no Log).
func (r *Request) Streams() (stdout, stderr io.Writer) {
	var log io.Writer = io.Discard
	if r.Log != nil {
		log = r.Log
	}
	stdout, stderr = r.Stdout, r.Stderr
	if stdout == nil {
		stdout = log
	}
	if stderr == nil {
		stderr = log
	}
	return stdout, stderr
}

// Status of an attempt's outcome.
type Status uint8

const (
	Success Status = iota + 1
	Failed
	TimedOut
	Interrupted
)

func (s Status) String() string {
	switch s {
	case Success:
		return "success"
	case Failed:
		return "failed"
	case TimedOut:
		return "timeout"
	case Interrupted:
		return "interrupted"
	}
	return "unknown"
}

// Result is the outcome of an attempt.
type Result struct {
	Status   Status
	ExitCode int   // process exit code; -1 when killed by a signal
	Err      error // why it did not succeed, for people
	// NoRetry marks a failure that retrying cannot fix (an HTTP 404, a
	// refused host key): the engine fails the task at once.
	NoRetry bool
	// RetryAfter is a server's minimum wait before a retry (HTTP Retry-After).
	RetryAfter time.Duration
	// Outputs are values the executor extracted itself (HTTP JSON fields);
	// shell outputs come from OutputFile and are read by the engine.
	Outputs map[string]string
	// CPU is the processor time (user and system) the task's processes
	// used, as far as the executor knows (a shell's, with the children it
	// waited for); 0 when it does not.
	CPU time.Duration
}

// Note writes a line of PicoFlow's own into the attempt's log, stamped with
// the time: what PicoFlow did to the task (stopped it, killed it), so that
// the log says why the output ends where it does.
func Note(req *Request, format string, args ...any) {
	stdout, _ := req.Streams()
	fmt.Fprintf(stdout, "\n[picoflow %s] %s\n", time.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, args...))
}

// LogError is the failure of an attempt whose log could not be written:
// Err names the cause (no space left on device), Exit what the task
// reported when it had ended on its own (its failure was most likely its
// own write to the log failing).
type LogError struct {
	Path string
	Err  error
	Exit error
}

func (e *LogError) Error() string {
	s := fmt.Sprintf("write log %s: %v", e.Path, e.Err)
	if e.Exit != nil {
		s += fmt.Sprintf(" (the task then ended with %v)", e.Exit)
	}
	return s
}

func (e *LogError) Unwrap() error { return e.Err }

// LogFailed makes res the failure of an attempt whose log could not be
// written (werr), unless werr is nil, res already names the log, or the
// attempt timed out or was interrupted (that says more).
func LogFailed(req *Request, res *Result, werr error) {
	if werr == nil { // before le, which escapes: no allocation per attempt
		return
	}
	var le *LogError
	if errors.As(res.Err, &le) || (res.Status != Success && res.Status != Failed) {
		return
	}
	path := "(no log)"
	if req.Log != nil {
		path = req.Log.Name()
	}
	var pe *os.PathError
	if errors.As(werr, &pe) {
		werr = pe.Err
	}
	var exit error
	if res.Status == Failed {
		exit = res.Err
	}
	res.Status, res.Err = Failed, &LogError{Path: path, Err: werr, Exit: exit}
	if res.ExitCode == 0 {
		res.ExitCode = -1
	}
}

// CheckLog tells, after a failed attempt whose process wrote straight to
// the log file, whether that file could not be written: when its file
// system has no space left, PicoFlow's note of the failure is written to it,
// and the error of that write is returned. A task whose writes to a full
// disk fail usually exits 1 on that; this names the cause.
func CheckLog(req *Request, res Result) error {
	if req.Log == nil || res.Status != Failed || !diskFull(req.Log) {
		return nil
	}
	_, err := fmt.Fprintf(req.Log, "\n[picoflow %s] the task failed: %v\n", time.Now().UTC().Format(time.RFC3339), res.Err)
	return err
}
