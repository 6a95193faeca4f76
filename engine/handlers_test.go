package engine

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/executors"
	"github.com/picoflow/picoflow/journal"
)

// TestTriggerRulesRun runs real processes through a DAG whose tasks use
// the rules: each task runs or is skipped as its rule says, skips name the
// rule (a skipped upstream is fine for none_failed), a timeout counts as
// a failure.
func TestTriggerRulesRun(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	wf := parse(t, wfYAML("rules", "max_parallel: 4", "",
		task{name: "bad", cmd: "exit 3"},
		task{name: "good", cmd: ledger("good")},
		task{name: "slow", cmd: "sleep 30", extra: "timeout: 200ms"},
		task{name: "page", cmd: ledger("page"), deps: []string{"bad", "good"}, extra: "trigger_rule: one_failed"},
		task{name: "tidy", cmd: ledger("tidy"), deps: []string{"bad", "good"}, extra: "trigger_rule: all_done"},
		task{name: "ship", cmd: ledger("ship"), deps: []string{"bad", "good"}},
		task{name: "after-ship", cmd: ledger("after-ship"), deps: []string{"ship"}, extra: "trigger_rule: none_failed"},
		task{name: "ship-failed", cmd: ledger("ship-failed"), deps: []string{"ship"}, extra: "trigger_rule: all_failed"},
		task{name: "any", cmd: ledger("any"), deps: []string{"bad", "good"}, extra: "trigger_rule: one_success"},
		task{name: "nofail", cmd: ledger("nofail"), deps: []string{"good"}, extra: "trigger_rule: one_failed"},
		task{name: "on-timeout", cmd: ledger("on-timeout"), deps: []string{"slow"}, extra: "trigger_rule: all_failed"},
		task{name: "skipped-ok", cmd: ledger("skipped-ok"), deps: []string{"nofail", "good"}, extra: "trigger_rule: none_failed_min_one_success"},
	))
	r := h.start(wf)
	if r.Status != RunFailed {
		t.Fatalf("run %s, want failed (bad failed without continue_on_failure)", r.Status)
	}
	got := h.lines("ledger")
	slices.Sort(got)
	want := []string{"after-ship", "any", "good", "on-timeout", "page", "skipped-ok", "tidy"}
	if !slices.Equal(got, want) {
		t.Errorf("ran %v, want %v", got, want)
	}
	skips := map[string]string{}
	for _, e := range filter(h.events(), journal.TaskSkipped, "") {
		skips[e.Task] = e.Reason
	}
	for task, want := range map[string]string{
		"ship":        "trigger rule all_success not met: upstream task bad failed",
		"ship-failed": "trigger rule all_failed not met: an upstream task did not fail",
		"nofail":      "trigger rule one_failed not met: no upstream task failed",
	} {
		if !strings.Contains(skips[task], want) {
			t.Errorf("%s skipped because %q, want %q", task, skips[task], want)
		}
	}
	if len(skips) != 3 {
		t.Errorf("skipped %v, want ship, ship-failed and nofail", skips)
	}
	if st := r.Tasks["slow"].Status; st != TimedOut {
		t.Errorf("slow %s, want timeout", st)
	}
}

// handlersWF is a workflow with every handler list; fail decides whether
// its DAG fails. Each handler appends its name to the ledger; on_failure
// also records what it sees of the run.
func handlersWF(t *testing.T, name, failCmd, extra string) string {
	t.Helper()
	return wfYAML(name, "max_parallel: 2", `on_success:
  - {name: ok, type: shell, config: {command: "echo ok >> \"$T/ledger\""}}
on_failure:
  - name: alert
    type: shell
    config: {command: "echo alert >> \"$T/ledger\"; echo \"$PICOFLOW_RUN_STATUS|$PICOFLOW_FAILED_TASKS|$PICOFLOW_OUT_PRODUCE_SIZE\" > \"$T/seen\""}
  - {name: alert2, type: shell, config: {command: "echo alert2 >> \"$T/ledger\""}}
on_cancel:
  - {name: undo, type: shell, config: {command: "echo undo >> \"$T/ledger\""}}
on_exit:
  - {name: bye, type: shell, config: {command: "echo bye >> \"$T/ledger\""}}
`+extra,
		task{name: "produce", cmd: `echo size=42 >> "$PICOFLOW_OUTPUT"; ` + ledger("produce")},
		task{name: "work", cmd: failCmd, deps: []string{"produce"}},
	)
}

