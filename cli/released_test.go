package cli

import (
	"context"
	"testing"

	"github.com/picoflow/picoflow/executors"
)

// TestForcedMessage: a forced exit names the groups of tasks that ran as
// killed, and the shells that waited at their start gate apart.
func TestForcedMessage(t *testing.T) {
	released := func(g int) bool { return g < 100 }
	tail := "; the journal is consistent and the run resumable"
	tests := []struct {
		name   string
		killed []int
		want   string
	}{
		{"none", nil, "forced exit" + tail},
		{"ran", []int{7, 9}, "forced exit: killed 2 task process group(s) (SIGKILL to pgid 7, 9)" + tail},
		{"gated", []int{100, 101}, "forced exit: ended 2 shell(s) still waiting at their start gate, none of whose task ran (pgid 100, 101)" + tail},
		{"both", []int{7, 100}, "forced exit: killed 1 task process group(s) (SIGKILL to pgid 7); ended 1 shell(s) still waiting at their start gate, none of whose task ran (pgid 100)" + tail},
	}
	for _, tc := range tests {
		if got := forcedMessage(tc.killed, released); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// startedExec reports a process group as started, as a shell does once its
// gate opened, and notes whether releasedGroups held it meanwhile.
type startedExec struct{ during bool }

func (e *startedExec) Execute(_ context.Context, req *executors.Request) executors.Result {
	req.Started(424242)
	e.during = releasedGroups.has(424242)
	return executors.Result{}
}

func (e *startedExec) Gates() bool { return true }

// TestRecordReleased: a group is released from Started until its attempt
// returns; the engine's own Started still runs; gating passes through.
func TestRecordReleased(t *testing.T) {
	ex := &startedExec{}
	w := recordReleased(ex)
	if !executors.Gates(w) {
		t.Error("the wrapper hides that the shell executor gates")
	}
	var engineSaw int
	w.Execute(context.Background(), &executors.Request{Started: func(g int) { engineSaw = g }})
	if !ex.during || engineSaw != 424242 {
		t.Errorf("during the attempt: released %v, engine's Started got %d; want true, 424242", ex.during, engineSaw)
	}
	if releasedGroups.has(424242) {
		t.Error("the group is still released after its attempt returned")
	}
}
