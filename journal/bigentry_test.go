package journal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bigEvent is a run_started whose definition makes its entry bigger than
// a default segment.
func bigEvent() *Event {
	return &Event{Type: RunStarted, Time: baseTime, Run: "r-big", Workflow: "w",
		Definition: strings.Repeat("  - name: t\n    config: {command: \"true\"}\n", 30000)}
}

// TestBigEntryAlone: an entry bigger than a segment, appended alone, is
// written in a segment of its own with an empty one after it (writeAlone),
// which the checker and the wal read as if the wal had written them; the
// appends after it, lazy and durable, go on in the empty one, and every
// entry reads back, also after a reopen.
func TestBigEntryAlone(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, dir, Options{})
	before, big, after := testEvents(1, 10, 100), bigEvent(), testEvents(11, 10, 100)
	if err := j.AppendLazy(before...); err != nil {
		t.Fatal(err)
	}
	fsyncs := j.Stats().Fsyncs
	if err := j.Append(big); err != nil {
		t.Fatal(err)
	}
	// The wal's Close (its tail, lazy entries in it), the entry's segment,
	// the empty one, the directory.
	if got := j.Stats().Fsyncs - fsyncs; got != 4 {
		t.Errorf("big append: %d fsyncs, want 4", got)
	}
	alone := filepath.Join(dir, segmentName(big.Seq))
	fi, err := os.Stat(alone)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := newEntry(big)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(uvarintLen(uint64(len(entry))) + len(entry)); fi.Size() != want {
		t.Errorf("segment %s is %d bytes, want %d: the entry alone", segmentName(big.Seq), fi.Size(), want)
	}
	if err := j.AppendLazy(after[:5]...); err != nil {
		t.Fatal(err)
	}
	if err := j.Append(after[5:]...); err != nil {
		t.Fatal(err)
	}
	if got := segmentFiles(t, dir); len(got) != 3 || got[2] != segmentName(big.Seq+1) {
		t.Errorf("segments %v: want the first, the entry's, and the next", got)
	}
	want := describeAll(append(append(append([]*Event{}, before...), big), after...), 1)
	if d := diffLines(readAll(t, j, 1), want); d != "" {
		t.Fatalf("open journal:\n%s", d)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(dir)
	if err != nil || !rep.Clean() || rep.Last != uint64(len(want)) {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
	j = openJournal(t, dir, Options{})
	defer j.Close()
	if d := diffLines(readAll(t, j, 1), want); d != "" {
		t.Fatalf("reopened journal:\n%s", d)
	}
}

// TestBigEntryAloneTorn: a crash while the entry's segment was written
// (before its fsync, so before the empty segment after it) leaves a torn
// tail, which Open repairs: the journal ends at the entry before it, and
// appends go on from there.
func TestBigEntryAloneTorn(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, dir, Options{})
	before := testEvents(1, 10, 100)
	if err := j.Append(before...); err != nil {
		t.Fatal(err)
	}
	big := bigEvent()
	if err := j.Append(big); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	alone := filepath.Join(dir, segmentName(big.Seq))
	fi, err := os.Stat(alone)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(alone, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, segmentName(big.Seq+1))); err != nil {
		t.Fatal(err)
	}
	j = openJournal(t, dir, Options{})
	defer j.Close()
	if !j.Repaired.Truncated || j.LastSeq() != uint64(len(before)) {
		t.Fatalf("after the torn big entry: repaired %+v, last %d, want %d", j.Repaired, j.LastSeq(), len(before))
	}
	more := testEvents(11, 3, 100)
	if err := j.Append(more...); err != nil {
		t.Fatal(err)
	}
	if d := diffLines(readAll(t, j, 1), describeAll(append(before, more...), 1)); d != "" {
		t.Fatal(d)
	}
}
