package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/picoflow/picoflow/executors"
	"github.com/picoflow/picoflow/journal"
)

// stopWhenStarted returns an engine option that cancels the run's context
// once task's process exists.
func stopWhenStarted(task string, cancel context.CancelFunc) func(*Options) {
	return withHook(func(req *executors.Request, _ int) {
		if req.Task.Name == task {
			cancel()
		}
	})
}

// resume replays the journal after a restart and resumes run id.
func (h *home) resume(id string, edit ...func(*Options)) *Run {
	h.t.Helper()
	h.reopen()
	r := h.replay(id)
	wf := parse(h.t, r.Definition)
	if err := h.engine(edit...).Resume(context.Background(), wf, r); err != nil {
		h.t.Fatalf("resume: %v", err)
	}
	// One copy of the definition: the replay's is let go for wf's.
	if unsafe.StringData(r.Definition) != unsafe.SliceData(wf.Raw) {
		h.t.Error("the resumed run keeps the replay's copy of its definition")
	}
	return r
}

// TestGracefulStop cancels a run while a task runs: within the grace
// period the task completes and succeeds, nothing new starts, nothing is
// marked failed, and the run stays resumable; a resume finishes it without
// running a completed task again.
func TestGracefulStop(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	wf := parse(t, wfYAML("graceful", "max_parallel: 1", "",
		task{name: "first", cmd: ledger("first")},
		task{name: "slow", cmd: "sleep 1.5; " + ledger("slow"), deps: []string{"first"}},
		task{name: "after", cmd: ledger("after"), deps: []string{"slow"}},
		task{name: "other", cmd: ledger("other"), deps: []string{"first"}},
	))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := h.engine(stopWhenStarted("slow", cancel), func(o *Options) { o.Grace = 10 * time.Second }).
		Start(ctx, wf, nil, "manual")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != RunRunning {
		t.Fatalf("run %s after a graceful stop, want running (resumable)", r.Status)
	}
	if st := r.Tasks["slow"].Status; st != Success {
		t.Errorf("slow %s, want success: the grace period lets it finish", st)
	}
	for _, e := range h.events() {
		if e.Type == journal.TaskFinished && e.Status != journal.StatusSuccess || e.Type == journal.TaskSkipped ||
			e.Type == journal.RunFinished || e.Type == journal.TaskInDoubt {
			t.Errorf("stop journaled %s %s %s", e.Type, e.Task, e.Status)
		}
	}
	if got := h.lines("ledger"); !slices.Equal(got, []string{"first", "slow"}) {
		t.Errorf("before the resume the ledger is %v, want [first slow]", got)
	}

	r = h.resume(r.ID)
	if r.Status != RunSuccess {
		t.Fatalf("resumed run %s: %s", r.Status, failures(r))
	}
	got := count(h.lines("ledger"))
	for _, n := range []string{"first", "slow", "after", "other"} {
		if got[n] != 1 {
			t.Errorf("%s ran %d times, want once", n, got[n])
		}
	}
	if n := len(filter(h.events(), journal.RunResumed, "")); n != 1 || r.Resumes != 1 {
		t.Errorf("%d RunResumed events, Resumes %d", n, r.Resumes)
	}
}

