package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// Why Resolve refuses (match with errors.Is).
var (
	ErrNoRun         = errors.New("no such run")
	ErrNotInDoubt    = errors.New("task not in doubt")
	ErrBadResolution = errors.New("unknown resolution")
)

// Resolve settles an in-doubt task of run as status (journal.StatusSuccess,
// StatusFailed or StatusRerun): it checks the task against st, appends the
// task_resolved event durably to j, then applies it to st, and returns it.
// It is the one rule for `picoflow resolve`, whether the CLI writes the
// workflow's journal or the daemon that holds it does.
func Resolve(j Journal, st *State, run, task, status, note string, now time.Time) (*journal.Event, error) {
	ev, err := resolveEvent(st, run, task, status, note, now)
	if err != nil {
		return nil, err
	}
	if err := j.Append(ev); err != nil {
		return nil, fmt.Errorf("resolve task %s of run %s: %w", task, run, err)
	}
	return ev, st.Apply(ev)
}

// resolveEvent stages the task_resolved event of Resolve.
func resolveEvent(st *State, run, task, status, note string, now time.Time) (*journal.Event, error) {
	r := st.Runs[run]
	if r == nil {
		return nil, fmt.Errorf("no run %s in the journal: %w", run, ErrNoRun)
	}
	switch status {
	case journal.StatusSuccess, journal.StatusFailed, journal.StatusRerun:
	default:
		return nil, fmt.Errorf("resolution %q: want %s, %s or %s: %w", status,
			journal.StatusSuccess, journal.StatusFailed, journal.StatusRerun, ErrBadResolution)
	}
	if r.Summarized() { // finished: an in-doubt task was canceled by its end
		return nil, fmt.Errorf("task %s of run %s is not in doubt: the run finished with status %s: %w", task, r.ID, r.Status, ErrNotInDoubt)
	}
	t := r.Tasks[task]
	if t == nil || t.Status != InDoubt {
		state := Pending
		if t != nil {
			state = t.Status
		}
		return nil, fmt.Errorf("task %s of run %s is %s, not in doubt: %w", task, r.ID, state, ErrNotInDoubt)
	}
	if note == "" {
		note = "resolved by operator"
	}
	return &journal.Event{Type: journal.TaskResolved, Time: now.UnixNano(), Run: r.ID,
		Task: task, Attempt: int(t.Attempt), Status: status, Reason: note}, nil
}
