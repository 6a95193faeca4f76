package projector

import (
	"fmt"

	"github.com/picoflow/picoflow/journal"
)

// A task_process only records the process group of a running attempt,
// and the attempt's end follows it, most often in the same batch. The
// applier keeps it pending until the next event of its task: the end of
// that attempt writes it in its own two statements (sqlAttemptEnd,
// sqlTaskEnd); any other event of the task, an event of its run as a
// whole, and the end of the batch write it first with the statements of
// task_process. Each row ends as if task_process had been applied on its
// own (TestRebuildEqualsIncremental projects in batches of 1, 3 and 2,048).

type taskKey struct{ run, task string }

type pendingPGID struct{ attempt, pgid int }

// holdPGID keeps the process group of task_process e pending.
func (a *applier) holdPGID(e *journal.Event) error {
	k := taskKey{e.Run, e.Task}
	if err := a.writePGID(k); err != nil {
		return err
	}
	a.pgids[k] = pendingPGID{attempt: e.Attempt, pgid: e.PGID}
	return nil
}

// takePGID returns the process group pending for the attempt e ends, to
// be written with its end (nil: none), and writes any other pending for
// e's task first.
func (a *applier) takePGID(e *journal.Event) (any, error) {
	k := taskKey{e.Run, e.Task}
	p, ok := a.pgids[k]
	if !ok {
		return nil, nil
	}
	ends := (e.Type == journal.TaskFinished || e.Type == journal.TaskRetrying) && e.ReusedFrom == ""
	if !ends || p.attempt != e.Attempt {
		return nil, a.writePGID(k)
	}
	delete(a.pgids, k)
	return p.pgid, nil
}

// writePGID writes the process group pending for task k, if any.
func (a *applier) writePGID(k taskKey) error {
	p, ok := a.pgids[k]
	if !ok {
		return nil
	}
	delete(a.pgids, k)
	_, err := a.exec(a.attemptPGID, p.pgid, k.run, k.task, p.attempt)
	if err == nil {
		_, err = a.exec(a.taskPGID, p.pgid, k.run, k.task, p.attempt)
	}
	if err != nil {
		return fmt.Errorf("store process group of %s/%s: %w", k.run, k.task, err)
	}
	return nil
}

// writePGIDs writes every process group pending for run ("": of every run).
func (a *applier) writePGIDs(run string) error {
	for k := range a.pgids {
		if run == "" || k.run == run {
			if err := a.writePGID(k); err != nil {
				return err
			}
		}
	}
	return nil
}
