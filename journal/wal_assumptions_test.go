package journal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/wal"
)

// The journal uses tidwall/wal through its API for writing (Open, WriteBatch,
// Sync, TruncateFront, Read, FirstIndex, LastIndex, ClearCache, Close). Reading without
// the lock (Scan, Verify), repairing before wal.Open and salvaging need
// more than the API promises; ARCHITECTURE.md ("What the journal assumes of
// tidwall/wal") lists it, and these tests pin each assumption against the
// module version in go.mod, so that an upgrade that breaks one fails here.

// pinnedWalVersion is the version the assumptions were checked against.
// Bumping the module makes TestWalVersionPinned fail: re-read the wal's
// source against the list in ARCHITECTURE.md, then update this constant.
const pinnedWalVersion = "v1.2.1"

func TestWalVersionPinned(t *testing.T) {
	mod, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mod), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "require" {
			f = f[1:]
		}
		if len(f) >= 2 && f[0] == "github.com/tidwall/wal" {
			if f[1] != pinnedWalVersion {
				t.Fatalf("go.mod requires tidwall/wal %s; the journal's assumptions were checked against %s: re-check them (ARCHITECTURE.md) and update pinnedWalVersion", f[1], pinnedWalVersion)
			}
			return
		}
	}
	t.Fatal("go.mod does not require github.com/tidwall/wal")
}

// walWrite writes n envelopes of varied sizes with the wal's API alone.
func walWrite(t *testing.T, dir string, n int, segSize int) *wal.Log {
	t.Helper()
	log, err := wal.Open(dir, &wal.Options{NoSync: true, SegmentSize: segSize, LogFormat: wal.Binary})
	if err != nil {
		t.Fatal(err)
	}
	var b wal.Batch
	for i := 1; i <= n; i++ {
		payload := []byte(fmt.Sprintf(`{"ts":%d,"tail":%q}`, i, strings.Repeat("x", (i*37)%700)))
		b.Write(uint64(i), appendEnvelope(nil, TaskFinished, uint64(i), payload))
		if i%3 == 0 || i == n {
			if err := log.WriteBatch(&b); err != nil {
				t.Fatal(err)
			}
		}
	}
	return log
}

