package engine

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/picoflow/picoflow/journal"
)

// TestRerunPlan checks which tasks a rerun runs and which it reuses, for
// each way of selecting them, over a DAG a → b → c, a → d, and e alone.
func TestRerunPlan(t *testing.T) {
	wf := parse(t, wfYAML("plan", "", "",
		task{name: "a", cmd: "true"}, task{name: "b", cmd: "true", deps: []string{"a"}},
		task{name: "c", cmd: "true", deps: []string{"b"}}, task{name: "d", cmd: "true", deps: []string{"a"}},
		task{name: "e", cmd: "true"}))
	run := func(status map[string]TaskStatus) *Run {
		r := &Run{ID: "orig", Tasks: map[string]*TaskState{}}
		for n, s := range status {
			r.Tasks[n] = &TaskState{Status: s}
		}
		return r
	}
	failedB := map[string]TaskStatus{"a": Success, "b": Failed, "c": Skipped, "d": Success, "e": Success}
	allOK := map[string]TaskStatus{"a": Success, "b": Success, "c": Success, "d": Success, "e": Success}
	for _, c := range []struct {
		name      string
		status    map[string]TaskStatus
		from      []string
		failed    bool
		run       string
		reuse     string
		errorText string
	}{
		{name: "failed", status: failedB, failed: true, run: "b,c", reuse: "a,d,e"},
		{name: "from a task reruns its downstream", status: allOK, from: []string{"a"}, run: "a,b,c,d", reuse: "e"},
		{name: "from two tasks", status: allOK, from: []string{"c", "e"}, run: "c,e", reuse: "a,b,d"},
		// Without --failed, b's failure is reused; c, skipped, is never reused: it is skipped again.
		{name: "from another task reuses a failure", status: failedB, from: []string{"d"}, run: "c,d", reuse: "a,b,e"},
		{name: "timed out counts as failed", status: map[string]TaskStatus{"a": Success, "b": Success, "c": TimedOut, "d": Success, "e": Success},
			failed: true, run: "c", reuse: "a,b,d,e"},
		{name: "never ran (canceled run)", status: map[string]TaskStatus{"a": Success, "b": Success}, from: []string{"e"}, run: "c,d,e", reuse: "a,b"},
		{name: "nothing failed", status: allOK, failed: true, run: "", reuse: "a,b,c,d,e"},
		{name: "unknown task", status: allOK, from: []string{"bb"}, errorText: `workflow plan has no task "bb"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			gotRun, gotReuse, err := RerunPlan(wf, run(c.status), c.from, c.failed)
			if c.errorText != "" {
				if !errors.Is(err, ErrUnknownTask) || !strings.Contains(err.Error(), c.errorText) {
					t.Fatalf("error %v, want %q", err, c.errorText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(gotRun, ",") != c.run || strings.Join(gotReuse, ",") != c.reuse {
				t.Errorf("run %v reuse %v, want run %s reuse %s", gotRun, gotReuse, c.run, c.reuse)
			}
		})
	}
}

// batchJournal records the batches of Append.
type batchJournal struct {
	Journal
	batches [][]journal.Type
}

func (b *batchJournal) Append(evs ...*journal.Event) error {
	var types []journal.Type
	for _, e := range evs {
		types = append(types, e.Type)
	}
	b.batches = append(b.batches, types)
	return b.Journal.Append(evs...)
}

// TestRerunReuses reruns a run whose middle task failed: the rerun's
// RunStarted and its reused results are one durable batch, the reused
// task does not run, its output reaches the task that runs, and the
// journal alone rebuilds the same state.
func TestRerunReuses(t *testing.T) {
	h := newHome(t)
	wf := parse(t, wfYAML("reuse", "", "",
		task{name: "a", cmd: ledger("a") + `; echo "V=$(cat "$T/v")" >> "$PICOFLOW_OUTPUT"`},
		task{name: "b", cmd: ledger("b") + `; [ "$PICOFLOW_OUT_A_V" = first ] && [ -e "$T/fixed" ]`, deps: []string{"a"}}))
	write(t, h.work+"/v", "first")
	orig := h.start(wf)
	if orig.Status != RunFailed {
		t.Fatalf("first run: %s", orig.Status)
	}
	write(t, h.work+"/v", "second")
	write(t, h.work+"/fixed", "")
	runs, reuse, err := RerunPlan(wf, orig, nil, true)
	if err != nil || !slices.Equal(runs, []string{"b"}) || !slices.Equal(reuse, []string{"a"}) {
		t.Fatalf("plan: run %v reuse %v %v", runs, reuse, err)
	}
	bj := &batchJournal{Journal: h.j}
	r, err := h.engine(func(o *Options) { o.Journal = bj }).Rerun(context.Background(), wf, orig, reuse)
	if err != nil || r.Status != RunSuccess {
		t.Fatalf("rerun: %v %v", r, err)
	}
	if got := h.lines("ledger"); !slices.Equal(got, []string{"a", "b", "b"}) {
		t.Errorf("ledger %v: a must not run in the rerun", got)
	}
	if !slices.Equal(bj.batches[0], []journal.Type{journal.RunStarted, journal.TaskFinished}) {
		t.Errorf("first batch %v, want run_started with the reused task_finished", bj.batches[0])
	}
	back := h.replay(r.ID)
	if back.RerunOf != orig.ID || back.Trigger != TriggerRerun || back.Tasks["a"].Text().ReusedFrom != orig.ID ||
		back.Tasks["a"].Outputs()["V"] != "first" || back.Tasks["b"].Text().ReusedFrom != "" || back.Status != RunSuccess {
		t.Errorf("replayed rerun: %+v a=%+v", back, back.Tasks["a"])
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRerunPlanHandlersAndCancels: a run's handlers always run again in a
// rerun (they belong to each run), and a task a cancel stopped is never
// reused, like a skipped one.
func TestRerunPlanHandlersAndCancels(t *testing.T) {
	wf := parse(t, wfYAML("plan2", "", "on_failure:\n  - {name: alert, type: shell, config: {command: \"true\"}}\n",
		task{name: "a", cmd: "true"}, task{name: "b", cmd: "true", deps: []string{"a"}}))
	orig := &Run{ID: "orig", Tasks: map[string]*TaskState{
		"a": {Status: Success}, "b": {Status: Canceled}, "alert": {Status: Success}}}
	run, reuse, err := RerunPlan(wf, orig, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(run, ",") != "b,alert" || strings.Join(reuse, ",") != "a" {
		t.Errorf("run %v reuse %v, want run b,alert reuse a", run, reuse)
	}
}
