package engine

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// foldHome is a real journal holding many shapes of runs: real runs of a
// workflow with a success, a retried task, a failure whose output has
// escapes and a skipped dependent; then runs journaled by hand: canceled
// with a task in doubt, damaged and resumed, in doubt and resolved,
// finished with a task event after its end, interrupted mid-retry, and
// schedule fires. It returns the home and the id of its first run.
func foldHome(t *testing.T) (*home, string) {
	h := newHome(t)
	tasks := []task{
		{name: "ok", cmd: `echo "out: <tab>	\"q\" é"`},
		{name: "flaky", cmd: `[ -e "$T/failed" ] || { touch "$T/failed"; exit 1; }`, extra: "retry: 1"},
		{name: "bad", cmd: `printf 'line1\nline2 \\ "x"\n' >&2; exit 3`, deps: []string{"ok"}},
		{name: "after", cmd: "true", deps: []string{"bad"}},
	}
	wf := parse(t, wfYAML("shapes", "backoff: {initial: 10ms, max: 10ms}", "", tasks...))
	var first string
	for i := range 3 {
		r := h.start(wf)
		if r.Status != RunFailed {
			t.Fatalf("run %d: %v", i, r.Status)
		}
		if first == "" {
			first = r.ID
		}
	}
	def := "name: hand\ntasks:\n  - {name: a, type: shell, config: {command: \"echo \\\"<x>\\\"\"}}\n"
	ev := func(typ journal.Type, run, task string, edit ...func(*journal.Event)) *journal.Event {
		e := &journal.Event{Type: typ, Run: run, Task: task, Attempt: 1, Time: int64(len(run)*1000 + len(task))}
		for _, f := range edit {
			f(e)
		}
		return e
	}
	status := func(s string) func(*journal.Event) { return func(e *journal.Event) { e.Status = s } }
	started := func(run string) *journal.Event {
		return ev(journal.RunStarted, run, "", func(e *journal.Event) {
			e.Workflow, e.DefHash, e.Definition, e.Trigger = "hand", "h", def, "schedule"
			e.Params = map[string]string{"P": run}
		})
	}
	evs := []*journal.Event{
		started("canceled"), ev(journal.TaskStarted, "canceled", "a"), ev(journal.TaskInDoubt, "canceled", "a"),
		ev(journal.RunCanceled, "canceled", "", func(e *journal.Event) { e.By, e.Reason = "me@host/1", "stop \"it\"" }),
		ev(journal.RunFinished, "canceled", "", status(journal.StatusCanceled)),
		started("damaged"), ev(journal.TaskStarted, "damaged", "a"),
		ev(journal.RunDamaged, "damaged", "", func(e *journal.Event) { e.Reason = "salvage lost entries 3..4" }),
		ev(journal.RunResumed, "damaged", ""), ev(journal.TaskFinished, "damaged", "a", status(journal.StatusSuccess),
			func(e *journal.Event) {
				e.Outputs, e.Tail = map[string]string{"k": "v\n"}, strings.Repeat("tail\n", 50)
			}),
		ev(journal.RunFinished, "damaged", "", status(journal.StatusSuccess)),
		started("doubt"), ev(journal.TaskStarted, "doubt", "a"), ev(journal.TaskProcess, "doubt", "a"),
		ev(journal.TaskInDoubt, "doubt", "a"), ev(journal.TaskResolved, "doubt", "a", status(journal.StatusRerun)),
		ev(journal.TaskStarted, "doubt", "a"), ev(journal.TaskFinished, "doubt", "a", status(journal.StatusTimeout)),
		ev(journal.RunFinished, "doubt", "", status(journal.StatusFailed)),
		ev(journal.TaskSkipped, "doubt", "late", status(journal.StatusSkipped)),
		started("live"), ev(journal.TaskStarted, "live", "a"),
		ev(journal.TaskRetrying, "live", "a", func(e *journal.Event) { e.RetryAt, e.BackoffMS, e.Error = 99, 10, "exit 1" }),
		ev(journal.ScheduleFired, "live", "", func(e *journal.Event) { e.Workflow, e.FireTime = "hand", 77 }),
		ev(journal.ScheduleSkipped, "", "", func(e *journal.Event) { e.Workflow, e.FireTime = "hand", 88 }),
	}
	if err := h.j.Append(evs...); err != nil {
		t.Fatal(err)
	}
	return h, first
}

// leanCounter reads the journal in dir as a fold asks and counts the
// entries the fold (its second scan) asks for lean.
func leanCounter(dir string, lean *int) reader {
	return func(o journal.ScanOptions, fn func(*journal.Event) error) error {
		if sel := o.Select; sel != nil && o.Types == nil { // the fold, not its first scan
			o.Select = func(en *journal.Entry) journal.Decoding {
				d := sel(en)
				if d == journal.Lean {
					*lean++
				}
				return d
			}
		}
		return journal.Scan(dir, o, fn)
	}
}

