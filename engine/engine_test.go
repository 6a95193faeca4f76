package engine

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// stamped is the command of a task that records when it started and ended,
// by the clock of the task itself, around body.
func stamped(body string) string {
	return `date +%s%N > "$T/$PICOFLOW_TASK.start"; ` + body + `; date +%s%N > "$T/$PICOFLOW_TASK.end"`
}

// barrier is a task body that waits until n tasks have reached it: the
// first n tasks of a fan-out can only pass it if they run at once. It gives
// up (and fails the task) after about ten seconds.
func barrier(n int) string {
	return fmt.Sprintf(`touch "$T/arrived.$PICOFLOW_TASK"; i=0; `+
		`while set -- "$T"/arrived.*; [ $# -lt %d ]; do i=$((i+1)); [ $i -lt 2000 ] || exit 1; sleep 0.005; done`, n)
}

type interval struct{ start, end int64 }

// intervals reads the time stamps the tasks wrote.
func (h *home) intervals(names []string) map[string]interval {
	h.t.Helper()
	read := func(name string) int64 {
		b, err := os.ReadFile(filepath.Join(h.work, name))
		if err != nil {
			h.t.Fatal(err)
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			h.t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	m := make(map[string]interval, len(names))
	for _, n := range names {
		m[n] = interval{read(n + ".start"), read(n + ".end")}
	}
	return m
}

// maxOverlap is the largest number of intervals that contain one instant.
// The stamps are taken inside the tasks' processes, so the overlap they
// show is never more than the real concurrency.
func maxOverlap(iv map[string]interval) int {
	type edge struct {
		at    int64
		delta int
	}
	var edges []edge
	for _, v := range iv {
		edges = append(edges, edge{v.start, 1}, edge{v.end, -1})
	}
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at != edges[j].at {
			return edges[i].at < edges[j].at
		}
		return edges[i].delta < edges[j].delta // an end before a start at the same instant
	})
	cur, best := 0, 0
	for _, e := range edges {
		cur += e.delta
		best = max(best, cur)
	}
	return best
}

// TestOrderAndParallelism checks, from time stamps written by the tasks,
// that every task starts after all its dependencies ended, that no more
// than max_parallel tasks ever run at once, and that a wide fan-out does
// reach max_parallel.
func TestOrderAndParallelism(t *testing.T) {
	fan := func(width, wait int) []task {
		ts := []task{{name: "root", cmd: stamped("true")}}
		var all []string
		for i := range width {
			n := fmt.Sprintf("w%02d", i)
			all = append(all, n)
			ts = append(ts, task{name: n, cmd: stamped(barrier(wait)), deps: []string{"root"}})
		}
		return append(ts, task{name: "join", cmd: stamped("true"), deps: all})
	}
	work := stamped("sleep 0.02")
	dag := []task{
		{name: "a", cmd: work},
		{name: "b1", cmd: work, deps: []string{"a"}},
		{name: "b2", cmd: work, deps: []string{"a"}},
		{name: "b3", cmd: work, deps: []string{"a"}},
		{name: "c1", cmd: work, deps: []string{"b1"}},
		{name: "c2", cmd: work, deps: []string{"b2", "b3"}},
		{name: "d", cmd: work, deps: []string{"c1", "c2", "x2"}},
		{name: "x1", cmd: work},
		{name: "x2", cmd: work, deps: []string{"x1"}},
		{name: "x3", cmd: work},
	}
	tests := []struct {
		name     string
		config   string
		override int // Options.MaxParallel
		tasks    []task
		want     int // the overlap that must be reached; the limit is checked always
		limit    int
	}{
		{name: "dag-max-2", config: "max_parallel: 2", tasks: dag, limit: 2},
		{name: "dag-max-1", config: "max_parallel: 1", tasks: dag, limit: 1, want: 1},
		{name: "fan-out-max-1", config: "max_parallel: 1", tasks: fan(6, 1), limit: 1, want: 1},
		{name: "fan-out-max-2", config: "max_parallel: 2", tasks: fan(6, 2), limit: 2, want: 2},
		{name: "fan-out-max-4", config: "max_parallel: 4", tasks: fan(10, 4), limit: 4, want: 4},
		{name: "fan-out-override-3", config: "max_parallel: 1", override: 3, tasks: fan(7, 3), limit: 3, want: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t)
			wf := parse(t, wfYAML("order", tc.config, "", tc.tasks...))
			r := h.start(wf, func(o *Options) { o.MaxParallel = tc.override })
			if r.Status != RunSuccess {
				t.Fatalf("run %s: %v", r.Status, failures(r))
			}
			var names []string
			for _, tk := range wf.Tasks {
				names = append(names, tk.Name)
			}
			iv := h.intervals(names)
			for i, tk := range wf.Tasks {
				for _, d := range wf.Deps(i) {
					dep := wf.Tasks[d].Name
					if iv[tk.Name].start <= iv[dep].end {
						t.Errorf("%s started %dµs before its dependency %s ended", tk.Name,
							(iv[dep].end-iv[tk.Name].start)/1000, dep)
					}
				}
			}
			got := maxOverlap(iv)
			if got > tc.limit {
				t.Errorf("%d tasks ran at once, max_parallel is %d", got, tc.limit)
			}
			if tc.want > 0 && got < tc.want {
				t.Errorf("at most %d tasks ran at once, want %d", got, tc.want)
			}
		})
	}
}

