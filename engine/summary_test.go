package engine

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/picoflow/picoflow/journal"
)

// summaryEvents is a journal of three runs: r1 finished (a success with
// outputs, a failure, a skip), r2 interrupted (a task running), r3
// canceled (a task in doubt when it ended), and a task event that comes
// after r1's end.
func summaryEvents() []*journal.Event {
	evs := []*journal.Event{
		{Type: journal.RunStarted, Run: "r1", Workflow: "wf", DefHash: "h1", Definition: "name: wf\n", Source: "wf.yaml",
			Params: map[string]string{"P": "1"}, Time: 1},
		{Type: journal.TaskStarted, Run: "r1", Task: "a", Attempt: 1, Time: 2},
		{Type: journal.TaskFinished, Run: "r1", Task: "a", Attempt: 1, Status: journal.StatusSuccess,
			Outputs: map[string]string{"K": "v"}, Time: 3},
		{Type: journal.TaskStarted, Run: "r1", Task: "b", Attempt: 1, Time: 3},
		{Type: journal.TaskFinished, Run: "r1", Task: "b", Attempt: 1, Status: journal.StatusFailed, ExitCode: 2,
			Error: "exit 2", Time: 4},
		{Type: journal.TaskSkipped, Run: "r1", Task: "c", Status: journal.StatusSkipped, Reason: "b failed", Time: 4},
		{Type: journal.RunStarted, Run: "r2", Workflow: "wf", DefHash: "h1", Definition: "name: wf\n", Time: 5},
		{Type: journal.TaskStarted, Run: "r2", Task: "a", Attempt: 1, Time: 6},
		{Type: journal.RunFinished, Run: "r1", Status: journal.StatusFailed, Time: 7},
		{Type: journal.TaskSkipped, Run: "r1", Task: "late", Status: journal.StatusSkipped, Time: 7},
		{Type: journal.RunStarted, Run: "r3", Workflow: "other", DefHash: "h3", Definition: "name: other\n", Time: 8},
		{Type: journal.TaskInDoubt, Run: "r3", Task: "pay", Attempt: 1, Time: 9},
		{Type: journal.RunCanceled, Run: "r3", By: "me", Reason: "test", Time: 10},
		{Type: journal.RunFinished, Run: "r3", Status: journal.StatusCanceled, Time: 11},
		{Type: journal.ScheduleFired, Workflow: "wf", FireTime: 12, Time: 12},
	}
	for i, e := range evs {
		e.Seq = uint64(i + 1)
	}
	return evs
}

