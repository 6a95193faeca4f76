package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Crash fixtures: journals as a crash (or bit rot) leaves them, committed
// under testdata/NAME/ and named by scenario. They are made from two base
// journals by TestGenerateCrashFixtures (run with -update; the output is
// deterministic) and checked by TestRepairFixtures and
// TestScanDamagedFixtures against the expectations written here by hand.

// singleBase is a journal of 6 entries in one segment, the last two
// sizeable (a two-byte length prefix, records spanning many offsets).
func singleBase() (evs []*Event, opts Options) {
	evs = testEvents(0, 4, 0)
	evs = append(evs,
		&Event{Type: TaskFinished, Time: baseTime + 4e6, Run: "r-0000", Task: "task-04", Attempt: 1,
			Status: StatusFailed, ExitCode: 2, Error: "exit status 2", Tail: tailText(4, 500)},
		&Event{Type: TaskFinished, Time: baseTime + 5e6, Run: "r-0000", Task: "task-05", Attempt: 1,
			Status: StatusSuccess, Tail: tailText(5, 700), Outputs: map[string]string{"size": "1234"}},
	)
	return evs, Options{}
}

// multiBase is a journal of 44 entries in 4 KiB segments: 1-19, 20-39 and
// 40-44.
func multiBase() (evs []*Event, opts Options) {
	return testEvents(0, 44, 250), Options{SegmentSize: 4096}
}

// writeBase writes a base journal into dir, one Append per event.
func writeBase(t testing.TB, dir string, base func() ([]*Event, Options)) []*Event {
	t.Helper()
	evs, opts := base()
	j, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if err := j.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "LOCK"))
	return evs
}

// lastSegment returns the path and bytes of the last segment of dir.
func lastSegment(t testing.TB, dir string) (string, []byte) {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil || len(segs) == 0 {
		t.Fatalf("no segments in %s: %v", dir, err)
	}
	path := segs[len(segs)-1].path
	buf, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, buf
}

// rewriteLast replaces the last segment of dir by f(its bytes, record offsets).
func rewriteLast(f func(buf []byte, recs []int) []byte) func(testing.TB, string) {
	return func(t testing.TB, dir string) {
		path, buf := lastSegment(t, dir)
		if err := os.WriteFile(path, f(buf, records(t, buf)), 0o640); err != nil {
			t.Fatal(err)
		}
	}
}

// rewriteSegment replaces segment name of dir by f(its bytes, record
// offsets).
func rewriteSegment(name string, f func(buf []byte, recs []int) []byte) func(testing.TB, string) {
	return func(t testing.TB, dir string) {
		path := filepath.Join(dir, name)
		buf, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, f(buf, records(t, buf)), 0o640); err != nil {
			t.Fatal(err)
		}
	}
}

// reframe returns a wal record holding env.
func reframe(env []byte) []byte { return append(binary.AppendUvarint(nil, uint64(len(env))), env...) }

// envelopeOf returns the envelope inside the record at off.
func envelopeOf(buf []byte, off int) []byte {
	_, n := binary.Uvarint(buf[off:])
	return buf[off+n:]
}

type crashScenario struct {
	name   string
	base   func() ([]*Event, Options)
	damage func(t testing.TB, dir string)

	// Expectations, by hand.
	lastGood uint64 // the last entry kept
	cause    string // in Repaired.Cause; "" when Open has nothing to repair
	scanErr  string // what Scan (also non-strict) reports, when it must fail

	// Damage: Open refuses the journal and changes nothing.
	damaged *damageWant
}

// damageWant is the damage a scenario must be reported with.
type damageWant struct {
	segment string      // base name of the segment file
	offset  int64       // of the first bad record
	index   uint64      // the entry expected there
	seqs    []uint64    // what a scan skipping damage delivers
	gaps    [][2]uint64 // what Salvage reports: {Before, After} in new numbers
}

