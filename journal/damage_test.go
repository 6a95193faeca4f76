package journal

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// checkOpenRefuses checks that Open reports the damage of a scenario and
// changes no segment file.
func checkOpenRefuses(t *testing.T, dir string, sc crashScenario) {
	t.Helper()
	_, opts := sc.base()
	before := segmentContents(t, dir)
	for range 2 { // and again: nothing was changed by the first attempt
		j, err := Open(dir, opts)
		if err == nil {
			j.Close()
			t.Fatalf("Open accepted a damaged journal")
		}
		checkDamage(t, err, dir, *sc.damaged)
	}
	if !maps.Equal(before, segmentContents(t, dir)) {
		t.Errorf("Open changed segment files of a damaged journal")
	}
	if _, err := os.Stat(filepath.Join(dir, "damaged")); !os.IsNotExist(err) {
		t.Errorf("damaged/ exists after refusing: %v", err)
	}
}

// checkDamage checks that err is the *DamageError w describes.
func checkDamage(t *testing.T, err error, dir string, w damageWant) {
	t.Helper()
	var d *DamageError
	if !errors.As(err, &d) || !errors.Is(err, ErrDamaged) {
		t.Fatalf("error %v is not a *DamageError", err)
	}
	if d.Dir != dir || filepath.Base(d.Segment) != w.segment || d.Offset != w.offset || d.Index != w.index || d.Reason == "" {
		t.Errorf("damage = %+v, want segment %s offset %d entry %d", *d, w.segment, w.offset, w.index)
	}
	for _, part := range []string{dir, w.segment, fmt.Sprintf("offset %d", w.offset), fmt.Sprintf("entry %d", w.index)} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("%q does not name %q", err, part)
		}
	}
}

// segmentContents returns the contents of the segment files of dir.
func segmentContents(t testing.TB, dir string) map[string]string {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, s := range segs {
		b, err := os.ReadFile(s.path)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(s.path)] = string(b)
	}
	return out
}