// TestHandlers checks that the handlers chosen by the run's status run
// after the DAG with the run's status, failed tasks and outputs in their
// env, that on_exit runs last, that the others are skipped, and that
// neither a handler's success nor its failure changes the run's status.
func TestHandlers(t *testing.T) {
	t.Parallel()
	t.Run("failure", func(t *testing.T) {
		t.Parallel()
		h := newHome(t)
		r := h.start(parse(t, handlersWF(t, "hfail", "exit 1", "")))
		if r.Status != RunFailed {
			t.Fatalf("run %s, want failed: handlers do not change it", r.Status)
		}
		got := h.lines("ledger")
		if len(got) != 4 || got[0] != "produce" || got[3] != "bye" || !slices.Contains(got, "alert") || !slices.Contains(got, "alert2") {
			t.Errorf("ledger %v, want produce, then alert and alert2, then bye", got)
		}
		if seen := h.lines("seen"); !slices.Equal(seen, []string{"failed|work|42"}) {
			t.Errorf("on_failure saw %v, want failed|work|42", seen)
		}
		for _, n := range []string{"ok", "undo"} {
			if st := r.Tasks[n]; st == nil || st.Status != Skipped || !strings.Contains(st.Text().Reason, "status is failed") {
				t.Errorf("handler %s: %+v, want skipped (the run failed)", n, st)
			}
		}
		if rr := h.replay(r.ID); rr.Status != RunFailed || rr.Tasks["bye"].Status != Success {
			t.Errorf("replay: run %s, bye %s", rr.Status, rr.Tasks["bye"].Status)
		}
	})
	t.Run("failing-handler", func(t *testing.T) {
		t.Parallel()
		h := newHome(t)
		src := handlersWF(t, "hok", ledger("work"), "")
		src = strings.Replace(src, `echo ok >> \"$T/ledger\"`, `echo ok >> \"$T/ledger\"; exit 9`, 1)
		r := h.start(parse(t, src))
		if r.Status != RunSuccess {
			t.Fatalf("run %s, want success: a failed handler does not change it", r.Status)
		}
		if st := r.Tasks["ok"].Status; st != Failed {
			t.Errorf("handler ok %s, want failed", st)
		}
		if got := h.lines("ledger"); !slices.Equal(got, []string{"produce", "work", "ok", "bye"}) {
			t.Errorf("ledger %v", got)
		}
	})
}

// cancelWhenStarted cancels the run through the registry once task's
// process exists.
func cancelWhenStarted(c *Cancels, task string, req CancelRequest) func(*Options) {
	return withHook(func(r *executors.Request, _ int) {
		if r.Task.Name == task {
			if !c.Cancel(r.Run, req) {
				panic("cancel: run not live")
			}
		}
	})
}

// TestCancelLive cancels a live run: the running task gets the grace and
// is then killed, the pending ones are canceled, on_cancel and on_exit
// run, and the run ends canceled with who asked and why.
func TestCancelLive(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	c := NewCancels()
	wf := parse(t, handlersWF(t, "hcancel", `sleep 30; `+ledger("work"), ""))
	req := CancelRequest{Reason: "wrong target", By: "ops@box/42"}
	began := time.Now()
	r := h.start(wf, cancelWhenStarted(c, "work", req), func(o *Options) { o.Cancels, o.Grace = c, 300*time.Millisecond })
	if took := time.Since(began); took > 20*time.Second {
		t.Errorf("the cancel took %s: the grace did not end the task", took)
	}
	if r.Status != RunCanceled {
		t.Fatalf("run %s, want canceled", r.Status)
	}
	if st := r.Tasks["work"].Status; st != Canceled {
		t.Errorf("work %s, want canceled", st)
	}
	if got := h.lines("ledger"); !slices.Equal(got, []string{"produce", "undo", "bye"}) {
		t.Errorf("ledger %v, want produce, undo, bye", got)
	}
	evs := h.events()
	rc := filter(evs, journal.RunCanceled, "")
	if len(rc) != 1 || rc[0].By != req.By || rc[0].Reason != req.Reason {
		t.Fatalf("run_canceled events %+v", rc)
	}
	fin := filter(evs, journal.RunFinished, "")
	if len(fin) != 1 || fin[0].Status != journal.StatusCanceled || fin[0].Reason != "canceled by ops@box/42: wrong target" {
		t.Errorf("run_finished %+v", fin)
	}
	rr := h.replay(r.ID)
	if rr.Status != RunCanceled || rr.CanceledBy != req.By || rr.Tasks["work"].Status != Canceled {
		t.Errorf("replay: %s by %q, work %s", rr.Status, rr.CanceledBy, rr.Tasks["work"].Status)
	}
	if c.Cancel(r.ID, req) {
		t.Error("a finished run still takes cancels")
	}
}

