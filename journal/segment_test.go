package journal

// Segment files: rolling at SegmentSize, the directory fsync that makes a
// new segment durable, and TruncateFront.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// rollJournal writes n events of varied sizes into dir with 4 KiB segments,
// in single appends and batches, and returns them.
func rollJournal(t testing.TB, dir string, n int) []*Event {
	t.Helper()
	j, err := Open(dir, Options{SegmentSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	evs := make([]*Event, 0, n)
	for len(evs) < n {
		k := len(evs)
		b := testEvents(k, min(1+k%4, n-k), (k*37)%700)
		if err := j.AppendLazy(b...); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, b...)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestSegmentRolls(t *testing.T) {
	dir := t.TempDir()
	const n = 240
	want := describeAll(rollJournal(t, dir, n), 1)
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) < 5 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	for _, s := range segs {
		fi, err := os.Stat(s.path)
		if err != nil {
			t.Fatal(err)
		}
		// A segment rolls once it reaches the size: it ends with at most
		// one entry past it.
		if fi.Size() > 4096+1500 {
			t.Errorf("segment %s is %d bytes", filepath.Base(s.path), fi.Size())
		}
	}

	froms := []uint64{0, 1, 2, n / 2, n - 1, n, n + 1, n + 100}
	for _, s := range segs[1:] {
		froms = append(froms, s.first-1, s.first, s.first+1)
	}
	j := openJournal(t, dir, Options{SegmentSize: 4096})
	for _, from := range froms {
		t.Run(fmt.Sprintf("from %d", from), func(t *testing.T) {
			w := want[min(max(from, 1)-1, n):]
			for _, strict := range []bool{false, true} {
				got, err := scanAll(t, dir, ScanOptions{From: from, Strict: strict})
				if err != nil {
					t.Fatalf("Scan(strict %v): %v", strict, err)
				}
				if d := diffLines(got, w); d != "" {
					t.Fatalf("Scan(strict %v): %s", strict, d)
				}
			}
			if d := diffLines(readAll(t, j, from), w); d != "" {
				t.Fatalf("ReadFrom: %s", d)
			}
		})
	}

	// ErrStop ends a scan early without an error.
	var count int
	err = Scan(dir, ScanOptions{From: 10}, func(e *Event) error {
		if count++; e.Seq == 100 {
			return ErrStop
		}
		return nil
	})
	if err != nil || count != 91 {
		t.Errorf("Scan stopped at 100: err %v after %d events, want nil after 91", err, count)
	}
	// Other callback errors are returned as they are.
	boom := errors.New("boom")
	if err := Scan(dir, ScanOptions{}, func(*Event) error { return boom }); err != boom {
		t.Errorf("Scan returned %v, want the callback's error", err)
	}
}

// TestRollFsyncsDirectory checks, one Append at a time, that the journal
// fsyncs the directory exactly when the wal creates a segment file, also
// after a TruncateFront rewrote the tail segment and after a reopen.
func TestRollFsyncsDirectory(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir, Options{SegmentSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { j.Close() }()
	i := 0
	appendSome := func(n int) {
		t.Helper()
		for range n {
			segsBefore := len(segmentFiles(t, dir))
			fsyncsBefore := j.Stats().Fsyncs
			batch := testEvents(i, 1+i%3, (i*53)%900)
			i += len(batch)
			if err := j.Append(batch...); err != nil {
				t.Fatal(err)
			}
			wantFsyncs := uint64(1)
			if len(segmentFiles(t, dir)) != segsBefore {
				wantFsyncs++ // the new segment's directory entry
			}
			if got := j.Stats().Fsyncs - fsyncsBefore; got != wantFsyncs {
				t.Fatalf("append of entries ..%d: %d fsyncs, want %d (segments %d → %d)",
					batch[len(batch)-1].Seq, got, wantFsyncs, segsBefore, len(segmentFiles(t, dir)))
			}
		}
	}
	appendSome(60)
	// Truncate inside the tail segment: the wal rewrites it shorter.
	if err := j.TruncateFront(j.LastSeq()); err != nil {
		t.Fatal(err)
	}
	appendSome(60)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if j, err = Open(dir, Options{SegmentSize: 4096}); err != nil {
		t.Fatal(err)
	}
	appendSome(60)

	// Reopened with smaller segments, the tail is over the size at once.
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if j, err = Open(dir, Options{SegmentSize: 1024}); err != nil {
		t.Fatal(err)
	}
	fsyncs := j.Stats().Fsyncs
	if err := j.Append(); err != nil { // nothing to write: no roll
		t.Fatal(err)
	}
	if got := j.Stats().Fsyncs - fsyncs; got != 1 {
		t.Errorf("empty Append: %d fsyncs, want 1", got)
	}
	appendSome(30)
}

func TestTruncateFront(t *testing.T) {
	const n = 120
	base := t.TempDir()
	evs := rollJournal(t, base, n)
	segs, err := listSegments(base)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) < 4 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	tail := segs[len(segs)-1].first
	cases := []struct {
		name      string
		seqs      []uint64 // successive TruncateFront calls
		wantFirst uint64
	}{
		{"nothing before 1", []uint64{1}, 1},
		{"zero", []uint64{0}, 1},
		{"inside the first segment", []uint64{3}, 3},
		{"start of the second segment", []uint64{segs[1].first}, segs[1].first},
		{"end of a segment", []uint64{segs[2].first - 1}, segs[2].first - 1},
		{"inside the tail segment", []uint64{tail + 1}, tail + 1},
		{"the newest entry", []uint64{n}, n},
		{"past the end keeps the newest", []uint64{n + 50}, n},
		{"twice forward", []uint64{10, 50}, 50},
		{"again with a smaller seq", []uint64{50, 10}, 50},
		{"again with the same seq", []uint64{50, 50}, 50},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, base, dir)
			j := openJournal(t, dir, Options{SegmentSize: 4096})
			for _, seq := range tc.seqs {
				if err := j.TruncateFront(seq); err != nil {
					t.Fatalf("TruncateFront(%d): %v", seq, err)
				}
			}
			check := func(j *Journal, total int) {
				t.Helper()
				first, err := j.FirstSeq()
				if err != nil || first != tc.wantFirst {
					t.Fatalf("FirstSeq = %d, %v; want %d", first, err, tc.wantFirst)
				}
				all := append(slices.Clone(evs), testEvents(n, total-n, 10)...)
				want := describeAll(all, 1)[tc.wantFirst-1:]
				if d := diffLines(readAll(t, j, 0), want); d != "" {
					t.Fatalf("ReadFrom: %s", d)
				}
			}
			check(j, n)
			more := testEvents(n, 5, 10)
			if err := j.Append(more...); err != nil {
				t.Fatal(err)
			}
			if more[0].Seq != n+1 {
				t.Fatalf("append after truncate got seq %d, want %d", more[0].Seq, n+1)
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			check(openJournal(t, dir, Options{SegmentSize: 4096}), n+5)
		})
	}

	t.Run("empty journal", func(t *testing.T) {
		j := openJournal(t, t.TempDir(), Options{})
		if err := j.TruncateFront(5); err != nil {
			t.Fatalf("TruncateFront on an empty journal: %v", err)
		}
		if err := j.Append(testEvent(0, 0)); err != nil {
			t.Fatal(err)
		}
		if got := len(readAll(t, j, 0)); got != 1 {
			t.Fatalf("read %d entries, want 1", got)
		}
	})
}