// TestBitFlips flips one bit at every byte of the last 8 entries (they span
// two segments) and at random positions of older segments. Every flip must
// be reported as damage naming the entry it hit, Open must change no file,
// a scan skipping damage must deliver every other entry, and Salvage must
// keep exactly what verified: no entry that verified is ever removed.
func TestBitFlips(t *testing.T) {
	src := t.TempDir()
	evs := writeBase(t, src, multiBase)
	segs, err := listSegments(src)
	if err != nil {
		t.Fatal(err)
	}
	type place struct {
		seg   int    // index in segs
		off   int    // byte offset in the segment
		entry uint64 // the entry whose record holds it
		start int    // that record's offset
	}
	var places []place
	var older []place
	for i, s := range segs {
		buf, err := os.ReadFile(s.path)
		if err != nil {
			t.Fatal(err)
		}
		recs := records(t, buf)
		for k := 0; k+1 < len(recs); k++ {
			entry := s.first + uint64(k)
			for off := recs[k]; off < recs[k+1]; off++ {
				p := place{i, off, entry, recs[k]}
				if entry > uint64(len(evs)-8) {
					places = append(places, p)
				} else if i < len(segs)-1 {
					older = append(older, p)
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(10, 10))
	for range 300 {
		places = append(places, older[rng.IntN(len(older))])
	}

	root := memTempDir(t)
	for n, p := range places {
		dir := filepath.Join(root, fmt.Sprint(n))
		copyDir(t, src, dir)
		path := filepath.Join(dir, filepath.Base(segs[p.seg].path))
		buf, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		buf[p.off] ^= 1 << (n % 8)
		if err := os.WriteFile(path, buf, 0o640); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("bit %d of byte %d of %s (entry %d)", n%8, p.off, filepath.Base(path), p.entry)
		before := segmentContents(t, dir)

		_, err = Open(dir, multiBaseOpts())
		var d *DamageError
		if !errors.As(err, &d) || d.Index != p.entry || d.Offset != int64(p.start) || d.Segment != path {
			t.Fatalf("%s: Open: %v; want damage at entry %d, offset %d", name, err, p.entry, p.start)
		}
		if !maps.Equal(before, segmentContents(t, dir)) {
			t.Fatalf("%s: Open changed a segment", name)
		}
		_, seqs, damages := scanned(t, dir)
		if damages != 1 || len(seqs) < len(evs)-1 || slices.Contains(seqs, p.entry) && len(seqs) != len(evs) {
			t.Fatalf("%s: scan skipping damage: %d damages, delivered %v", name, damages, seqs)
		}
		rep, err := Salvage(dir, SalvageOptions{SegmentSize: 4096})
		if err != nil || rep.Kept != uint64(len(seqs)) {
			t.Fatalf("%s: Salvage kept %d of the %d that verified: %v", name, rep.Kept, len(seqs), err)
		}
		if v, err := Verify(dir); err != nil || !v.Clean() || v.Entries != rep.Kept {
			t.Fatalf("%s: after salvage: %+v, %v", name, v, err)
		}
		os.RemoveAll(dir)
	}
	t.Logf("%d bit flips reported as damage and salvaged", len(places))
}

// TestVerifyFixtures: Verify lists the damage of every damaged fixture and
// the torn tail of every torn one, and changes nothing.
func TestVerifyFixtures(t *testing.T) {
	for _, sc := range crashScenarios {
		t.Run(sc.name, func(t *testing.T) {
			dir := loadFixture(t, sc.name)
			before := snapshot(t, dir)
			v, err := Verify(dir)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case sc.damaged != nil:
				if len(v.Damage) != 1 || v.Torn != nil || v.Clean() {
					t.Fatalf("Verify: %+v, want one damage", v)
				}
				checkDamage(t, v.Err(), dir, *sc.damaged)
			case sc.cause != "":
				if len(v.Damage) != 0 || v.Torn == nil || v.Torn.Index != sc.lastGood+1 || v.Clean() {
					t.Fatalf("Verify: %+v, want a torn tail at entry %d", v, sc.lastGood+1)
				}
			default:
				if !v.Clean() || v.Err() != nil {
					t.Fatalf("Verify: %+v, want clean", v)
				}
			}
			if sc.damaged == nil && v.Last != sc.lastGood {
				t.Errorf("Verify: last %d, want %d", v.Last, sc.lastGood)
			}
			if !maps.Equal(before, snapshot(t, dir)) {
				t.Errorf("Verify changed the directory")
			}
		})
	}
}

// FuzzWalkSegment feeds arbitrary segment bytes to the checker that Open,
// Scan, Verify and Salvage share: it must not panic, and what it reports
// must tile the segment: records and bad regions in file order, without
// overlap, records verifying at increasing sequence numbers.
func FuzzWalkSegment(f *testing.F) {
	for _, sc := range crashScenarios {
		segs, err := listSegments(filepath.Join("testdata", sc.name))
		if err != nil {
			continue
		}
		for _, s := range segs {
			if b, err := os.ReadFile(s.path); err == nil {
				f.Add(b, s.first)
			}
		}
	}
	f.Add([]byte{}, uint64(1))
	f.Add(make([]byte, 40), uint64(7))
	f.Fuzz(func(t *testing.T, buf []byte, first uint64) {
		if first == 0 || first > 1<<62 {
			return
		}
		pos := 0
		var seq uint64
		err := walkSegment(buf, first, func(r record) error {
			if r.off < pos || r.end > len(buf) || r.off >= r.end {
				t.Fatalf("record [%d,%d) after %d in %d bytes", r.off, r.end, pos, len(buf))
			}
			if seq != 0 && r.seq <= seq {
				t.Fatalf("record %d after %d", r.seq, seq)
			}
			if _, s, _, err := verify(r.env); err != nil || s != r.seq {
				t.Fatalf("record %d does not verify: %v", r.seq, err)
			}
			pos, seq = r.end, r.seq
			return nil
		}, func(g region) error {
			if g.off != pos || g.end > len(buf) || g.off >= g.end || g.reason == "" {
				t.Fatalf("region [%d,%d) at %d in %d bytes", g.off, g.end, pos, len(buf))
			}
			if g.next != 0 && g.next < g.idx {
				t.Fatalf("region at entry %d resumes at %d", g.idx, g.next)
			}
			pos = g.end
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if pos != len(buf) {
			t.Fatalf("walk stopped at %d of %d bytes", pos, len(buf))
		}
	})
}
