package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// countSegmentReads counts, by file name, the segment reads of the
// journal's own code (checks and scans) until the test ends.
func countSegmentReads(t *testing.T) map[string]int {
	t.Helper()
	reads := map[string]int{}
	onSegmentRead = func(path string) { reads[filepath.Base(path)]++ }
	t.Cleanup(func() { onSegmentRead = nil })
	return reads
}

// replayJournal writes 300 events in segments of 4 KiB and returns their
// descriptions.
func replayJournal(t *testing.T, dir string) []string {
	t.Helper()
	evs := testEvents(1, 300, 120)
	j := openJournal(t, dir, Options{SegmentSize: 4096})
	if err := j.Append(evs...); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(segmentFiles(t, dir)); n < 3 {
		t.Fatalf("%d segments, the test wants at least 3", n)
	}
	return describeAll(evs, 1)
}

// tearTail cuts the last five bytes off the journal's last segment: its
// last entry is a torn tail.
func tearTail(t *testing.T, dir string) {
	t.Helper()
	segs := segmentFiles(t, dir)
	tail := filepath.Join(dir, segs[len(segs)-1])
	buf, err := os.ReadFile(tail)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tail, buf[:len(buf)-5], 0o640); err != nil {
		t.Fatal(err)
	}
}

// TestOpenReplaysWhileChecking: Open with Replay delivers every entry in
// order, reading each segment once (the check and the replay are one
// pass), and the journal appends after them.
func TestOpenReplaysWhileChecking(t *testing.T) {
	dir := t.TempDir()
	want := replayJournal(t, dir)
	reads := countSegmentReads(t)
	var got []string
	j := openJournal(t, dir, Options{SegmentSize: 4096, Replay: func(e *Event) error {
		got = append(got, describe(e))
		return nil
	}})
	if d := diffLines(got, want); d != "" {
		t.Fatal(d)
	}
	for _, name := range segmentFiles(t, dir) {
		if reads[name] != 1 {
			t.Errorf("segment %s read %d times by Open, want once (all reads: %v)", name, reads[name], reads)
		}
	}
	if err := j.Append(testEvent(301, 0)); err != nil {
		t.Fatal(err)
	}
	if seq := j.LastSeq(); seq != 301 {
		t.Errorf("LastSeq %d after replay and one append, want 301", seq)
	}
}

// TestOpenReplayTornTail: after a torn tail, Replay gets the entries Open
// keeps, not the torn one.
func TestOpenReplayTornTail(t *testing.T) {
	dir := t.TempDir()
	want := replayJournal(t, dir)
	tearTail(t, dir)
	var got []string
	j := openJournal(t, dir, Options{SegmentSize: 4096, Replay: func(e *Event) error {
		got = append(got, describe(e))
		return nil
	}})
	if !j.Repaired.Truncated {
		t.Fatalf("Open did not repair the torn tail: %+v", j.Repaired)
	}
	if d := diffLines(got, want[:len(want)-1]); d != "" {
		t.Fatal(d)
	}
}

// TestOpenReplayErrors: an error of Replay fails Open as a replay error
// (not damage) and releases the lock; damage fails Open as damage even
// when Replay would have refused an entry after it (Replay sees none).
func TestOpenReplayErrors(t *testing.T) {
	dir := t.TempDir()
	replayJournal(t, dir)
	refuse := errors.New("refused")
	_, err := Open(dir, Options{SegmentSize: 4096, Replay: func(e *Event) error {
		if e.Seq == 5 {
			return refuse
		}
		return nil
	}})
	if !errors.Is(err, refuse) || errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "replay journal") {
		t.Fatalf("Open with a failing Replay: %v, want the replay error", err)
	}
	openJournal(t, dir, Options{SegmentSize: 4096}).Close() // the lock was released

	first := filepath.Join(dir, segmentFiles(t, dir)[0])
	buf, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	offs := records(t, buf)
	buf[offs[3]+30] ^= 0xff // entry 4's envelope
	if err := os.WriteFile(first, buf, 0o640); err != nil {
		t.Fatal(err)
	}
	var last uint64
	_, err = Open(dir, Options{SegmentSize: 4096, Replay: func(e *Event) error {
		last = e.Seq
		if e.Seq > 3 {
			return refuse
		}
		return nil
	}})
	if !errors.Is(err, ErrDamaged) || errors.Is(err, refuse) {
		t.Fatalf("Open of a damaged journal: %v, want damage", err)
	}
	if last != 3 {
		t.Errorf("Replay saw entries up to %d, want up to 3 (the damage is in entry 4)", last)
	}
}

