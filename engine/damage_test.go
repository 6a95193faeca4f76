package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// runLedger is a task command that records "RUN TASK" in $T/ledger.
const runLedger = `echo "$PICOFLOW_RUN_ID $PICOFLOW_TASK" >> "$T/ledger"`

// TestBitFlipSalvageNeverRerunsSuccess is the repro at every byte of
// the last 8 entries: two runs of a → b → c (the second cut off by a power
// loss after b), then one bit flipped. Open must report damage (never cut
// the entries after it); salvage keeps every entry that verifies, marks the
// runs whose events may be missing as damaged (never resumed
// automatically), and resuming every run afterwards, the damaged ones as
// an operator would, never runs again a task whose success survived.
func TestBitFlipSalvageNeverRerunsSuccess(t *testing.T) {
	if testing.Short() {
		t.Skip("hundreds of salvages and resumes")
	}
	src := newHome(t)
	wf := parse(t, wfYAML("flip", "max_parallel: 1", "",
		task{name: "a", cmd: runLedger},
		task{name: "b", cmd: runLedger, deps: []string{"a"}},
		task{name: "c", cmd: runLedger, deps: []string{"b"}},
	))
	ids := []string{"flip-0000-1", "flip-0000-2"}
	next := 0
	newID := func(o *Options) { o.NewRunID = func(time.Time) string { next++; return ids[next-1] } }
	if r := src.start(wf, newID); r.Status != RunSuccess {
		t.Fatalf("first run %s", r.Status)
	}
	pl := &powerLoss{Journal: src.j, at: func(e *journal.Event) bool {
		return e.Type == journal.TaskFinished && e.Task == "b"
	}}
	if _, err := src.engine(newID, func(o *Options) { o.Journal = pl }).Start(context.Background(), wf, nil, "manual"); !errors.Is(err, errPowerLoss) {
		t.Fatalf("second run: %v, want the power loss", err)
	}
	if err := src.j.Close(); err != nil {
		t.Fatal(err)
	}
	src.j = nil
	pristine := src.events()
	_, data, offsets := lastSegment(t, src.journalDir())
	if len(offsets) != len(pristine) {
		t.Fatalf("%d entries, %d in the last segment: the test wants one segment", len(pristine), len(offsets))
	}
	from := offsets[len(offsets)-8]

	runTrials(t, len(data)-from, func(k int) string { return fmt.Sprintf("flip-at-%d", from+k) },
		func(t *testing.T, k int) { bitFlipTrial(t, k+1, from+k, pristine, ids) })
	t.Logf("%d bit flips in the last 8 entries (%d bytes)", len(data)-from, len(data)-from)
}

// bitFlipTrial flips bit off%8 of byte off of the last segment of a copy
// of pristine (runs renamed for trial k), salvages it, resumes what is
// left, and checks that no success that verified runs again.
func bitFlipTrial(t *testing.T, k, off int, pristine []*journal.Event, ids []string) {
	h, dir := journallessHome(t)
	// Run ids of the same length as the originals: the same offsets.
	id1, id2 := fmt.Sprintf("flip-%04d-1", k), fmt.Sprintf("flip-%04d-2", k)
	writeRuns(t, dir, pristine, map[string]string{ids[0]: id1, ids[1]: id2})
	seg, buf, _ := lastSegment(t, dir)
	buf[off] ^= 1 << (off % 8)
	if err := os.WriteFile(seg, buf, 0o640); err != nil {
		t.Fatal(err)
	}
	if j, err := openJournal(dir); !errors.Is(err, journal.ErrDamaged) {
		if j != nil {
			j.Close()
		}
		t.Fatalf("Open: %v, want the flip reported as damage", err)
	}

	verified, entries := verifiedSuccesses(t, dir)
	st := salvageChecked(t, dir, entries)
	h.open()
	for _, r := range st.Interrupted() {
		if r.Status == RunDamaged {
			t.Fatalf("damaged run %s is offered for an automatic resume", r.ID)
		}
	}
	for _, id := range []string{id1, id2} {
		r := st.Runs[id]
		if r == nil || (r.Status != RunRunning && r.Status != RunDamaged) {
			continue
		}
		if err := h.engine().Resume(context.Background(), parse(t, r.Definition), r); err != nil {
			t.Fatalf("resume %s: %v", id, err)
		}
	}
	for _, line := range h.lines("ledger") {
		if verified[line] {
			t.Errorf("%s ran again although its success verified", line)
		}
	}
}