// failures describes the tasks of a run that did not succeed.
func failures(r *Run) string {
	var out []string
	for n, t := range r.Tasks {
		if t.Status != Success {
			out = append(out, fmt.Sprintf("%s %s: %s %s %s", n, t.Status, t.Text().Error, t.Text().Reason, t.Text().Tail))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// TestRetryBackoff counts attempts by their log files, by what the task
// itself recorded and by the journal, and checks every TaskRetrying
// backoff against initial·multiplier^(n-1) capped at max, and that no
// retry started before its RetryAt.
func TestRetryBackoff(t *testing.T) {
	tests := []retryCase{
		{name: "exhausted", retry: 3, backoff: "{initial: 40ms, multiplier: 2, max: 100ms}",
			initial: 40 * time.Millisecond, mult: 2, max: 100 * time.Millisecond, attempts: 4, status: Failed},
		{name: "succeeds-on-third", retry: 5, succeedAt: 3, backoff: "{initial: 30ms, multiplier: 2, max: 1s}",
			initial: 30 * time.Millisecond, mult: 2, max: time.Second, attempts: 3, status: Success},
		{name: "multiplier-3", retry: 3, backoff: "{initial: 10ms, multiplier: 3, max: 1s}",
			initial: 10 * time.Millisecond, mult: 3, max: time.Second, attempts: 4, status: Failed},
		{name: "constant", retry: 2, backoff: "{initial: 20ms, multiplier: 1, max: 20ms}",
			initial: 20 * time.Millisecond, mult: 1, max: 20 * time.Millisecond, attempts: 3, status: Failed},
		{name: "no-retry", retry: 0, backoff: "{initial: 10ms}", attempts: 1, status: Failed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t)
			cmd := fmt.Sprintf(`echo "attempt $PICOFLOW_ATTEMPT"; echo $PICOFLOW_ATTEMPT >> "$T/attempts"; `+
				`[ "$PICOFLOW_ATTEMPT" -eq %d ]`, tc.succeedAt)
			wf := parse(t, wfYAML("retry", "backoff: "+tc.backoff, "",
				task{name: "flaky", cmd: cmd, extra: fmt.Sprintf("retry: %d", tc.retry)}))
			r := h.start(wf)
			st := r.Tasks["flaky"]
			if st.Status != tc.status || int(st.Attempt) != tc.attempts {
				t.Fatalf("task %s after %d attempts, want %s after %d", st.Status, st.Attempt, tc.status, tc.attempts)
			}
			wantRun := RunFailed
			if tc.status == Success {
				wantRun = RunSuccess
			}
			if r.Status != wantRun {
				t.Errorf("run %s, want %s", r.Status, wantRun)
			}
			var want []string
			for n := 1; n <= tc.attempts; n++ {
				want = append(want, strconv.Itoa(n))
			}
			if got := h.lines("attempts"); !slices.Equal(got, want) {
				t.Errorf("the task recorded attempts %v, want %v", got, want)
			}
			checkRetryJournal(t, h, tc)
		})
	}
}

type retryCase struct {
	name      string
	retry     int
	succeedAt int // attempt that exits 0; 0: none
	backoff   string
	initial   time.Duration
	mult      float64
	max       time.Duration
	attempts  int
	status    TaskStatus
}

// checkRetryJournal checks the attempts and retries the journal holds
// against the logs and the backoff of tc.
func checkRetryJournal(t *testing.T, h *home, tc retryCase) {
	t.Helper()
	evs := h.events()
	started := filter(evs, journal.TaskStarted, "flaky")
	retrying := filter(evs, journal.TaskRetrying, "flaky")
	if len(started) != tc.attempts || len(retrying) != tc.attempts-1 {
		t.Fatalf("journal: %d TaskStarted and %d TaskRetrying, want %d and %d",
			len(started), len(retrying), tc.attempts, tc.attempts-1)
	}
	for k, s := range started {
		b, err := os.ReadFile(s.LogPath)
		if err != nil {
			t.Fatalf("attempt %d: %v", k+1, err)
		}
		if want := fmt.Sprintf("attempt %d\n", k+1); s.Attempt != k+1 || string(b) != want {
			t.Errorf("attempt %d: TaskStarted.Attempt %d, log %q, want %q", k+1, s.Attempt, b, want)
		}
	}
	for k, e := range retrying {
		n := k + 1
		want := time.Duration(math.Min(float64(tc.initial)*math.Pow(tc.mult, float64(n-1)), float64(tc.max)))
		if e.BackoffMS != want.Milliseconds() {
			t.Errorf("retry %d: backoff %dms, want %dms", n, e.BackoffMS, want.Milliseconds())
		}
		if e.RetryAt != e.Time+want.Nanoseconds() {
			t.Errorf("retry %d: RetryAt is %s after the failure, want %s", n, time.Duration(e.RetryAt-e.Time), want)
		}
		if e.Status != journal.StatusFailed || e.ExitCode != 1 || !strings.Contains(e.Tail, fmt.Sprintf("attempt %d", n)) {
			t.Errorf("retry %d: status %q exit %d tail %q", n, e.Status, e.ExitCode, e.Tail)
		}
		if next := started[n]; next.Time < e.RetryAt {
			t.Errorf("attempt %d started %s before its RetryAt", n+1, time.Duration(e.RetryAt-next.Time))
		}
	}
}

// TestTimeout checks that an attempt that runs out of time is journaled as
// a timeout, retried like a failure, and final as TimedOut.
func TestTimeout(t *testing.T) {
	tests := []struct {
		name     string
		cmd      string
		status   TaskStatus
		run      RunStatus
		attempts int
	}{
		{name: "always", cmd: `echo $PICOFLOW_ATTEMPT >> "$T/attempts"; sleep 300`,
			status: TimedOut, run: RunFailed, attempts: 2},
		{name: "first-only", cmd: `echo $PICOFLOW_ATTEMPT >> "$T/attempts"; [ $PICOFLOW_ATTEMPT -gt 1 ] || sleep 300`,
			status: Success, run: RunSuccess, attempts: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t)
			wf := parse(t, wfYAML("timeout", "backoff: {initial: 10ms}", "",
				task{name: "slow", cmd: tc.cmd, extra: "timeout: 200ms\nretry: 1"},
				task{name: "after", cmd: ledger("after"), deps: []string{"slow"}}))
			r := h.start(wf)
			if r.Status != tc.run || r.Tasks["slow"].Status != tc.status {
				t.Fatalf("run %s, slow %s; want %s, %s", r.Status, r.Tasks["slow"].Status, tc.run, tc.status)
			}
			if got := len(h.lines("attempts")); got != tc.attempts {
				t.Errorf("%d attempts, want %d", got, tc.attempts)
			}
			evs := h.events()
			rt := filter(evs, journal.TaskRetrying, "slow")
			if len(rt) != 1 || rt[0].Status != journal.StatusTimeout || !strings.Contains(rt[0].Error, "over its 200ms timeout") {
				t.Fatalf("retrying events %v, want one with status timeout", describe(rt))
			}
			fin := filter(evs, journal.TaskFinished, "slow")
			wantFin := journal.StatusSuccess
			if tc.status == TimedOut {
				wantFin = journal.StatusTimeout
			}
			if len(fin) != 1 || fin[0].Status != wantFin {
				t.Errorf("finished events %v, want one with status %s", describe(fin), wantFin)
			}
			if ran := len(h.lines("ledger")) == 1; ran != (tc.run == RunSuccess) {
				t.Errorf("dependent ran: %v", ran)
			}
		})
	}
}

