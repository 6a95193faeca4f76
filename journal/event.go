package journal

import (
	"fmt"
	"time"
)

// Type identifies an event. The numbers are written to disk: the list is
// append-only, a number is never reused or renumbered.
type Type uint16

const (
	_ Type = iota // 0 is never written: a zeroed entry must not decode

	RunStarted      // 1: a run began; carries the definition that runs
	RunFinished     // 2: a run reached a final status
	TaskStarted     // 3: an attempt is about to be launched
	TaskProcess     // 4: the attempt's process group id (written lazily)
	TaskFinished    // 5: an attempt ended (success, failed, timeout, interrupted)
	TaskRetrying    // 6: a retry is scheduled after a backoff wait
	TaskSkipped     // 7: a task will never run (an upstream failed)
	RunResumed      // 8: a process took over an interrupted run
	TaskInDoubt     // 9: an interrupted non-idempotent attempt awaits a decision
	TaskResolved    // 10: an operator settled an in-doubt task
	ScheduleFired   // 11: the daemon fired a schedule
	ScheduleSkipped // 12: the daemon skipped a due fire (overlap)
	RunDamaged      // 13: salvage lost events that may belong to this run
	RunCanceled     // 14: an operator (or a signal) canceled the run

	typeEnd // one past the last known type
)

var typeNames = [...]string{
	RunStarted:      "run_started",
	RunFinished:     "run_finished",
	TaskStarted:     "task_started",
	TaskProcess:     "task_process",
	TaskFinished:    "task_finished",
	TaskRetrying:    "task_retrying",
	TaskSkipped:     "task_skipped",
	RunResumed:      "run_resumed",
	TaskInDoubt:     "task_in_doubt",
	TaskResolved:    "task_resolved",
	ScheduleFired:   "schedule_fired",
	ScheduleSkipped: "schedule_skipped",
	RunDamaged:      "run_damaged",
	RunCanceled:     "run_canceled",
}

// Known reports whether t is a type this version understands.
func (t Type) Known() bool { return t > 0 && t < typeEnd }

func (t Type) String() string {
	if t.Known() {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint16(t))
}

// Statuses of task attempts and runs as written in events.
const (
	StatusSuccess     = "success"
	StatusFailed      = "failed"
	StatusTimeout     = "timeout"
	StatusInterrupted = "interrupted" // the attempt was cut short by a shutdown or a crash
	StatusSkipped     = "skipped"
	// StatusCanceled: a run stopped and not to be resumed; a task that will
	// not run (task_skipped) or whose attempt was stopped (task_finished)
	// because its run was canceled.
	StatusCanceled = "canceled"
	StatusRerun    = "rerun" // task_resolved: the in-doubt task runs again
)

// Event is one state transition. Seq and Type live in the envelope; the rest
// is the JSON payload. Which fields are set depends on Type (see
// ARCHITECTURE.md, "Events"); every field is optional on the wire so that
// adding one never breaks old journals.
type Event struct {
	Seq  uint64 `json:"-"`
	Type Type   `json:"-"`

	Time    int64  `json:"ts"` // unix nanoseconds, from the injected clock
	Run     string `json:"run,omitempty"`
	Task    string `json:"task,omitempty"`
	Attempt int    `json:"attempt,omitempty"`

	// RunStarted
	Workflow   string            `json:"workflow,omitempty"`
	DefHash    string            `json:"def_hash,omitempty"`
	Definition string            `json:"definition,omitempty"` // the YAML bytes that run
	Source     string            `json:"source,omitempty"`     // the file they came from
	Trigger    string            `json:"trigger,omitempty"`    // manual, schedule, catchup, rerun
	Params     map[string]string `json:"params,omitempty"`
	FireTime   int64             `json:"fire_time,omitempty"` // ScheduleFired / schedule runs
	RerunOf    string            `json:"rerun_of,omitempty"`  // trigger rerun: the run it reran

	// TaskStarted / TaskProcess
	LogPath string `json:"log,omitempty"`
	PGID    int    `json:"pgid,omitempty"`
	Resumed bool   `json:"resumed,omitempty"` // attempt started after an interruption

	// TaskFinished, RunFinished, TaskSkipped, TaskResolved
	Status     string            `json:"status,omitempty"`
	ExitCode   int               `json:"exit_code,omitempty"` // -1 when killed by a signal
	Error      string            `json:"error,omitempty"`
	DurationMS int64             `json:"duration_ms,omitempty"`
	Tail       string            `json:"tail,omitempty"` // last bytes of the attempt's output
	Outputs    map[string]string `json:"outputs,omitempty"`
	// Retryable is written by no release (executors.Result.NoRetry decides
	// retries, in the engine); it stays because the frozen version 1
	// journal (testdata/journal/v1) carries it and must re-encode as is.
	Retryable bool   `json:"retryable,omitempty"`
	Reason    string `json:"reason,omitempty"`
	// RunCanceled: who asked (user@host/pid, or "signal"); Reason is theirs.
	By string `json:"by,omitempty"`
	// ReusedFrom (TaskFinished of a rerun): the task did not run in this
	// run; its result and outputs are those of that earlier run.
	ReusedFrom string `json:"reused_from,omitempty"`

	// TaskRetrying
	RetryAt   int64 `json:"retry_at,omitempty"` // unix nanoseconds
	BackoffMS int64 `json:"backoff_ms,omitempty"`
}

// At returns the event time.
func (e *Event) At() time.Time { return time.Unix(0, e.Time) }