// verifiedSuccesses returns the "RUN TASK" whose success verified in the
// damaged journal in dir, and how many entries verified.
func verifiedSuccesses(t *testing.T, dir string) (map[string]bool, int) {
	t.Helper()
	verified := map[string]bool{}
	entries := 0
	if err := journal.Scan(dir, journal.ScanOptions{OnDamage: func(*journal.DamageError) error { return nil }}, func(e *journal.Event) error {
		entries++
		if e.Type == journal.TaskFinished && e.Status == journal.StatusSuccess {
			verified[e.Run+" "+e.Task] = true
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return verified, entries
}

// salvageChecked salvages the journal in dir, checks the salvage's
// accounting against the entries that verified, and returns the salvaged
// journal's state.
func salvageChecked(t *testing.T, dir string, entries int) *State {
	t.Helper()
	orphans := map[string]int{}
	var marked []*journal.Event
	rep, err := salvage(dir, journal.SalvageOptions{Keep: SalvageKeep(orphans),
		Finish: func(ndir string, rep *journal.SalvageReport) ([]*journal.Event, error) {
			st, err := Replay(ndir, nil)
			if err != nil {
				return nil, fmt.Errorf("the salvaged journal does not replay: %w", err)
			}
			marked = DamagedRuns(st, rep.Gaps, time.Now())
			return marked, nil
		}})
	if err != nil {
		t.Fatalf("salvage: %v", err)
	}
	left := 0
	for _, n := range orphans {
		left += n
	}
	if int(rep.Kept)+left != entries {
		t.Fatalf("salvage kept %d and left out %d of the %d entries that verified", rep.Kept, left, entries)
	}
	if rep.Added != uint64(len(marked)) {
		t.Fatalf("salvage added %d events, Finish returned %d", rep.Added, len(marked))
	}
	st, err := Replay(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range marked {
		if st.Runs[e.Run].Damage == "" {
			t.Fatalf("run %s was marked but replays without its damage", e.Run)
		}
	}
	return st
}

// writeRuns writes events to a new journal in dir, renaming runs.
func writeRuns(t *testing.T, dir string, evs []*journal.Event, ids map[string]string) {
	t.Helper()
	j, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		c := *e
		if id, ok := ids[c.Run]; ok {
			c.Run = id
		}
		if err := j.AppendLazy(&c); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
}

// salvage is journal.Salvage retrying while a task forked by a parallel
// test still holds the lock's descriptor (see openJournal).
func salvage(dir string, opts journal.SalvageOptions) (journal.SalvageReport, error) {
	for i := 0; ; i++ {
		rep, err := journal.Salvage(dir, opts)
		var le *journal.LockedError
		if !errors.As(err, &le) || le.PID != os.Getpid() || i == 500 {
			return rep, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRunDamagedReducer: run_damaged holds an unfinished run out of
// Interrupted() without touching its tasks; an operator's resume makes it
// running again; a finished run keeps its status and records the damage.
func TestRunDamagedReducer(t *testing.T) {
	seq := uint64(0)
	ev := func(typ journal.Type, run, task, status string) *journal.Event {
		seq++
		return &journal.Event{Seq: seq, Type: typ, Run: run, Task: task, Status: status, Reason: "lost entries"}
	}
	s := NewState()
	for _, e := range []*journal.Event{
		ev(journal.RunStarted, "r1", "", ""),
		ev(journal.TaskStarted, "r1", "a", ""),
		ev(journal.TaskFinished, "r1", "a", journal.StatusSuccess),
		ev(journal.TaskStarted, "r1", "b", ""),
		ev(journal.RunStarted, "r2", "", ""),
		ev(journal.RunFinished, "r2", "", journal.StatusSuccess),
		ev(journal.RunDamaged, "r1", "", ""),
		ev(journal.RunDamaged, "r2", "", ""),
	} {
		if err := s.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	r1, r2 := s.Runs["r1"], s.Runs["r2"]
	if r1.Status != RunDamaged || r1.Damage != "lost entries" || r1.Status.String() != "damaged" {
		t.Errorf("r1 %s (%q), want damaged", r1.Status, r1.Damage)
	}
	if r2.Status != RunSuccess || r2.Damage == "" {
		t.Errorf("r2 %s (%q), want success with the damage noted", r2.Status, r2.Damage)
	}
	if len(s.Interrupted()) != 0 {
		t.Errorf("Interrupted() = %v: a damaged run must not be resumed automatically", s.Interrupted())
	}
	if r1.Tasks["a"].Status != Success || r1.Tasks["b"].Status != Running {
		t.Errorf("tasks a %s, b %s: run_damaged must not change them", r1.Tasks["a"].Status, r1.Tasks["b"].Status)
	}
	if err := s.Apply(ev(journal.RunResumed, "r1", "", "")); err != nil {
		t.Fatal(err)
	}
	if r1.Status != RunRunning || r1.Tasks["a"].Status != Success {
		t.Errorf("after a resume: r1 %s, a %s", r1.Status, r1.Tasks["a"].Status)
	}
}

// TestDamagedRuns: which runs a salvage's gaps mark.
func TestDamagedRuns(t *testing.T) {
	s := NewState()
	add := func(id string, first, last uint64, st RunStatus) {
		s.Runs[id] = &Run{ID: id, FirstSeq: first, LastSeq: last, Status: st}
	}
	add("before", 1, 4, RunRunning)         // unfinished, gap after its last entry
	add("across", 3, 9, RunSuccess)         // events on both sides of the gap at 5|6
	add("finished-before", 1, 2, RunFailed) // finished before the gap
	add("after", 6, 9, RunRunning)          // wholly after the gap
	add("end", 7, 9, RunRunning)            // unfinished, gap at the end
	gaps := []journal.Gap{
		{Before: 5, After: 6, Damage: journal.DamageError{Segment: "/j/00000000000000000001", Offset: 99, Index: 6}},
		{Before: 9, After: 0},
	}
	got := map[string]string{}
	for _, e := range DamagedRuns(s, gaps, time.Unix(0, 0)) {
		if e.Type != journal.RunDamaged {
			t.Fatalf("event %s", e.Type)
		}
		got[e.Run] = e.Reason
	}
	for _, id := range []string{"before", "across", "after", "end"} {
		if got[id] == "" {
			t.Errorf("run %s not marked", id)
		}
	}
	if _, ok := got["finished-before"]; ok || len(got) != 4 {
		t.Errorf("marked %v", got)
	}
	if want := "entries lost between entries 5 and 6 (damage in 00000000000000000001 at offset 99, entry 6)"; !strings.Contains(got["across"], want) {
		t.Errorf("reason %q, want %q", got["across"], want)
	}
}