// TestOpenJournalOfEarlierSegmentSize: a journal written by the previous
// release (2 MiB segments) whose tail segment is over today's
// DefaultSegmentSize opens, the first durable append starts a segment and
// fsyncs the directory for it, and every entry reads back in order, also
// after a reopen.
func TestOpenJournalOfEarlierSegmentSize(t *testing.T) {
	dir := t.TempDir()
	const earlier = 2 << 20
	old := openJournal(t, dir, Options{SegmentSize: earlier})
	var evs []*Event
	for old.Stats().BytesWritten < DefaultSegmentSize*3/2 {
		b := testEvents(len(evs), 50, 600)
		if err := old.AppendLazy(b...); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, b...)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	segs := segmentFiles(t, dir)
	if fi, err := os.Stat(filepath.Join(dir, segs[len(segs)-1])); err != nil {
		t.Fatal(err)
	} else if fi.Size() <= DefaultSegmentSize {
		t.Fatalf("tail segment of %d bytes: want one over %d", fi.Size(), DefaultSegmentSize)
	}

	j := openJournal(t, dir, Options{})
	fsyncs := j.Stats().Fsyncs
	more := testEvents(len(evs), 3, 100)
	if err := j.Append(more...); err != nil {
		t.Fatal(err)
	}
	evs = append(evs, more...)
	if got := len(segmentFiles(t, dir)); got != len(segs)+1 {
		t.Errorf("%d segments after the first append, want %d: a tail over the size rolls", got, len(segs)+1)
	}
	// The journal's fsyncs: the new segment, and the directory entry that
	// makes it durable (the wal fsyncs the tail it closes itself).
	if got := j.Stats().Fsyncs - fsyncs; got != 2 {
		t.Errorf("first append: %d fsyncs counted, want 2 (the segment and the directory)", got)
	}
	want := describeAll(evs, 1)
	if d := diffLines(readAll(t, j, 1), want); d != "" {
		t.Fatal(d)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openJournal(t, dir, Options{})
	if d := diffLines(readAll(t, j, 1), want); d != "" {
		t.Fatalf("reopened: %s", d)
	}
}
