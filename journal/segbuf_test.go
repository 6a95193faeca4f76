package journal

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestReadSegment: the pooled read returns the whole file, whatever the
// buffer it reuses held before (bigger or smaller files, an empty one).
func TestReadSegment(t *testing.T) {
	dir := t.TempDir()
	for i, size := range []int{100_000, 10, 0, 300_000, 4096} {
		want := bytes.Repeat([]byte{byte('a' + i)}, size)
		path := filepath.Join(dir, "seg")
		if err := os.WriteFile(path, want, 0o600); err != nil {
			t.Fatal(err)
		}
		got, release, err := readSegment(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("file of %d bytes: read %d bytes, not the file", size, len(got))
		}
		release()
	}
	if _, _, err := readSegment(filepath.Join(dir, "gone")); !os.IsNotExist(err) {
		t.Errorf("missing file: %v, want not-exist", err)
	}
}

// TestScanKeepsNothingOfTheBuffer: events a scan delivered stay intact
// after its buffer went back to the pool and another scan refilled it.
func TestScanKeepsNothingOfTheBuffer(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	writeJournal(t, a, testEvents(1, 60, 300))
	writeJournal(t, b, testEvents(1000, 60, 300))
	var first []*Event
	if err := Scan(a, ScanOptions{}, func(e *Event) error { first = append(first, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := Scan(b, ScanOptions{}, func(*Event) error { return nil }); err != nil {
		t.Fatal(err)
	}
	for i, e := range first {
		want := testEvent(1+i, 300)
		want.Seq = e.Seq
		if got, w := describe(e), describe(want); got != w {
			t.Fatalf("event %d changed after the buffer was reused:\n got %s\nwant %s", i+1, got, w)
		}
	}
}

// writeJournal appends evs durably to a new journal in dir.
func writeJournal(t *testing.T, dir string, evs []*Event) {
	t.Helper()
	j, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Append(evs...); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSegBufsKeepNoBigBuffer: the buffer of a segment much bigger than a
// default one (a big definition's own segment) is not kept by the pool.
func TestSegBufsKeepNoBigBuffer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(path, make([]byte, maxPooled+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, release, err := readSegment(path)
		if err != nil {
			t.Fatal(err)
		}
		release()
	}
	for range 3 {
		if bp, _ := segBufs.Get().(*[]byte); bp != nil && cap(*bp) > maxPooled {
			t.Fatalf("the pool kept a %d-byte buffer, at most %d", cap(*bp), maxPooled)
		}
	}
}