// TestGraceExpiry cancels a run whose task outlives the grace period: the
// task is killed and journaled interrupted, and the resume runs it again
// (marked Resumed) if it is idempotent, or holds the run with the task in
// doubt if it is not.
func TestGraceExpiry(t *testing.T) {
	tests := []struct {
		name       string
		idempotent bool
	}{
		{name: "idempotent", idempotent: true},
		{name: "not-idempotent", idempotent: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t)
			extra := "idempotent: true"
			if !tc.idempotent {
				extra = "idempotent: false"
			}
			wf := parse(t, wfYAML("expiry", "", "",
				task{name: "stuck", cmd: `echo $PICOFLOW_ATTEMPT >> "$T/attempts"; [ $PICOFLOW_ATTEMPT -gt 1 ] || sleep 300`, extra: extra},
				task{name: "after", cmd: ledger("after"), deps: []string{"stuck"}},
			))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r, err := h.engine(stopWhenStarted("stuck", cancel), func(o *Options) {
				o.Grace = 50 * time.Millisecond
				o.KillGrace = 50 * time.Millisecond
			}).Start(ctx, wf, nil, "manual")
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != RunRunning {
				t.Fatalf("run %s, want running", r.Status)
			}
			fin := filter(h.events(), journal.TaskFinished, "stuck")
			if len(fin) != 1 || fin[0].Status != journal.StatusInterrupted {
				t.Fatalf("stuck finished %v, want once, interrupted", describe(fin))
			}

			r = h.resume(r.ID)
			evs := h.events()
			started := filter(evs, journal.TaskStarted, "stuck")
			if tc.idempotent {
				if r.Status != RunSuccess {
					t.Fatalf("resumed run %s: %s", r.Status, failures(r))
				}
				if len(started) != 2 || started[1].Attempt != 2 || !started[1].Resumed {
					t.Errorf("stuck started %d times; want a second attempt marked resumed, got %+v", len(started), started[len(started)-1])
				}
				if got := h.lines("ledger"); !slices.Equal(got, []string{"after"}) {
					t.Errorf("ledger %v", got)
				}
				return
			}
			if r.Status != RunRunning || r.Tasks["stuck"].Status != InDoubt {
				t.Fatalf("run %s, stuck %s; want the run held with stuck in doubt", r.Status, r.Tasks["stuck"].Status)
			}
			if len(started) != 1 || len(h.lines("ledger")) != 0 {
				t.Errorf("a task in doubt ran again (%d starts) or released its dependent", len(started))
			}
		})
	}
}

// TestInDoubt simulates a power loss while a non-idempotent task runs: the
// resume journals it in doubt and holds the run (other branches finish);
// an operator's TaskResolved decides what the next resume does.
func TestInDoubt(t *testing.T) {
	tests := []struct {
		name      string
		resolve   string // TaskResolved status
		run       RunStatus
		chargeRan int // times the in-doubt task ran in all
		shipRan   int
	}{
		{name: "succeeded", resolve: journal.StatusSuccess, run: RunSuccess, chargeRan: 1, shipRan: 1},
		{name: "rerun", resolve: "rerun", run: RunSuccess, chargeRan: 2, shipRan: 1},
		{name: "failed", resolve: journal.StatusFailed, run: RunFailed, chargeRan: 1, shipRan: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t)
			wf := parse(t, wfYAML("doubt", "max_parallel: 1", "",
				task{name: "charge", cmd: ledger("charge"), extra: "idempotent: false"},
				task{name: "ship", cmd: ledger("ship"), deps: []string{"charge"}},
				task{name: "log", cmd: ledger("log")},
			))
			pl := &powerLoss{Journal: h.j, at: func(e *journal.Event) bool {
				return e.Type == journal.TaskStarted && e.Task == "charge"
			}}
			r, err := h.engine(func(o *Options) { o.Journal = pl }).Start(context.Background(), wf, nil, "manual")
			if !errors.Is(err, errPowerLoss) {
				t.Fatalf("start: %v, want the power loss", err)
			}

			r = h.resume(r.ID)
			if r.Status != RunRunning || r.Tasks["charge"].Status != InDoubt {
				t.Fatalf("run %s, charge %s; want the run held, charge in doubt", r.Status, r.Tasks["charge"].Status)
			}
			if d := filter(h.events(), journal.TaskInDoubt, "charge"); len(d) != 1 || !strings.Contains(d[0].Reason, "picoflow resolve") {
				t.Errorf("in-doubt events %v", describe(d))
			}
			if got := count(h.lines("ledger")); got["charge"] != 1 || got["ship"] != 0 || got["log"] != 1 {
				t.Errorf("while held the ledger is %v: want charge once, log done, ship waiting", got)
			}

			if err := h.j.Append(&journal.Event{Type: journal.TaskResolved, Time: time.Now().UnixNano(), Run: r.ID,
				Task: "charge", Attempt: int(r.Tasks["charge"].Attempt), Status: tc.resolve, Reason: "checked by test"}); err != nil {
				t.Fatal(err)
			}
			r = h.resume(r.ID)
			if r.Status != tc.run {
				t.Fatalf("after resolving %s the run is %s, want %s: %s", tc.resolve, r.Status, tc.run, failures(r))
			}
			got := count(h.lines("ledger"))
			if got["charge"] != tc.chargeRan || got["ship"] != tc.shipRan || got["log"] != 1 {
				t.Errorf("ledger %v: want charge %d, ship %d, log 1", got, tc.chargeRan, tc.shipRan)
			}
		})
	}
}

