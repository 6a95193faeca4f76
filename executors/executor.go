package executors

import (
	"context"
	"os"
	"time"

	"github.com/picoflow/picoflow/engine/workflow"
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
	Task     *workflow.Task
	Attempt  int

	// Env is the complete environment of the attempt, KEY=VALUE.
	Env []string
	// Timeout bounds the attempt (0: none). The executor enforces it and
	// reports StatusTimeout.
	Timeout time.Duration
	// KillGrace is how long a process gets between SIGTERM and SIGKILL.
	KillGrace time.Duration
	// Log receives the attempt's stdout and stderr, streamed.
	Log *os.File
	// OutputFile is the path exported as $PICOFLOW_OUTPUT.
	OutputFile string
	// Started, when set, is called once a local process group exists.
	Started func(pgid int)
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
}