// TestCancelStopped cancels a run no process runs (stopped before its
// second task): nothing of its DAG runs again, on_cancel and on_exit run,
// and a second cancel reports the run finished.
func TestCancelStopped(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	wf := parse(t, handlersWF(t, "hstopped", `sleep 30; `+ledger("work"), ""))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := h.engine(stopWhenStarted("work", cancel), func(o *Options) { o.Grace = 100 * time.Millisecond }).
		Start(ctx, wf, nil, "manual")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != RunRunning {
		t.Fatalf("run %s after a stop, want running", r.Status)
	}
	h.reopen()
	r = h.replay(r.ID)
	e := h.engine()
	if err := e.CancelStopped(context.Background(), wf, r, CancelRequest{By: "signal"}); err != nil {
		t.Fatal(err)
	}
	if r.Status != RunCanceled || r.Tasks["work"].Status != Canceled {
		t.Fatalf("run %s, work %s; want canceled, canceled", r.Status, r.Tasks["work"].Status)
	}
	if got := h.lines("ledger"); !slices.Equal(got, []string{"produce", "undo", "bye"}) {
		t.Errorf("ledger %v, want produce, undo, bye", got)
	}
	if err := e.CancelStopped(context.Background(), wf, h.replay(r.ID), CancelRequest{By: "signal"}); err == nil ||
		!strings.Contains(err.Error(), "already finished") {
		t.Errorf("second cancel: %v, want already finished", err)
	}
}

// TestResumeCanceledRun resumes a run whose process died during a cancel's
// grace (run_canceled journaled, an attempt in flight): the attempt is not
// run again, the DAG's other tasks are canceled, on_cancel runs, and the
// run finishes canceled.
func TestResumeCanceledRun(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	wf := parse(t, handlersWF(t, "hresume", ledger("work"), ""))
	id := "resume-canceled-" + strings.ReplaceAll(t.Name(), "/", "-")
	now := time.Now().UnixNano()
	if err := h.j.Append(
		&journal.Event{Type: journal.RunStarted, Time: now, Run: id, Workflow: wf.Name, DefHash: wf.Hash,
			Definition: string(wf.Raw), Source: wf.Source},
		&journal.Event{Type: journal.TaskStarted, Time: now, Run: id, Task: "produce", Attempt: 1},
		&journal.Event{Type: journal.RunCanceled, Time: now, Run: id, Reason: "stop", By: "ops@box/1"},
	); err != nil {
		t.Fatal(err)
	}
	r := h.resume(id)
	if r.Status != RunCanceled {
		t.Fatalf("run %s, want canceled", r.Status)
	}
	for task, want := range map[string]TaskStatus{"produce": Canceled, "work": Canceled, "undo": Success, "bye": Success, "alert": Skipped} {
		if st := r.Tasks[task]; st == nil || st.Status != want {
			t.Errorf("%s: %+v, want %s", task, st, want)
		}
	}
	if got := h.lines("ledger"); !slices.Equal(got, []string{"undo", "bye"}) {
		t.Errorf("ledger %v, want undo, bye", got)
	}
}

// TestCancelGraceSparesHandlers cancels a run whose running task ends by
// itself within the grace: the grace, meant for the DAG's attempts, must
// not cut the on_cancel handler short when it runs past it.
func TestCancelGraceSparesHandlers(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	c := NewCancels()
	wf := parse(t, wfYAML("hgrace", "", `on_cancel:
  - {name: undo, type: shell, config: {command: "sleep 1.2; echo undo >> \"$T/ledger\""}}
`, task{name: "work", cmd: "sleep 0.2"}, task{name: "after", cmd: ledger("after"), deps: []string{"work"}}))
	r := h.start(wf, cancelWhenStarted(c, "work", CancelRequest{By: "test"}),
		func(o *Options) { o.Cancels, o.Grace = c, 700*time.Millisecond })
	if r.Status != RunCanceled || r.Tasks["work"].Status != Success || r.Tasks["undo"].Status != Success {
		t.Fatalf("run %s, work %s, undo %s; want canceled, success (ended in the grace), success",
			r.Status, r.Tasks["work"].Status, r.Tasks["undo"].Status)
	}
	if got := h.lines("ledger"); !slices.Equal(got, []string{"undo"}) {
		t.Errorf("ledger %v, want undo", got)
	}
}