// seqRange returns from..to and then more.
func seqRange(from, to uint64, more ...uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return append(s, more...)
}

const seg1, seg20, seg40 = "00000000000000000001", "00000000000000000020", "00000000000000000040"

var crashScenarios = []crashScenario{
	{
		name: "clean", base: singleBase,
		damage:   func(testing.TB, string) {},
		lastGood: 6,
	},
	{
		name: "torn-tail", base: singleBase,
		// The last record stops halfway through its payload.
		damage:   rewriteLast(func(b []byte, r []int) []byte { return b[:r[5]+(r[6]-r[5])/2] }),
		lastGood: 5, cause: "entry 6: torn record at offset 1398: length 861 runs past the end of the file",
	},
	{
		name: "torn-length-prefix", base: singleBase,
		// Only the first byte of the last record's two-byte length made it.
		damage:   rewriteLast(func(b []byte, r []int) []byte { return b[:r[5]+1] }),
		lastGood: 5, cause: "entry 6: torn record at offset 1398: bad length prefix",
	},
	{
		name: "torn-header", base: singleBase,
		damage:   rewriteLast(func(b []byte, r []int) []byte { return b[:r[5]+2+headerSize-3] }),
		lastGood: 5, cause: "entry 6: torn record at offset 1398: length 861 runs past",
	},
	{
		name: "zero-tail", base: singleBase,
		// The file grew but its new block was never written: zeros follow
		// the last complete record.
		damage:   rewriteLast(func(b []byte, r []int) []byte { return append(b, make([]byte, 4096)...) }),
		lastGood: 6, cause: "entry 7: corrupt journal entry: 0 bytes, shorter than the 20-byte header",
	},
	{
		name: "zeroed-last-record", base: singleBase,
		damage:   rewriteLast(func(b []byte, r []int) []byte { clear(b[r[5]:]); return b }),
		lastGood: 5, cause: "entry 6: corrupt journal entry: 0 bytes",
	},
	{
		name: "garbage-tail", base: singleBase,
		damage: rewriteLast(func(b []byte, r []int) []byte {
			rng := rand.New(rand.NewPCG(1, 2))
			for range 300 {
				b = append(b, byte(rng.Uint32()))
			}
			return b
		}),
		lastGood: 6, cause: "entry 7: ",
	},
	{
		name: "bad-crc-last", base: singleBase,
		// A flipped bit in the last entry, which was written whole (and may
		// have been fsynced): damage, not a torn write.
		damage:  rewriteLast(func(b []byte, r []int) []byte { b[r[6]-10] ^= 0x04; return b }),
		damaged: &damageWant{segment: seg1, offset: 1398, index: 6, seqs: seqRange(1, 5), gaps: [][2]uint64{{5, 0}}},
	},
	{
		name: "bad-crc-middle-of-last-segment", base: singleBase,
		// Bit rot in entry 3, valid entries after it: damage, nothing cut.
		damage:  rewriteLast(func(b []byte, r []int) []byte { b[r[2]+25] ^= 0x10; return b }),
		damaged: &damageWant{segment: seg1, offset: 475, index: 3, seqs: seqRange(1, 2, 4, 5, 6), gaps: [][2]uint64{{2, 3}}},
	},
	{
		name: "bad-version-last", base: singleBase,
		damage: rewriteLast(func(b []byte, r []int) []byte {
			env := envelopeOf(b, r[5])
			env[0] = 2
			return b
		}),
		damaged: &damageWant{segment: seg1, offset: 1398, index: 6, seqs: seqRange(1, 5), gaps: [][2]uint64{{5, 0}}},
	},
	{
		name: "wrong-seq-last", base: singleBase,
		// A well-formed envelope at the wrong index (a stale block): damage;
		// a scan skipping damage delivers it with the number it carries.
		damage: rewriteLast(func(b []byte, r []int) []byte {
			env := envelopeOf(b, r[5])
			_, _, payload, _ := verify(env)
			return append(b[:r[5]], reframe(appendEnvelope(nil, TaskFinished, 60, payload))...)
		}),
		damaged: &damageWant{segment: seg1, offset: 1398, index: 6, seqs: seqRange(1, 5, 60), gaps: [][2]uint64{{5, 6}}},
	},
	{
		name: "unknown-type-last", base: singleBase,
		// A newer version wrote entry 7 with a type this one does not know:
		// not damage, never cut away, but an error for every reader.
		damage: rewriteLast(func(b []byte, r []int) []byte {
			return append(b, reframe(appendEnvelope(nil, 99, 7, []byte(`{"ts":1}`)))...)
		}),
		lastGood: 7, scanErr: "entry 7: unknown event type 99",
	},
	{
		name: "torn-tail-multi-segment", base: multiBase,
		damage:   rewriteLast(func(b []byte, r []int) []byte { return b[:len(b)-7] }),
		lastGood: 43, cause: "entry 44: torn record",
	},
	{
		name: "torn-first-record-of-segment", base: multiBase,
		// The crash came right after a roll: the new segment holds only the
		// start of its first record, and is truncated to nothing.
		damage:   rewriteLast(func(b []byte, r []int) []byte { return b[:r[1]-5] }),
		lastGood: 39, cause: "entry 40: torn record at offset 0",
	},
	{
		name: "bad-crc-first-record-of-segment", base: multiBase,
		damage:  rewriteLast(func(b []byte, r []int) []byte { b[r[1]-1] ^= 0x80; return b }),
		damaged: &damageWant{segment: seg40, offset: 0, index: 40, seqs: seqRange(1, 39, 41, 42, 43, 44), gaps: [][2]uint64{{39, 40}}},
	},
	{
		name: "damaged-length-prefix", base: singleBase,
		// The length prefix of entry 4 claims more than the file holds: the
		// envelope behind it still verifies, so nothing is lost, but the
		// wal cannot frame the segment any more.
		damage:  rewriteLast(func(b []byte, r []int) []byte { b[r[3]+1] ^= 0x40; return b }),
		damaged: &damageWant{segment: seg1, offset: 578, index: 4, seqs: seqRange(1, 6)},
	},
	{
		name: "damaged-older-segment", base: multiBase,
		// Bit rot in the middle of a segment that is not the last.
		damage:  rewriteSegment(seg20, func(b []byte, r []int) []byte { b[r[5]+40] ^= 0x01; return b }),
		damaged: &damageWant{segment: seg20, offset: 898, index: 25, seqs: seqRange(1, 24, seqRange(26, 44)...), gaps: [][2]uint64{{24, 25}}},
	},
	{
		name: "damaged-end-of-older-segment", base: multiBase,
		// The last entry of a segment that is not the last: nothing of the
		// same segment follows it, but the next segment does.
		damage:  rewriteSegment(seg20, func(b []byte, r []int) []byte { b[len(b)-3] ^= 0x01; return b }),
		damaged: &damageWant{segment: seg20, offset: 4085, index: 39, seqs: seqRange(1, 38, seqRange(40, 44)...), gaps: [][2]uint64{{38, 39}}},
	},
	{
		name: "missing-segment", base: multiBase,
		// A segment file lost (deleted, or its directory entry never made
		// it to disk): the next segment does not follow.
		damage: func(t testing.TB, dir string) {
			if err := os.Remove(filepath.Join(dir, seg20)); err != nil {
				t.Fatal(err)
			}
		},
		damaged: &damageWant{segment: seg40, offset: 0, index: 20, seqs: seqRange(1, 19, seqRange(40, 44)...), gaps: [][2]uint64{{19, 20}}},
	},
	{
		name: "garbage-frame-tail", base: singleBase,
		// A whole record of non-zero bytes after the last entry: it was not
		// cut short and it is not zeros, so it is not a torn write.
		damage: rewriteLast(func(b []byte, r []int) []byte {
			return append(b, append([]byte{20}, bytes.Repeat([]byte{0x5a}, 20)...)...)
		}),
		damaged: &damageWant{segment: seg1, offset: 2261, index: 7, seqs: seqRange(1, 6), gaps: [][2]uint64{{6, 0}}},
	},
}