func describe(evs []*journal.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, fmt.Sprintf("#%d %s %s status=%q err=%q reason=%q", e.Seq, e.Type, e.Task, e.Status, e.Error, e.Reason))
	}
	return out
}

// TestContinueOnFailure checks that a failed task with continue_on_failure
// releases its dependents and does not fail the run.
func TestContinueOnFailure(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	wf := parse(t, wfYAML("cof", "", "",
		task{name: "cleanup", cmd: ledger("cleanup") + "; exit 4", extra: "continue_on_failure: true"},
		task{name: "report", cmd: ledger("report"), deps: []string{"cleanup"}},
		task{name: "notify", cmd: ledger("notify"), deps: []string{"report"}}))
	r := h.start(wf)
	if r.Status != RunSuccess {
		t.Fatalf("run %s, want success: %s", r.Status, failures(r))
	}
	if st := r.Tasks["cleanup"]; st.Status != Failed || st.ExitCode != 4 {
		t.Errorf("cleanup %s exit %d, want failed exit 4", st.Status, st.ExitCode)
	}
	if got := h.lines("ledger"); !slices.Equal(got, []string{"cleanup", "report", "notify"}) {
		t.Errorf("ledger %v", got)
	}
	if fin := filter(h.events(), journal.RunFinished, ""); len(fin) != 1 || fin[0].Status != journal.StatusSuccess {
		t.Errorf("run finished %v", describe(fin))
	}
}