// aheadJournal writes, in segments of 4 KiB, short runs of five events
// (some across two segments), a long run over several segments with short
// runs inside it, and a run that never finishes. It returns the events
// and the runs that finish.
func aheadJournal(t *testing.T, dir string) ([]*Event, map[string]bool) {
	t.Helper()
	var evs []*Event
	ends := map[string]bool{}
	ev := func(typ Type, run string) *Event {
		e := &Event{Type: typ, Time: int64(len(evs)), Run: run, Task: "t", Attempt: 1, Status: StatusSuccess,
			LogPath: strings.Repeat("l", 60)}
		if typ == RunStarted || typ == RunFinished {
			e.Task, e.Attempt, e.LogPath = "", 0, ""
		}
		evs = append(evs, e)
		return e
	}
	short := func(run string) {
		ev(RunStarted, run).Definition = strings.Repeat("d", 200)
		ev(TaskStarted, run)
		ev(TaskProcess, run)
		ev(TaskFinished, run)
		ev(RunFinished, run)
		ends[run] = true
	}
	for i := range 40 {
		short(fmt.Sprintf("s%02d", i))
	}
	ev(RunStarted, "long")
	for i := range 150 {
		ev(TaskFinished, "long")
		if i%50 == 0 {
			short(fmt.Sprintf("in%d", i))
		}
	}
	ev(RunFinished, "long")
	ends["long"] = true
	ev(RunStarted, "open")
	ev(TaskStarted, "open")
	for i := range 10 {
		short(fmt.Sprintf("t%02d", i))
	}
	j := openJournal(t, dir, Options{SegmentSize: 4096})
	if err := j.Append(evs...); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return evs, ends
}

// TestOpenReadsAhead: with Options.Finished, Open calls it with every run
// that finishes right before Replay gets that run's run_started, never
// with one that does not; Replay gets what it gets without; segments are read
// once, but those a long run spans, read ahead to its end and again by
// the replay; a torn tail is repaired and damage fails Open as without.
func TestOpenReadsAhead(t *testing.T) {
	dir := t.TempDir()
	evs, ends := aheadJournal(t, dir)
	want := describeAll(evs, 1)
	for _, torn := range []bool{false, true} {
		if torn {
			tearTail(t, dir)
			want = want[:len(want)-1]
			delete(ends, evs[len(evs)-1].Run) // its run_finished was torn off
		}
		reads := countSegmentReads(t)
		finished := map[string]bool{}
		var got []string
		last := ""
		j := openJournal(t, dir, Options{SegmentSize: 4096,
			Finished: func(run string) { finished[run], last = true, run },
			Replay: func(e *Event) error {
				if e.Type == RunStarted && ends[e.Run] && last != e.Run {
					t.Errorf("run %s started (entry %d) without Finished naming it right before", e.Run, e.Seq)
				}
				got = append(got, describe(e))
				last = ""
				return nil
			}})
		if j.Repaired.Truncated != torn {
			t.Errorf("torn %v: repaired %+v", torn, j.Repaired)
		}
		j.Close()
		if d := diffLines(got, want); d != "" {
			t.Fatalf("torn %v: %s", torn, d)
		}
		if finished["open"] || len(finished) != len(ends) {
			t.Errorf("Finished named %v, want %v", finished, ends)
		}
		twice := 0
		for _, name := range segmentFiles(t, dir) {
			first, _ := strconv.ParseUint(name, 10, 64)
			switch reads[name] {
			case 1:
			case 2:
				if first <= 201 { // up to the long run's start (entry 201): short runs only
					t.Errorf("segment %s, before the long run, read twice", name)
				}
				twice++
			default:
				t.Errorf("segment %s read %d times", name, reads[name])
			}
		}
		if segs := len(segmentFiles(t, dir)); twice == 0 || twice > segs/2 {
			t.Errorf("%d of %d segments read twice, want a few (the long run's)", twice, segs)
		}
	}
	// damage in the middle fails Open as damage, as without Finished
	first := filepath.Join(dir, segmentFiles(t, dir)[0])
	buf, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	buf[records(t, buf)[3]+30] ^= 0xff
	if err := os.WriteFile(first, buf, 0o640); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, Options{SegmentSize: 4096, Finished: func(string) {}, Replay: func(*Event) error { return nil }})
	if !errors.Is(err, ErrDamaged) {
		t.Fatalf("Open of a damaged journal: %v, want damage", err)
	}
}
