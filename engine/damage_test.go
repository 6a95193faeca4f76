package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
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

	trial := func(t *testing.T, k, off int) {
		h := newHome(t)
		h.j.Close()
		h.j = nil
		dir := h.journalDir()
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
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

		verified := map[string]bool{} // "RUN TASK" whose success verified
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
		orphans := map[string]int{}
		rep, err := salvage(dir, journal.SalvageOptions{Keep: SalvageKeep(orphans)})
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
		st, err := Replay(dir)
		if err != nil {
			t.Fatalf("the salvaged journal does not replay: %v", err)
		}
		h.open()
		if err := h.j.Append(DamagedRuns(st, rep.Gaps, time.Now())...); err != nil {
			t.Fatal(err)
		}
		if st, err = Replay(dir); err != nil {
			t.Fatal(err)
		}
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

	work := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for off := range work {
				t.Run(fmt.Sprintf("flip-at-%d", off), func(t *testing.T) { trial(t, off-from+1, off) })
			}
		}()
	}
	for off := from; off < len(data); off++ {
		work <- off
	}
	close(work)
	wg.Wait()
	t.Logf("%d bit flips in the last 8 entries (%d bytes)", len(data)-from, len(data)-from)
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