// fold applies evs to a new state with detail; with ends, it knows first
// which runs finish, as after the first scan of FoldDir.
func fold(t *testing.T, detail func(string) bool, ends bool, evs []*journal.Event) *State {
	t.Helper()
	st := NewState()
	st.Detail = detail
	if ends {
		st.expectEnds(func(fn func(*journal.Event) error) error {
			for _, e := range evs {
				if e.Type == journal.RunFinished {
					fn(e)
				}
			}
			return nil
		})
	}
	for _, e := range evs {
		if err := st.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// TestReplaySummarizes: a fold keeps a finished run as a summary (no task
// states, no definition) unless its Detail names it, and the summary says
// everything else the whole run says: status, times, sequence numbers,
// cancel, parameters. Knowing first which runs end (FoldDir's first scan)
// changes nothing in the result, and such a run holds no task while it is
// folded.
func TestReplaySummarizes(t *testing.T) {
	evs := summaryEvents()
	all := fold(t, AllRuns, false, evs)
	for _, tc := range []struct {
		name   string
		detail func(string) bool
		ends   bool
		whole  []string
	}{
		{name: "none", detail: nil, whole: []string{"r2"}},
		{name: "one", detail: OneRun("r3"), whole: []string{"r2", "r3"}},
		{name: "all", detail: AllRuns, whole: []string{"r1", "r2", "r3"}},
		{name: "none-ends-known", detail: nil, ends: true, whole: []string{"r2"}},
		{name: "one-ends-known", detail: OneRun("r3"), ends: true, whole: []string{"r2", "r3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := fold(t, tc.detail, tc.ends, evs)
			if st.LastSeq != all.LastSeq || !reflect.DeepEqual(st.LastFire, all.LastFire) || len(st.Runs) != len(all.Runs) {
				t.Fatalf("state: seq %d fires %v runs %d, want %d %v %d", st.LastSeq, st.LastFire, len(st.Runs),
					all.LastSeq, all.LastFire, len(all.Runs))
			}
			for id, w := range all.Runs {
				r := st.Runs[id]
				whole := strings.Contains(strings.Join(tc.whole, " "), id)
				if r.Summarized() == whole || (r.Tasks == nil) == whole || (r.Definition == "") == whole {
					t.Errorf("run %s: summarized %v, %d task states, definition %q; want whole %v",
						id, r.Summarized(), len(r.Tasks), r.Definition, whole)
				}
				if whole {
					if d := diffRuns(w, r); d != "" {
						t.Errorf("whole run %s differs from the fold of every run:\n%s", id, d)
					}
					continue
				}
				s := *w
				s.Tasks, s.Definition, s.summary = nil, "", true
				if d := diffRuns(&s, r); d != "" {
					t.Errorf("summary of %s differs from the whole run:\n%s", id, d)
				}
				if c := r.Counts([]string{"a"}); c != nil {
					t.Errorf("summary of %s counts tasks: %v", id, c)
				}
			}
		})
	}
	t.Run("no-task-while-folded", func(t *testing.T) {
		st := NewState()
		st.ends = map[string]bool{"r1": true} // as a first scan over evs finds
		for _, e := range evs[:5] {           // r1 has started and run tasks
			if err := st.Apply(e); err != nil {
				t.Fatal(err)
			}
		}
		if r := st.Runs["r1"]; !r.Summarized() || r.Tasks != nil {
			t.Errorf("r1, known to end, holds %d task states while folded", len(r.Tasks))
		}
	})
}

// TestSummaryRefused: what needs a run's task states refuses a summary,
// rather than reading its missing tasks as pending.
func TestSummaryRefused(t *testing.T) {
	h := newHome(t)
	wf := parse(t, wfYAML("sum", "", "", task{name: "a", cmd: "exit 1"}))
	r := h.start(wf)
	st, err := Replay(h.journalDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := st.Runs[r.ID]
	if !s.Summarized() || s.Status != RunFailed {
		t.Fatalf("replayed run: summarized %v status %s", s.Summarized(), s.Status)
	}
	if _, _, err := RerunPlan(wf, s, nil, true); !errors.Is(err, ErrSummary) {
		t.Errorf("RerunPlan of a summary: %v", err)
	}
	if _, err := h.engine().Rerun(t.Context(), wf, s, nil); !errors.Is(err, ErrSummary) {
		t.Errorf("Rerun of a summary: %v", err)
	}
	if err := h.engine().Resume(t.Context(), wf, s); !errors.Is(err, ErrSummary) {
		t.Errorf("Resume of a summary: %v", err)
	}
}

// TestReplayHeapOfFinishedRuns: the heap a replay of finished runs keeps
// does not grow with their tasks and definitions. Five finished runs of
// 2,000 tasks and a 100 KiB definition each: the whole fold keeps
// megabytes, the summaries a few KiB.
func TestReplayHeapOfFinishedRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 10,000-task journal")
	}
	dir := t.TempDir()
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	def := "name: big\n# " + strings.Repeat("x", 100<<10) + "\n"
	const runs, tasks = 5, 2000
	for i := range runs {
		id := fmt.Sprintf("r%d", i)
		evs := []*journal.Event{{Type: journal.RunStarted, Run: id, Workflow: "big", DefHash: "h", Definition: def, Time: 1}}
		for k := range tasks {
			name := fmt.Sprintf("task-%d", k)
			evs = append(evs,
				&journal.Event{Type: journal.TaskStarted, Run: id, Task: name, Attempt: 1, Time: 2},
				&journal.Event{Type: journal.TaskFinished, Run: id, Task: name, Attempt: 1, Status: journal.StatusSuccess, Time: 3})
		}
		evs = append(evs, &journal.Event{Type: journal.RunFinished, Run: id, Status: journal.StatusSuccess, Time: 4})
		if err := j.Append(evs...); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	gc := func() { runtime.GC(); runtime.GC() } // the second frees what the scan put back in its sync.Pool
	kept := func(detail func(string) bool) int64 {
		gc()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		st, err := Replay(dir, detail)
		if err != nil {
			t.Fatal(err)
		}
		gc()
		runtime.ReadMemStats(&after)
		if len(st.Runs) != runs {
			t.Fatalf("%d runs replayed", len(st.Runs))
		}
		runtime.KeepAlive(st)
		return int64(after.HeapAlloc) - int64(before.HeapAlloc)
	}
	whole, summary := kept(AllRuns), kept(nil)
	t.Logf("heap kept by the replay of %d finished runs of %d tasks: whole %d KiB, summaries %d KiB",
		runs, tasks, whole>>10, summary>>10)
	if whole < 1<<20 {
		t.Errorf("the whole fold keeps %d bytes: the test no longer measures what it should", whole)
	}
	if summary > 64<<10 {
		t.Errorf("the summaries keep %d bytes, want at most 64 KiB", summary)
	}
}