// TestWalAssumptions pins what Scan, Verify, Repair and Salvage assume.
func TestWalAssumptions(t *testing.T) {
	dir := t.TempDir()
	log := walWrite(t, dir, 300, 2048)
	defer log.Close()
	if err := log.TruncateFront(50); err != nil {
		t.Fatal(err)
	}
	if err := log.Sync(); err != nil {
		t.Fatal(err)
	}

	// A1: the directory holds segment files only, each named by the
	// 20-digit index of its first entry.
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !isSegmentName(e.Name()) || !e.Type().IsRegular() {
			t.Errorf("A1: unexpected file %q in the wal's directory", e.Name())
		}
	}
	segs, err := listSegments(dir)
	if err != nil || len(segs) < 5 {
		t.Fatalf("A1: %d segments, %v", len(segs), err)
	}
	first, _ := log.FirstIndex()
	last, _ := log.LastIndex()
	if segs[0].first != first {
		t.Errorf("A1: first segment is named %d, FirstIndex is %d", segs[0].first, first)
	}

	// A2: each segment holds consecutive entries from the one it is named
	// after, each a uvarint length and that many bytes, back to back: what
	// walkSegment reads is exactly what Read returns. A3: every segment is
	// whole (no torn or unreadable record anywhere).
	next := first
	for _, s := range segs {
		if s.first != next {
			t.Fatalf("A2: segment %d follows entry %d", s.first, next-1)
		}
		buf, err := os.ReadFile(s.path)
		if err != nil {
			t.Fatal(err)
		}
		err = walkSegment(buf, s.first, func(r record) error {
			want, err := log.Read(r.seq)
			if err != nil || !bytes.Equal(want, r.env) || r.seq != next {
				return fmt.Errorf("A2: entry %d at offset %d differs from Read (%v)", r.seq, r.off, err)
			}
			next++
			return nil
		}, func(g region) error {
			return fmt.Errorf("A3: segment %d: bad region at %d: %s", s.first, g.off, g.reason)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if next != last+1 {
		t.Errorf("A2: read up to %d, LastIndex is %d", next-1, last)
	}
}

// TestWalOpenAssumptions pins how wal.Open treats what the journal leaves in
// its directory: A4, it fails on a cut-off last record (so Repair must run
// first) and accepts one cut at a record boundary; A5, it ignores the LOCK
// file and subdirectories (damaged/, salvage.ready/).
func TestWalOpenAssumptions(t *testing.T) {
	dir := t.TempDir()
	log := walWrite(t, dir, 40, 2048)
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "LOCK"), []byte("1 test\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"damaged", salvageReady} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, sub, segmentName(1)), []byte("junk"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	log, err := wal.Open(dir, &wal.Options{NoSync: true, SegmentSize: 2048})
	if err != nil {
		t.Fatalf("A5: wal.Open with LOCK and subdirectories: %v", err)
	}
	if last, err := log.LastIndex(); err != nil || last != 40 {
		t.Fatalf("A5: LastIndex %d, %v", last, err)
	}
	log.Close()

	segs, _ := listSegments(dir)
	tail := segs[len(segs)-1].path
	buf, err := os.ReadFile(tail)
	if err != nil {
		t.Fatal(err)
	}
	recs := records(t, buf)
	if err := os.WriteFile(tail, buf[:len(buf)-3], 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := wal.Open(dir, nil); !errors.Is(err, wal.ErrCorrupt) {
		t.Fatalf("A4: wal.Open of a cut-off record: %v, want ErrCorrupt", err)
	}
	if err := os.WriteFile(tail, buf[:recs[len(recs)-2]], 0o640); err != nil {
		t.Fatal(err)
	}
	log, err = wal.Open(dir, &wal.Options{NoSync: true, SegmentSize: 2048})
	if err != nil {
		t.Fatalf("A4: wal.Open cut at a record boundary: %v", err)
	}
	if last, _ := log.LastIndex(); last != 39 {
		t.Errorf("A4: LastIndex %d after cutting the last record, want 39", last)
	}
	log.Close()
}

// TestWalSegmentStartAssumption pins A6, which lets the journal skip
// listing its directory after a commit: the wal starts a new segment file
// only while writing a batch whose tail segment holds at least SegmentSize
// bytes, and the tail's file size is the sum of the uvarint-framed entries
// written to it. The journal counts those bytes (tailSize) and lists the
// directory only once the count reaches SegmentSize.
func TestWalSegmentStartAssumption(t *testing.T) {
	dir := t.TempDir()
	const segSize = 4096
	log, err := wal.Open(dir, &wal.Options{NoSync: true, SegmentSize: segSize, LogFormat: wal.Binary})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	var b wal.Batch
	tail, cycles := int64(0), 0
	for i, seq := 1, uint64(1); i <= 400; i++ {
		var written int64
		for k := 0; k < 1+i%4; k++ { // batches of 1 to 4 entries of varied sizes
			env := appendEnvelope(nil, TaskFinished, seq, []byte(fmt.Sprintf(`{"n":%d,"x":%q}`, seq, strings.Repeat("y", int(seq*53)%900))))
			b.Write(seq, env)
			written += int64(uvarintLen(uint64(len(env))) + len(env))
			seq++
		}
		before, err := listSegments(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := log.WriteBatch(&b); err != nil {
			t.Fatal(err)
		}
		after, err := listSegments(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(before) {
			cycles++
			if tail+written < segSize {
				t.Fatalf("A6: batch %d started a segment with %d bytes in the tail and %d written (segment size %d)", i, tail, written, segSize)
			}
		}
		fi, err := os.Stat(after[len(after)-1].path)
		if err != nil {
			t.Fatal(err)
		}
		if len(after) == len(before) && fi.Size() != tail+written {
			t.Fatalf("A6: tail segment holds %d bytes, %d were written to it", fi.Size(), tail+written)
		}
		tail = fi.Size()
	}
	if cycles < 10 {
		t.Fatalf("A6: only %d segments started: the test wrote too little", cycles)
	}
}

// TestWalEmptyTailAssumption pins A7, which lets the journal write an
// entry bigger than a segment in a segment of its own (writeAlone): after
// a segment named N with entries N..M, the wal opens a directory whose
// last segment is an empty file named M+1 as ending at M, and appends the
// next entry, M+1, to that file, as it does after it started the file
// itself.
func TestWalEmptyTailAssumption(t *testing.T) {
	dir := t.TempDir()
	log := walWrite(t, dir, 30, 1<<20)
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	big := appendEnvelope(nil, RunStarted, 31, []byte(`{"definition":"`+strings.Repeat("d", 5000)+`"}`))
	if err := writeSegment(filepath.Join(dir, segmentName(31)), big); err != nil {
		t.Fatal(err)
	}
	if err := writeSegment(filepath.Join(dir, segmentName(32)), nil); err != nil {
		t.Fatal(err)
	}
	log, err := wal.Open(dir, &wal.Options{NoSync: true, SegmentSize: 1 << 20, LogFormat: wal.Binary})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	if last, err := log.LastIndex(); err != nil || last != 31 {
		t.Fatalf("A7: last index %d (%v), want 31", last, err)
	}
	if got, err := log.Read(31); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("A7: entry 31 reads back %d bytes (%v), want the %d written", len(got), err, len(big))
	}
	next := appendEnvelope(nil, TaskStarted, 32, []byte(`{"ts":1}`))
	if err := log.Write(32, next); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, segmentName(32)))
	if err != nil || fi.Size() != int64(uvarintLen(uint64(len(next)))+len(next)) {
		t.Fatalf("A7: entry 32 is not alone in segment %s (%v)", segmentName(32), err)
	}
	if segs := segmentFiles(t, dir); len(segs) != 3 {
		t.Fatalf("A7: segments %v, want 3", segs)
	}
}

// TestWalOpenNamesAssumption pins A8, which lets Open skip listing its
// directory after wal.Open: opening a directory that holds a segment and
// no .START or .END file creates, renames and removes no file, and
// changes no file's size; also when the last segment is empty (A7).
func TestWalOpenNamesAssumption(t *testing.T) {
	dir := t.TempDir()
	log := walWrite(t, dir, 40, 2048)
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "LOCK"), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	files := func() string {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, e := range ents {
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s:%d ", e.Name(), fi.Size())
		}
		return b.String()
	}
	for _, c := range []string{"whole tail", "empty tail"} {
		if c == "empty tail" {
			if err := os.WriteFile(filepath.Join(dir, segmentName(41)), nil, 0o640); err != nil {
				t.Fatal(err)
			}
		}
		before := files()
		log, err := wal.Open(dir, &wal.Options{NoSync: true, SegmentSize: 2048, LogFormat: wal.Binary})
		if err != nil {
			t.Fatalf("A8 %s: %v", c, err)
		}
		if after := files(); after != before {
			t.Errorf("A8 %s: wal.Open changed the directory:\n%s\nbecame\n%s", c, before, after)
		}
		log.Close()
	}
}
