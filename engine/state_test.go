package engine

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/picoflow/picoflow/journal"
)

// TestReplayEqualsEngineRun checks that Replay, which folds the journal
// with no executor, rebuilds exactly the Run the engine returned: the
// journal is the whole truth about a run.
func TestReplayEqualsEngineRun(t *testing.T) {
	tests := []struct {
		name  string
		tasks []task
	}{
		{name: "success", tasks: []task{
			{name: "a", cmd: `echo "K=v" >> "$PICOFLOW_OUTPUT"`},
			{name: "b", cmd: "true", deps: []string{"a"}},
			{name: "c", cmd: "true", deps: []string{"a"}},
			{name: "d", cmd: "true", deps: []string{"b", "c"}},
		}},
		{name: "retries-skips-and-failures", tasks: []task{
			{name: "flaky", cmd: `[ $PICOFLOW_ATTEMPT -ge 2 ]`, extra: "retry: 2"},
			{name: "broken", cmd: "echo boom; exit 3", extra: "retry: 1"},
			{name: "tolerated", cmd: "exit 1", extra: "continue_on_failure: true"},
			{name: "after-broken", cmd: "true", deps: []string{"broken"}},
			{name: "after-tolerated", cmd: `echo "X=1" >> "$PICOFLOW_OUTPUT"; echo junk >> "$PICOFLOW_OUTPUT"`,
				deps: []string{"tolerated", "flaky"}},
			{name: "slow", cmd: "sleep 300", extra: "timeout: 100ms"},
		}},
		// 64 tasks or more: the engine makes their states at once (reserve).
		{name: "wide", tasks: wideTasks(70)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t)
			wf := parse(t, wfYAML("replay", "max_parallel: 3\nbackoff: {initial: 10ms}", "", tc.tasks...))
			r := h.start(wf)
			if r.Status == RunRunning {
				t.Fatalf("run still running: %s", failures(r))
			}
			if diff := diffRuns(r, h.replay(r.ID)); diff != "" {
				t.Errorf("replay differs from the engine's run (engine → replay):\n%s", diff)
			}
		})
	}
}

// wideTasks returns n tasks: one that fails, one skipped after it, the
// rest succeeding.
func wideTasks(n int) []task {
	out := []task{{name: "fails", cmd: "exit 1"}, {name: "skipped", cmd: "true", deps: []string{"fails"}}}
	for i := len(out); i < n; i++ {
		out = append(out, task{name: fmt.Sprintf("t%d", i), cmd: "true"})
	}
	return out
}

// diffRuns lists the fields in which two runs differ.
func diffRuns(a, b *Run) string {
	var out []string
	va, vb := reflect.ValueOf(*a), reflect.ValueOf(*b)
	for i := range va.NumField() {
		f := va.Type().Field(i)
		if f.Name == "Tasks" {
			continue
		}
		if !f.IsExported() { // summary and tally
			if !va.Field(i).Equal(vb.Field(i)) {
				out = append(out, fmt.Sprintf("  %s: %v → %v", f.Name, va.Field(i), vb.Field(i)))
			}
			continue
		}
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			out = append(out, fmt.Sprintf("  %s: %v → %v", f.Name, va.Field(i), vb.Field(i)))
		}
	}
	names := map[string]bool{}
	for n := range a.Tasks {
		names[n] = true
	}
	for n := range b.Tasks {
		names[n] = true
	}
	for n := range names {
		ta, tb := a.Tasks[n], b.Tasks[n]
		if ta == nil || tb == nil {
			out = append(out, fmt.Sprintf("  task %s: %v → %v", n, ta, tb))
			continue
		}
		sa, sb := reflect.ValueOf(*ta), reflect.ValueOf(*tb)
		for i := range sa.NumField() {
			fa, fb := sa.Field(i), sb.Field(i)
			if name := sa.Type().Field(i).Name; name == "text" {
				if a, b := ta.Text(), tb.Text(); !reflect.DeepEqual(a, b) {
					out = append(out, fmt.Sprintf("  task %s text: %+v → %+v", n, a, b))
				}
				continue
			}
			if !sa.Type().Field(i).IsExported() { // the times: unix nanoseconds
				if !fa.Equal(fb) {
					out = append(out, fmt.Sprintf("  task %s %s: %v → %v", n, sa.Type().Field(i).Name, fa, fb))
				}
				continue
			}
			if !reflect.DeepEqual(fa.Interface(), fb.Interface()) {
				out = append(out, fmt.Sprintf("  task %s %s: %v → %v", n, sa.Type().Field(i).Name, sa.Field(i), sb.Field(i)))
			}
		}
	}
	sort.Strings(out)
	if len(out) == 0 && !reflect.DeepEqual(a, b) {
		return "  (differs, but in no field compared)"
	}
	return strings.Join(out, "\n")
}

