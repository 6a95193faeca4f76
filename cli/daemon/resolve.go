package daemon

import (
	"fmt"
	"time"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/journal"
)

// Resolutions of an in-doubt task (Request.Status of OpResolve).
const (
	ResolveSucceeded = journal.StatusSuccess
	ResolveFailed    = journal.StatusFailed
	ResolveRerun     = "rerun"
)

// RefusedError is a request refused for a reason the client reports with
// its own exit code: Code is one of the Code constants.
type RefusedError struct {
	Code string
	Msg  string
}

func (e *RefusedError) Error() string { return e.Msg }

// ResolveEvent checks that task of run is in doubt in st and returns the
// TaskResolved event that settles it. It is the one rule for `picoflow
// resolve`, whether the CLI writes the event or hands it to the daemon.
func ResolveEvent(st *engine.State, run, task, status, note string, now time.Time) (*journal.Event, error) {
	r := st.Runs[run]
	if r == nil {
		return nil, &RefusedError{Code: CodeNotFound, Msg: fmt.Sprintf("no run %s in the journal", run)}
	}
	switch status {
	case ResolveSucceeded, ResolveFailed, ResolveRerun:
	default:
		return nil, &RefusedError{Code: CodeInvalid, Msg: fmt.Sprintf("resolution %q: want %s, %s or %s", status, ResolveSucceeded, ResolveFailed, ResolveRerun)}
	}
	t := r.Tasks[task]
	if t == nil || t.Status != engine.InDoubt {
		state := "pending"
		if t != nil {
			state = t.Status.String()
		}
		return nil, &RefusedError{Code: CodeInvalid, Msg: fmt.Sprintf("task %s of run %s is %s, not in doubt", task, r.ID, state)}
	}
	if note == "" {
		note = "resolved by operator"
	}
	return &journal.Event{Type: journal.TaskResolved, Time: now.UnixNano(), Run: r.ID,
		Task: task, Attempt: t.Attempt, Status: status, Reason: note}, nil
}