// TestFoldIsWholeReplay: folding a journal, with the events of finished
// runs decoded lean, gives the state a fold of every event decoded whole
// gives, whichever runs Detail names, for journal.Scan and for the
// writer's own Read; and the events of finished runs are the ones read
// lean.
func TestFoldIsWholeReplay(t *testing.T) {
	h, first := foldHome(t)
	dir := h.journalDir()
	for _, tc := range []struct {
		name   string
		detail func(string) bool
		lean   bool
	}{
		{name: "none", detail: nil, lean: true},
		{name: "one", detail: OneRun(first), lean: true},
		{name: "all", detail: AllRuns},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := NewState()
			want.Detail = tc.detail
			if err := journal.Scan(dir, journal.ScanOptions{}, want.Apply); err != nil {
				t.Fatal(err)
			}
			lean := 0
			got := NewState()
			got.Detail = tc.detail
			if err := got.fold(leanCounter(dir, &lean), journal.ScanOptions{}); err != nil {
				t.Fatal(err)
			}
			sameState(t, got, want)
			if tc.lean != (lean > 0) {
				t.Errorf("%d entries read lean", lean)
			}
			mine := NewState()
			mine.Detail = tc.detail
			if err := mine.FoldJournal(h.j); err != nil {
				t.Fatal(err)
			}
			sameState(t, mine, want)
			// as a writer's journal.Open replays it
			h.j.Close()
			opened := NewState()
			opened.Detail = tc.detail
			j, err := openJournalOpts(dir, opened.OpenOptions(journal.Options{Owner: "test"}))
			if err != nil {
				t.Fatal(err)
			}
			h.j = j
			sameState(t, opened, want)
		})
	}
}

// openJournalOpts is openJournal with options.
func openJournalOpts(dir string, opts journal.Options) (*journal.Journal, error) {
	j, err := journal.Open(dir, opts)
	for i := 0; err != nil && i < 500; i++ { // see openJournal
		var le *journal.LockedError
		if !errors.As(err, &le) || le.PID != os.Getpid() {
			break
		}
		time.Sleep(5 * time.Millisecond)
		j, err = journal.Open(dir, opts)
	}
	return j, err
}

// TestFoldDamaged: over a journal with damage in the middle, a fold that
// goes on past it gives the state a whole fold gives, and reports the
// damage once; a strict fold fails as a whole one does.
func TestFoldDamaged(t *testing.T) {
	h, _ := foldHome(t)
	h.j.Close()
	h.j = nil
	segs, _ := filepath.Glob(filepath.Join(h.journalDir(), "0*"))
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	// A byte of a task entry's task name, past the middle: damage to a
	// run_started would orphan its run's task events, which no fold keeps.
	at := bytes.Index(b[len(b)/2:], []byte(`"task":"`))
	if at < 0 {
		t.Fatal("no task entry in the second half of the segment")
	}
	b[len(b)/2+at+len(`"task":"`)] ^= 0x40
	if err := os.WriteFile(segs[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	reports := func(n *int) journal.ScanOptions {
		return journal.ScanOptions{OnDamage: func(*journal.DamageError) error { *n++; return nil }}
	}
	var nw, ng int
	want := NewState()
	if err := journal.Scan(h.journalDir(), reports(&nw), want.Apply); err != nil {
		t.Fatal(err)
	}
	got := NewState()
	if err := got.FoldDir(h.journalDir(), reports(&ng)); err != nil {
		t.Fatal(err)
	}
	sameState(t, got, want)
	if nw != 1 || ng != nw {
		t.Errorf("damage reported %d times, whole fold %d", ng, nw)
	}
	werr := journal.Scan(h.journalDir(), journal.ScanOptions{}, NewState().Apply)
	gerr := NewState().FoldDir(h.journalDir(), journal.ScanOptions{})
	if werr == nil || fmt.Sprint(gerr) != fmt.Sprint(werr) {
		t.Errorf("strict fold: %v, whole: %v", gerr, werr)
	}
}

func sameState(t *testing.T, got, want *State) {
	t.Helper()
	if got.LastSeq != want.LastSeq || !reflect.DeepEqual(got.LastFire, want.LastFire) || len(got.Runs) != len(want.Runs) {
		t.Fatalf("state: seq %d fires %v runs %d, want %d %v %d", got.LastSeq, got.LastFire, len(got.Runs),
			want.LastSeq, want.LastFire, len(want.Runs))
	}
	for id, w := range want.Runs {
		if g := got.Runs[id]; !reflect.DeepEqual(g, w) {
			t.Errorf("run %s:\n got %+v\nwant %+v", id, g, w)
		}
	}
}
