package journal

import (
	"os"
	"strings"
	"testing"
)

// TestSyncTailNamesTheTail: whenever Sync fsyncs outside the locks, its
// descriptor names the segment the wal writes (the newest), through the
// wal starting segments (found by a durable append's listing, or by
// Sync's), an entry that fills a segment, a TruncateFront (which may
// replace a segment under its name) and a reopen; every entry reads back. An fsync of another file would leave
// the last window's entries to a power cut.
func TestSyncTailNamesTheTail(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 4096}
	j := openJournal(t, dir, opts)
	outside := 0
	check := func(step string) {
		t.Helper()
		if err := j.Sync(); err != nil {
			t.Fatalf("%s: Sync: %v", step, err)
		}
		if j.tail == nil {
			return // the next Sync syncs under the locks
		}
		outside++
		segs, err := listSegments(dir)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.Stat(segs[len(segs)-1].path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := j.tail.Stat()
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(got, want) {
			t.Fatalf("%s: Sync's descriptor is not the tail %s", step, segs[len(segs)-1].path)
		}
	}
	seq := 1
	appendSome := func(step string, n int) {
		t.Helper()
		for i := range n {
			add := j.AppendLazy
			if i%3 == 2 { // a durable append lists the directory when the tail filled
				add = j.Append
			}
			if err := add(testEvent(seq, 300)); err != nil {
				t.Fatalf("%s: %v", step, err)
			}
			seq++
			check(step)
		}
	}
	appendSome("first segment", 5)
	appendSome("across segments", 40) // ~500 bytes an entry: a segment every ~8
	big := &Event{Type: RunStarted, Time: baseTime, Run: "r-big", Workflow: "w", Definition: strings.Repeat("x", 5000)}
	if err := j.Append(big); err != nil {
		t.Fatal(err)
	}
	seq++
	check("after an entry alone")
	appendSome("after an entry alone", 10)
	if err := j.TruncateFront(uint64(seq - 3)); err != nil {
		t.Fatal(err)
	}
	check("after TruncateFront")
	appendSome("after TruncateFront", 10)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openJournal(t, dir, opts)
	appendSome("after a reopen", 10)
	if outside < 60 {
		t.Errorf("%d of the Syncs went outside the locks, want most", outside)
	}
	first, err := j.FirstSeq()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(readAll(t, j, first)), seq-int(first); got != want {
		t.Errorf("%d entries read back from %d, want %d", got, first, want)
	}
}