// TestTaskTextCopyOnWrite: the run loop plans on shallow copies of a
// task's state (stage), which share its text; an event applied to a copy
// must leave the original's text as it was, and a task whose events carry
// no words keeps no text at all (a big DAG's states stay 64 bytes).
func TestTaskTextCopyOnWrite(t *testing.T) {
	if n := unsafe.Sizeof(TaskState{}); n > 64 {
		t.Errorf("TaskState is %d bytes, want 64 at most", n)
	}
	var orig TaskState
	orig.apply(&journal.Event{Type: journal.TaskStarted, Attempt: 1, Time: 1})
	orig.apply(&journal.Event{Type: journal.TaskFinished, Attempt: 1, Time: 2, Status: journal.StatusSuccess})
	if orig.text != nil {
		t.Fatalf("a success without outputs or reason allocated a text: %+v", *orig.text)
	}
	orig.apply(&journal.Event{Type: journal.TaskRetrying, Attempt: 1, Time: 3, Status: journal.StatusFailed,
		Error: "exit status 3", Tail: "boom\n", BackoffMS: 1500})
	want := TaskText{Error: "exit status 3", Tail: "boom\n", Backoff: 1500 * time.Millisecond}
	if got := orig.Text(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after a retry: %+v, want %+v", got, want)
	}
	staged := orig
	staged.apply(&journal.Event{Type: journal.TaskStarted, Attempt: 2, Time: 4})
	staged.apply(&journal.Event{Type: journal.TaskFinished, Attempt: 2, Time: 5, Status: journal.StatusSuccess,
		Outputs: map[string]string{"K": "v"}})
	if got := orig.Text(); !reflect.DeepEqual(got, want) {
		t.Errorf("the staged copy changed the original's text: %+v, want %+v", got, want)
	}
	if got := staged.Text(); got.Error != "" || got.Tail != "" || got.Outputs["K"] != "v" || got.Backoff != want.Backoff {
		t.Errorf("staged copy: %+v, want no error or tail, outputs K=v, the backoff kept", got)
	}
	if got := staged.Outputs(); got["K"] != "v" {
		t.Errorf("Outputs() = %v", got)
	}
}

// TestReserveKeepsReplayedStates: a resumed run's loop makes the states
// of the tasks its journal never mentioned in one block and one map of
// the full size; the states the replay made stay the same objects.
func TestReserveKeepsReplayedStates(t *testing.T) {
	wf := parse(t, wfYAML("reserve", "", "", independentTasks(100)...))
	r := &Run{Tasks: map[string]*TaskState{}}
	done := r.Task(wf.Tasks[3].Name)
	done.Status = Success
	gone := r.Task("renamed-away") // the journal names a task the definition lacks
	reserve(r, wf.Tasks)
	if len(r.Tasks) != len(wf.Tasks)+1 {
		t.Fatalf("%d states, want %d", len(r.Tasks), len(wf.Tasks)+1)
	}
	if r.Tasks[wf.Tasks[3].Name] != done || r.Tasks["renamed-away"] != gone {
		t.Error("reserve replaced a state the replay made")
	}
	for _, tk := range wf.Tasks {
		if st := r.Tasks[tk.Name]; st == nil || (st != done && *st != (TaskState{})) {
			t.Errorf("task %s: state %v, want a pending one", tk.Name, st)
		}
	}
}

// TestInterruptedAmongMany: among hundreds of finished runs, Interrupted
// returns the runs that started and never finished, running (a damaged run
// an operator resumed included, a damaged one not), oldest first, as a
// look at every run says.
func TestInterruptedAmongMany(t *testing.T) {
	s := NewState()
	seq := uint64(0)
	apply := func(typ journal.Type, run string) {
		seq++
		if err := s.Apply(&journal.Event{Seq: seq, Type: typ, Run: run, Status: journal.StatusSuccess}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 500 {
		run := fmt.Sprintf("r%03d", i)
		apply(journal.RunStarted, run)
		switch i {
		case 7, 250, 499: // interrupted
		case 100: // damaged, resumed
			apply(journal.RunDamaged, run)
			apply(journal.RunResumed, run)
		case 300: // damaged
			apply(journal.RunDamaged, run)
		default:
			apply(journal.RunFinished, run)
		}
		if i == 200 {
			if got := s.Interrupted(); len(got) != 2 {
				t.Fatalf("after 200 runs: %d interrupted, want 2", len(got))
			}
		}
	}
	var want []string
	for id, r := range s.Runs {
		if r.Status == RunRunning {
			want = append(want, id)
		}
	}
	sort.Strings(want)
	var got []string
	for _, r := range s.Interrupted() {
		got = append(got, r.ID)
	}
	if !reflect.DeepEqual(got, want) || len(got) != 4 {
		t.Fatalf("Interrupted: %v, want %v", got, want)
	}
	if len(s.unfinished) > 2*5+64 {
		t.Errorf("%d runs kept as unfinished, want a few", len(s.unfinished))
	}
}