// TestResumeRefusesChangedDefinition checks that a run is never resumed
// with a definition other than the one it started with, and that the
// refusal journals nothing.
func TestResumeRefusesChangedDefinition(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	tasks := []task{
		{name: "a", cmd: ledger("a")},
		{name: "b", cmd: ledger("b"), deps: []string{"a"}},
	}
	wf := parse(t, wfYAML("changed", "", "", tasks...))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := h.engine(stopWhenStarted("a", cancel)).Start(ctx, wf, nil, "manual")
	if err != nil || r.Status != RunRunning {
		t.Fatalf("start: %v, %v", r.Status, err)
	}
	before := h.j.LastSeq()

	changed := parse(t, wfYAML("changed", "", "", append(tasks, task{name: "c", cmd: ledger("c")})...))
	err = h.engine().Resume(context.Background(), changed, h.replay(r.ID))
	if !errors.Is(err, ErrDefinitionChanged) {
		t.Fatalf("resume with a changed definition: %v, want ErrDefinitionChanged", err)
	}
	for _, hash := range []string{wf.Hash[:12], changed.Hash[:12]} {
		if !strings.Contains(err.Error(), hash) {
			t.Errorf("error %q does not name hash %s", err, hash)
		}
	}
	if after := h.j.LastSeq(); after != before {
		t.Errorf("the refused resume journaled entries %d..%d", before+1, after)
	}
	if got := h.lines("ledger"); !slices.Equal(got, []string{"a"}) {
		t.Errorf("ledger %v", got)
	}

	r = h.resume(r.ID) // with the recorded definition
	if r.Status != RunSuccess {
		t.Fatalf("resume with the recorded definition: %s", r.Status)
	}
}

// TestResumeClockBehind resumes a run that waits for a retry after a
// reboot that set the clock an hour back (a board without an RTC): the
// wait must not exceed the configured backoff, and the run's duration is
// not negative.
func TestResumeClockBehind(t *testing.T) {
	h := newHome(t)
	wf := parse(t, wfYAML("clock", "backoff: {initial: 1s, max: 1s}", "",
		task{name: "flaky", cmd: `[ -e "$T/failed" ] || { touch "$T/failed"; exit 1; }`, extra: "retry: 1"}))
	pl := &powerLoss{Journal: h.j, at: func(e *journal.Event) bool { return e.Type == journal.TaskRetrying }}
	r, err := h.engine(func(o *Options) { o.Journal = pl }).Start(context.Background(), wf, nil, "manual")
	if !errors.Is(err, errPowerLoss) {
		t.Fatalf("start: %v, want the power loss", err)
	}
	h.reopen()
	r = h.replay(r.ID)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // an hour's wait fails, not hangs
	defer cancel()
	behind := func(o *Options) { o.Clock = func() time.Time { return time.Now().Add(-time.Hour) } }
	if err := h.engine(behind).Resume(ctx, wf, r); err != nil {
		t.Fatal(err)
	}
	if r.Status != RunSuccess {
		t.Fatalf("run %s after resume (ctx: %v): the retry waited for the clock, not the backoff", r.Status, ctx.Err())
	}
	if f := filter(h.events(), journal.RunFinished, ""); len(f) != 1 || f[0].DurationMS < 0 {
		t.Errorf("run_finished %v: want one, with a duration ≥ 0", describe(f))
	}
}
