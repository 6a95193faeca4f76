package engine_test

import (
	"errors"
	"testing"
	"time"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/journal"
)

// TestResolve checks the one rule of picoflow resolve: what it refuses,
// and that an accepted resolution is committed before it is applied.
func TestResolve(t *testing.T) {
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	state := func() *engine.State {
		st := engine.NewState()
		for _, e := range []*journal.Event{
			{Seq: 1, Type: journal.RunStarted, Run: "r1", Workflow: "wf"},
			{Seq: 2, Type: journal.TaskStarted, Run: "r1", Task: "pay", Attempt: 1},
			{Seq: 3, Type: journal.TaskInDoubt, Run: "r1", Task: "pay", Attempt: 1},
			{Seq: 4, Type: journal.TaskStarted, Run: "r1", Task: "log", Attempt: 1},
			// A finished run is replayed as a summary: no task states.
			{Seq: 5, Type: journal.RunStarted, Run: "r3", Workflow: "wf"},
			{Seq: 6, Type: journal.TaskInDoubt, Run: "r3", Task: "pay", Attempt: 1},
			{Seq: 7, Type: journal.RunFinished, Run: "r3", Status: journal.StatusFailed},
		} {
			if err := st.Apply(e); err != nil {
				t.Fatal(err)
			}
		}
		return st
	}
	for _, tc := range []struct {
		name, run, task, status string
		err                     error
		msg                     string
		want                    engine.TaskStatus
	}{
		{name: "succeeded", run: "r1", task: "pay", status: journal.StatusSuccess, want: engine.Success},
		{name: "failed", run: "r1", task: "pay", status: journal.StatusFailed, want: engine.Failed},
		{name: "rerun", run: "r1", task: "pay", status: journal.StatusRerun, want: engine.Pending},
		{name: "no such run", run: "r2", task: "pay", status: journal.StatusRerun, err: engine.ErrNoRun,
			msg: "no run r2 in the journal: no such run"},
		{name: "running task", run: "r1", task: "log", status: journal.StatusRerun, err: engine.ErrNotInDoubt,
			msg: "task log of run r1 is running, not in doubt: task not in doubt"},
		{name: "unknown task", run: "r1", task: "nope", status: journal.StatusRerun, err: engine.ErrNotInDoubt,
			msg: "task nope of run r1 is pending, not in doubt: task not in doubt"},
		{name: "finished run", run: "r3", task: "pay", status: journal.StatusSuccess, err: engine.ErrNotInDoubt,
			msg: "task pay of run r3 is not in doubt: the run finished with status failed: task not in doubt"},
		{name: "bad resolution", run: "r1", task: "pay", status: "maybe", err: engine.ErrBadResolution,
			msg: `resolution "maybe": want success, failed or rerun: unknown resolution`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, j := state(), &memJournal{seq: 4}
			ev, err := engine.Resolve(j, st, tc.run, tc.task, tc.status, "", now)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || err.Error() != tc.msg || j.seq != 4 {
					t.Fatalf("err %v (%d entries), want %q and nothing journaled", err, j.seq, tc.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.Seq != 5 || ev.Type != journal.TaskResolved || ev.Attempt != 1 || ev.Reason != "resolved by operator" {
				t.Errorf("event %+v", ev)
			}
			if got := st.Runs["r1"].Tasks["pay"].Status; got != tc.want || st.LastSeq != 5 {
				t.Errorf("task %s (state at entry %d), want %s at entry 5", got, st.LastSeq, tc.want)
			}
		})
	}
}