// TestGenerateCrashFixtures writes testdata/NAME/ for every crash scenario.
// It only runs with -update.
func TestGenerateCrashFixtures(t *testing.T) {
	if !*update {
		t.Skip("run with -update to regenerate the crash fixtures")
	}
	for _, sc := range crashScenarios {
		tmp := t.TempDir()
		writeBase(t, tmp, sc.base)
		sc.damage(t, tmp)
		dst := filepath.Join("testdata", sc.name)
		if err := os.RemoveAll(dst); err != nil {
			t.Fatal(err)
		}
		copyDir(t, tmp, dst)
	}
}

// loadFixture copies testdata/NAME to a fresh directory: repair changes
// files.
func loadFixture(t testing.TB, name string) string {
	t.Helper()
	src := filepath.Join("testdata", name)
	if _, err := os.Stat(src); err != nil {
		t.Fatalf("fixture %s: %v (generate it with -run TestGenerateCrashFixtures -update)", name, err)
	}
	dir := filepath.Join(t.TempDir(), name)
	copyDir(t, src, dir)
	return dir
}

func TestRepairFixtures(t *testing.T) {
	for _, sc := range crashScenarios {
		t.Run(sc.name, func(t *testing.T) {
			dir := loadFixture(t, sc.name)
			if sc.damaged != nil {
				checkOpenRefuses(t, dir, sc)
				return
			}
			evs, opts := sc.base()
			kept := describeAll(evs[:min(int(sc.lastGood), len(evs))], 1)
			lastPath, before := lastSegment(t, dir)

			j, err := Open(dir, opts)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer func() { j.Close() }()
			rep := j.Repaired
			if rep.LastGood != sc.lastGood {
				t.Errorf("Repaired.LastGood = %d, want %d", rep.LastGood, sc.lastGood)
			}
			if got := j.LastSeq(); got != sc.lastGood {
				t.Errorf("LastSeq = %d, want %d", got, sc.lastGood)
			}
			if sc.cause == "" {
				if rep.Truncated || rep.Segment != "" || rep.Copy != "" || rep.Cause != "" {
					t.Errorf("nothing to repair, but Repaired = %+v", rep)
				}
				if _, err := os.Stat(filepath.Join(dir, "damaged")); !os.IsNotExist(err) {
					t.Errorf("damaged/ exists: %v", err)
				}
			} else {
				checkRepaired(t, dir, rep, sc.cause, lastPath, before)
			}

			checkReadBack(t, j, sc, kept)

			// Appending goes on at LastGood+1, and all of it survives a reopen.
			more := testEvents(100, 3, 40)
			if err := j.Append(more...); err != nil {
				t.Fatalf("Append after repair: %v", err)
			}
			if more[0].Seq != sc.lastGood+1 {
				t.Errorf("first Seq after repair = %d, want %d", more[0].Seq, sc.lastGood+1)
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			j, err = Open(dir, opts)
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			if j.Repaired.Truncated {
				t.Errorf("second repair: %+v", j.Repaired)
			}
			if sc.scanErr != "" {
				return
			}
			want := append(kept, describeAll(more, sc.lastGood+1)...)
			if d := diffLines(readAll(t, j, 1), want); d != "" {
				t.Fatalf("after reopen: %s", d)
			}
		})
	}
}

// checkReadBack checks that everything before the damage of sc reads back
// intact (kept), up to the scan error the scenario expects, if any.
func checkReadBack(t *testing.T, j *Journal, sc crashScenario, kept []string) {
	t.Helper()
	var got []string
	err := j.ReadFrom(1, func(e *Event) error {
		got = append(got, describe(e))
		return nil
	})
	if sc.scanErr != "" {
		if err == nil || !strings.Contains(err.Error(), sc.scanErr) {
			t.Fatalf("ReadFrom: %v, want %q", err, sc.scanErr)
		}
		if d := diffLines(got, kept); d != "" {
			t.Fatalf("ReadFrom before the error: %s", d)
		}
	} else {
		if err != nil {
			t.Fatalf("ReadFrom: %v", err)
		}
		if d := diffLines(got, kept); d != "" {
			t.Fatalf("ReadFrom: %s", d)
		}
	}
}

// checkRepaired checks a report of a truncation of the last segment, whose
// content before Open was orig.
func checkRepaired(t *testing.T, dir string, rep RepairReport, cause, lastPath string, orig []byte) {
	t.Helper()
	if !rep.Truncated || rep.Segment != lastPath {
		t.Errorf("Repaired = %+v, want the truncation of %s", rep, lastPath)
	}
	if !strings.Contains(rep.Cause, cause) {
		t.Errorf("Repaired.Cause = %q, want %q", rep.Cause, cause)
	}
	fi, err := os.Stat(lastPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != rep.Offset || rep.Offset+rep.Dropped != int64(len(orig)) {
		t.Errorf("segment is %d bytes; Repaired says cut at %d dropping %d of %d", fi.Size(), rep.Offset, rep.Dropped, len(orig))
	}
	if filepath.Dir(rep.Copy) != filepath.Join(dir, "damaged") || !strings.HasPrefix(filepath.Base(rep.Copy), filepath.Base(lastPath)+".") {
		t.Errorf("Repaired.Copy = %q, want %s/damaged/%s.UNIXNANO", rep.Copy, dir, filepath.Base(lastPath))
	}
	cp, err := os.ReadFile(rep.Copy)
	if err != nil {
		t.Fatalf("damaged copy: %v", err)
	}
	if !bytes.Equal(cp, orig) {
		t.Errorf("damaged copy differs from the segment before repair")
	}
	if now, err := os.ReadFile(lastPath); err != nil || !bytes.Equal(now, orig[:rep.Offset]) {
		t.Errorf("repair changed the segment before the cut: %v", err)
	}
}

// TestRepairEveryCut cuts the last entries at every byte offset, as a crash
// during their write may: Open must keep exactly the entries wholly before
// the cut. Zeros and garbage after the last entry are dropped the same way.
func TestRepairEveryCut(t *testing.T) {
	src := t.TempDir()
	evs := writeBase(t, src, singleBase)
	segPath, seg := lastSegment(t, src)
	recs := records(t, seg)
	name := filepath.Base(segPath)
	desc := describeAll(evs, 1)
	if len(recs) != len(evs)+1 {
		t.Fatalf("%d records, want %d", len(recs)-1, len(evs))
	}
	cuts := tornCuts(seg, recs, len(evs))
	damagedCuts := 0

	root := memTempDir(t)
	for k, c := range cuts {
		dir := filepath.Join(root, fmt.Sprint(k))
		if err := os.Mkdir(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), c.buf, 0o640); err != nil {
			t.Fatal(err)
		}
		j, err := Open(dir, Options{})
		if c.whole {
			// A whole bogus record is damage: reported, nothing cut.
			var d *DamageError
			if !errors.As(err, &d) || d.Index != uint64(c.keep+1) || d.Offset != int64(len(seg)) {
				t.Fatalf("%s: Open: %v, want damage at entry %d, offset %d", c.name, err, c.keep+1, len(seg))
			}
			if now, err := os.ReadFile(filepath.Join(dir, name)); err != nil || !bytes.Equal(now, c.buf) {
				t.Fatalf("%s: the damaged segment changed: %v", c.name, err)
			}
			damagedCuts++
			os.RemoveAll(dir)
			continue
		}
		if err != nil {
			t.Fatalf("%s: Open: %v", c.name, err)
		}
		damaged := len(c.buf) != recs[c.keep]
		if j.Repaired.Truncated != damaged || j.Repaired.LastGood != uint64(c.keep) || j.LastSeq() != uint64(c.keep) {
			t.Errorf("%s: LastSeq %d, Repaired %+v; want %d entries kept, truncated %v",
				c.name, j.LastSeq(), j.Repaired, c.keep, damaged)
		}
		if d := diffLines(readAll(t, j, 1), desc[:c.keep]); d != "" {
			t.Errorf("%s: %s", c.name, d)
		}
		// The next entry goes where the damage was.
		if err := j.AppendLazy(testEvent(9, 0)); err != nil {
			t.Errorf("%s: AppendLazy: %v", c.name, err)
		}
		if err := j.Close(); err != nil {
			t.Errorf("%s: Close: %v", c.name, err)
		}
		if got, err := scanAll(t, dir, ScanOptions{Strict: true}); err != nil || len(got) != c.keep+1 {
			t.Errorf("%s: after append: %d entries, %v; want %d", c.name, len(got), err, c.keep+1)
		}
		if t.Failed() {
			return
		}
		os.RemoveAll(dir)
	}
	t.Logf("%d torn tails repaired, %d whole bogus records reported as damage", len(cuts)-damagedCuts, damagedCuts)
	if damagedCuts == 0 {
		t.Errorf("no garbage formed a whole record: the damage path went untested")
	}
}

// A repairCut is the last segment of a journal, cut short or followed by
// zeros or garbage.
type repairCut struct {
	name  string
	buf   []byte
	keep  int  // entries that must survive
	whole bool // the bytes after them form a whole bogus record: damage
}

// tornCuts returns the cuts of TestRepairEveryCut: seg (entries records,
// starting at the offsets recs) cut at every offset of its last three
// entries, then followed by 1 to 64 zero bytes, then by 64 seeded runs of
// garbage.
func tornCuts(seg []byte, recs []int, entries int) []repairCut {
	var cuts []repairCut
	for off := recs[entries-3]; off <= len(seg); off++ {
		keep := 0
		for keep < entries && recs[keep+1] <= off {
			keep++
		}
		cuts = append(cuts, repairCut{fmt.Sprintf("cut at %d", off), seg[:off], keep, false})
	}
	for n := 1; n <= 64; n++ {
		cuts = append(cuts, repairCut{fmt.Sprintf("%d zero bytes", n), append(bytes.Clone(seg), make([]byte, n)...), entries, false})
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for k := range 64 {
		g := make([]byte, 1+rng.IntN(2048))
		for i := range g {
			g[i] = byte(rng.Uint32())
		}
		if k%4 == 0 {
			g[0] = 0x7f // a length that fits in the file: a whole bogus record
		}
		cuts = append(cuts, repairCut{fmt.Sprintf("garbage %d (%d bytes)", k, len(g)), append(bytes.Clone(seg), g...), entries, wholeFrame(g)})
	}
	return cuts
}

// wholeFrame reports whether g starts with a complete, non-empty record
// whose last byte is not zero: written whole, so not a torn write (the
// rule of doc.go, written out independently of looksTorn).
func wholeFrame(g []byte) bool {
	size, n := binary.Uvarint(g)
	return n > 0 && size > 0 && size <= uint64(len(g)-n) && g[n+int(size)-1] != 0
}

// TestRepairInterruptedTruncateFront leaves the files of a TruncateFront cut
// short by a crash (its START file written, the old segments not yet
// removed): Open completes it, and replays what is left (with
// Options.Finished too, which names no run: none finishes).
func TestRepairInterruptedTruncateFront(t *testing.T) {
	dir := t.TempDir()
	evs := writeBase(t, dir, multiBase)
	segs, err := listSegments(dir)
	if err != nil || len(segs) < 3 {
		t.Fatalf("%d segments, %v", len(segs), err)
	}
	// Truncate to an entry inside the second segment, as the wal would.
	from := segs[1].first + 2
	buf, err := os.ReadFile(segs[1].path)
	if err != nil {
		t.Fatal(err)
	}
	recs := records(t, buf)
	start := filepath.Join(dir, segmentName(from)+".START")
	if err := os.WriteFile(start, buf[recs[from-segs[1].first]:], 0o640); err != nil {
		t.Fatal(err)
	}

	// Scan, which never writes, still sees the journal as before.
	got, err := scanAll(t, dir, ScanOptions{Strict: true})
	if err != nil || len(got) != len(evs) {
		t.Fatalf("Scan: %d entries, %v", len(got), err)
	}

	// Replay gets what the journal holds once the wal finished the
	// truncation, not the entries the check saw before it.
	opts := multiBaseOpts()
	var replayed []string
	opts.Replay = func(e *Event) error { replayed = append(replayed, describe(e)); return nil }
	opts.Finished = func(run string) { t.Errorf("Finished(%s): no run finishes in this journal", run) }
	j := openJournal(t, dir, opts)
	if j.Repaired.Truncated {
		t.Errorf("Repaired = %+v", j.Repaired)
	}
	if d := diffLines(replayed, describeAll(evs, 1)[from-1:]); d != "" {
		t.Errorf("replayed while opening: %s", d)
	}
	if first, err := j.FirstSeq(); err != nil || first != from {
		t.Errorf("FirstSeq = %d, %v; want %d", first, err, from)
	}
	if _, err := os.Stat(start); !os.IsNotExist(err) {
		t.Errorf("START file left: %v", err)
	}
	if d := diffLines(readAll(t, j, 0), describeAll(evs, 1)[from-1:]); d != "" {
		t.Fatal(d)
	}
}

func multiBaseOpts() Options { _, o := multiBase(); return o }

// TestRepairReport pins what Repair says about a torn tail and that it is
// idempotent.
func TestRepairReport(t *testing.T) {
	dir := loadFixture(t, "torn-tail")
	path, buf := lastSegment(t, dir)
	rep, err := Repair(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := RepairReport{
		Segment: path, Offset: 1398, Dropped: int64(len(buf)) - 1398, LastGood: 5,
		Copy: rep.Copy, Truncated: true,
		Cause: "entry 6: torn record at offset 1398: length 861 runs past the end of the file",
	}
	if rep != want {
		t.Errorf("Repair = %+v\nwant %+v", rep, want)
	}
	again, err := Repair(dir)
	if err != nil || again != (RepairReport{LastGood: 5}) {
		t.Errorf("second Repair = %+v, %v; want nothing to do", again, err)
	}
	empty, err := Repair(filepath.Join(t.TempDir(), "missing"))
	if err != nil || empty != (RepairReport{}) {
		t.Errorf("Repair of a missing dir = %+v, %v", empty, err)
	}
}

// TestOpenDamagedLastEntryOfEarlierSegment: damage outside the last segment
// is not a torn write; Open must refuse it, not silently drop entries.
func TestOpenDamagedLastEntryOfEarlierSegment(t *testing.T) {
	dir := t.TempDir()
	writeBase(t, dir, multiBase)
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Empty the last segment and corrupt the entry before it, the newest.
	if err := os.WriteFile(segs[len(segs)-1].path, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	prev := segs[len(segs)-2].path
	buf, err := os.ReadFile(prev)
	if err != nil {
		t.Fatal(err)
	}
	buf[len(buf)-3] ^= 1
	if err := os.WriteFile(prev, buf, 0o640); err != nil {
		t.Fatal(err)
	}
	want := damageWant{segment: seg20, offset: 4085, index: 39}
	_, err = Open(dir, multiBaseOpts())
	checkDamage(t, err, dir, want)
	_, err = scanAll(t, dir, ScanOptions{})
	checkDamage(t, err, dir, want)
}