// TestSkipPropagation checks that the tasks downstream of a failure are
// each skipped exactly once, never started, and told which task failed.
func TestSkipPropagation(t *testing.T) {
	tests := []struct {
		name    string
		tasks   []task
		failed  string
		skipped []string
		ran     []string
	}{
		{
			// a fails; b and c depend on a, d on both, e on d.
			name: "diamond-below-failure",
			tasks: []task{
				{name: "a", cmd: "exit 1"},
				{name: "b", cmd: ledger("b"), deps: []string{"a"}},
				{name: "c", cmd: ledger("c"), deps: []string{"a"}},
				{name: "d", cmd: ledger("d"), deps: []string{"b", "c"}},
				{name: "e", cmd: ledger("e"), deps: []string{"d"}},
				{name: "f", cmd: ledger("f")},
			},
			failed: "a", skipped: []string{"b", "c", "d", "e"}, ran: []string{"f"},
		},
		{
			// one arm of the diamond fails, the other succeeds.
			name: "diamond-arm-fails",
			tasks: []task{
				{name: "a", cmd: ledger("a")},
				{name: "b", cmd: "exit 1", deps: []string{"a"}},
				{name: "c", cmd: ledger("c"), deps: []string{"a"}},
				{name: "d", cmd: ledger("d"), deps: []string{"b", "c"}},
				{name: "e", cmd: ledger("e"), deps: []string{"d"}},
			},
			failed: "b", skipped: []string{"d", "e"}, ran: []string{"a", "c"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t)
			r := h.start(parse(t, wfYAML("skip", "max_parallel: 2", "", tc.tasks...)))
			if r.Status != RunFailed || r.Tasks[tc.failed].Status != Failed {
				t.Fatalf("run %s, %s %s; want failed, failed", r.Status, tc.failed, r.Tasks[tc.failed].Status)
			}
			evs := h.events()
			skips := filter(evs, journal.TaskSkipped, "")
			var names []string
			for _, e := range skips {
				names = append(names, e.Task)
				if want := "upstream task " + tc.failed + " "; !strings.Contains(e.Reason, want) {
					t.Errorf("%s skipped because %q, want it to name %s", e.Task, e.Reason, tc.failed)
				}
				if e.Status != journal.StatusSkipped {
					t.Errorf("%s skipped with status %q", e.Task, e.Status)
				}
			}
			sort.Strings(names)
			if !slices.Equal(names, tc.skipped) {
				t.Errorf("skipped %v, want each of %v once", names, tc.skipped)
			}
			for _, n := range tc.skipped {
				if s := filter(evs, journal.TaskStarted, n); len(s) != 0 {
					t.Errorf("skipped task %s started", n)
				}
				if r.Tasks[n].Status != Skipped {
					t.Errorf("%s is %s", n, r.Tasks[n].Status)
				}
			}
			got := h.lines("ledger")
			sort.Strings(got)
			if !slices.Equal(got, tc.ran) {
				t.Errorf("ran %v, want %v", got, tc.ran)
			}
		})
	}
}

// TestParamsOverrideEnv checks that run parameters replace the workflow's
// env values and are journaled with the run.
func TestParamsOverrideEnv(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	wf := parse(t, wfYAML("params", "", "env:\n  GREETING: hello\n  TARGET: world\n",
		task{name: "greet", cmd: `echo "$GREETING $TARGET" > "$T/out"`}))
	params := map[string]string{"GREETING": "bonjour"}
	r, err := h.engine().Start(t.Context(), wf, params, "manual")
	if err != nil || r.Status != RunSuccess {
		t.Fatalf("run %v, %v", r.Status, err)
	}
	b, err := os.ReadFile(filepath.Join(h.work, "out"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "bonjour world" {
		t.Errorf("task saw %q, want %q", got, "bonjour world")
	}
	if got := h.replay(r.ID).Params; got["GREETING"] != "bonjour" || len(got) != 1 {
		t.Errorf("journaled params %v", got)
	}
}
