package journal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// scanned returns, for a journal that may be damaged, what a scan skipping
// damage delivers (descriptions without sequence numbers) and how many
// damages it reported.
func scanned(t testing.TB, dir string) (payloads []string, seqs []uint64, damages int) {
	t.Helper()
	err := Scan(dir, ScanOptions{OnDamage: func(*DamageError) error { damages++; return nil }}, func(e *Event) error {
		c := *e
		c.Seq = 0
		payloads = append(payloads, describe(&c))
		seqs = append(seqs, e.Seq)
		return nil
	})
	if err != nil {
		t.Fatalf("Scan skipping damage: %v", err)
	}
	return payloads, seqs, damages
}

// TestSalvageFixtures salvages every damaged fixture: the new journal holds
// every entry that verified, in order, numbered 1..n; the gaps are where
// the damage was; the old files are kept under damaged/; Open, Verify and
// appends work again.
func TestSalvageFixtures(t *testing.T) {
	for _, sc := range crashScenarios {
		if sc.damaged == nil {
			continue
		}
		t.Run(sc.name, func(t *testing.T) {
			dir := loadFixture(t, sc.name)
			_, opts := sc.base()
			want, _, _ := scanned(t, dir)
			old := segmentContents(t, dir)

			rep, err := Salvage(dir, SalvageOptions{Owner: "test", SegmentSize: opts.SegmentSize})
			if err != nil {
				t.Fatalf("Salvage: %v", err)
			}
			if rep.Kept != uint64(len(want)) || len(rep.Damage) != 1 || rep.Damage[0].Index != sc.damaged.index {
				t.Errorf("report: kept %d (want %d), damage %+v", rep.Kept, len(want), rep.Damage)
			}
			var gaps [][2]uint64
			for _, g := range rep.Gaps {
				gaps = append(gaps, [2]uint64{g.Before, g.After})
			}
			if !slices.Equal(gaps, sc.damaged.gaps) {
				t.Errorf("gaps %v, want %v", gaps, sc.damaged.gaps)
			}
			if rep.Renumbered != (len(sc.damaged.gaps) > 0 && sc.damaged.gaps[0][1] != 0) {
				t.Errorf("Renumbered = %v with gaps %v", rep.Renumbered, gaps)
			}
			checkCopies(t, dir, rep.Copies, old)

			got, seqs, damages := scanned(t, dir)
			if damages != 0 || !slices.Equal(got, want) || !slices.Equal(seqs, seqRange(1, uint64(len(want)))) {
				t.Fatalf("after salvage: %d damages, seqs %v; entries equal: %v", damages, seqs, slices.Equal(got, want))
			}
			if v, err := Verify(dir); err != nil || !v.Clean() || v.Entries != rep.Kept {
				t.Errorf("Verify after salvage: %+v, %v", v, err)
			}
			j := openJournal(t, dir, opts)
			if j.LastSeq() != rep.Kept {
				t.Errorf("LastSeq %d, want %d", j.LastSeq(), rep.Kept)
			}
			if err := j.Append(testEvents(200, 2, 10)...); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, j, 1); len(got) != len(want)+2 {
				t.Errorf("after appending: %d entries, want %d", len(got), len(want)+2)
			}
		})
	}
}

// checkCopies checks that copies hold the old segment files byte for byte.
func checkCopies(t *testing.T, dir string, copies []string, old map[string]string) {
	t.Helper()
	seen := 0
	for _, c := range copies {
		if !strings.HasPrefix(c, filepath.Join(dir, "damaged", "salvage-")) {
			t.Errorf("copy %s is not under damaged/salvage-*", c)
		}
		b, err := os.ReadFile(c)
		if err != nil {
			t.Fatal(err)
		}
		if want, ok := old[filepath.Base(c)]; ok {
			seen++
			if !bytes.Equal(b, []byte(want)) {
				t.Errorf("copy %s differs from the old segment", c)
			}
		}
	}
	if seen != len(old) {
		t.Errorf("%d of %d old segments copied", seen, len(old))
	}
}

// TestSalvageCrash stops Salvage at each step as a crash would: readers see
// either the old journal or the new one, never a mix, and the next Open
// rolls back (old journal, still damaged) or finishes (new journal).
func TestSalvageCrash(t *testing.T) {
	for _, tc := range []struct {
		step    string
		newSeen bool // readers see the new journal after the crash
	}{
		{"write", false}, {"commit", false}, {"switch", true}, {"moved-one", true},
	} {
		t.Run(tc.step, func(t *testing.T) {
			dir := loadFixture(t, "damaged-older-segment")
			opts := multiBaseOpts()
			oldPayloads, oldSeqs, _ := scanned(t, dir)
			salvageCrash = tc.step
			_, err := Salvage(dir, SalvageOptions{SegmentSize: 2048})
			salvageCrash = ""
			if !errors.Is(err, errSalvageCrash) {
				t.Fatalf("Salvage: %v, want the simulated crash", err)
			}
			got, seqs, damages := scanned(t, dir)
			if !slices.Equal(got, oldPayloads) {
				t.Fatalf("readers after a crash at %s see other entries", tc.step)
			}
			if isNew := damages == 0 && slices.Equal(seqs, seqRange(1, uint64(len(got)))); isNew != tc.newSeen {
				t.Fatalf("readers see the new journal: %v, want %v (seqs %v, old %v)", isNew, tc.newSeen, seqs, oldSeqs)
			}
			j, err := Open(dir, opts)
			if !tc.newSeen {
				if !errors.Is(err, ErrDamaged) {
					t.Fatalf("Open after a crash before the commit: %v, want the old damage", err)
				}
				if _, err := os.Stat(filepath.Join(dir, salvageNew)); !os.IsNotExist(err) {
					t.Errorf("%s left behind: %v", salvageNew, err)
				}
				if _, err := Salvage(dir, SalvageOptions{SegmentSize: 2048}); err != nil {
					t.Fatalf("Salvage again: %v", err)
				}
				j, err = Open(dir, opts)
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer j.Close()
			if _, err := os.Stat(filepath.Join(dir, salvageReady)); !os.IsNotExist(err) {
				t.Errorf("%s left behind: %v", salvageReady, err)
			}
			all := readAll(t, j, 1)
			if len(all) != len(oldPayloads) {
				t.Errorf("after Open: %d entries, want %d", len(all), len(oldPayloads))
			}
		})
	}
}

// TestSalvageKeep leaves out the entries Keep refuses and counts them.
func TestSalvageKeep(t *testing.T) {
	dir := loadFixture(t, "damaged-older-segment")
	all, _, _ := scanned(t, dir)
	rep, err := Salvage(dir, SalvageOptions{Keep: func(e *Event) bool { return e.Type != TaskProcess }})
	if err != nil {
		t.Fatal(err)
	}
	got, _, _ := scanned(t, dir)
	if rep.Left == 0 || rep.Kept+rep.Left != uint64(len(all)) || uint64(len(got)) != rep.Kept {
		t.Errorf("kept %d, left %d of %d; the new journal has %d", rep.Kept, rep.Left, len(all), len(got))
	}
	for _, d := range got {
		if strings.Contains(d, TaskProcess.String()) {
			t.Fatalf("a refused entry was kept: %s", d)
		}
	}
}

// TestSalvageLocked: Salvage refuses a journal another writer has open.
func TestSalvageLocked(t *testing.T) {
	dir := t.TempDir()
	openJournal(t, dir, Options{Owner: "run nightly"})
	_, err := Salvage(dir, SalvageOptions{})
	var le *LockedError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "run nightly") {
		t.Fatalf("Salvage of an open journal: %v", err)
	}
}

// FuzzSalvageManifest feeds arbitrary manifests to the reader that Scan uses
// while a salvage switch is pending: it must not panic and must list only
// segment files, in index order.
func FuzzSalvageManifest(f *testing.F) {
	f.Add("00000000000000000001\n00000000000000000040\nMANIFEST\n")
	f.Add("")
	f.Add("../../etc/passwd 00000000000000000000 99999999999999999999")
	f.Fuzz(func(t *testing.T, manifest string) {
		dir := t.TempDir()
		rdir := filepath.Join(dir, salvageReady)
		if err := os.Mkdir(rdir, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(rdir, salvageManifest), []byte(manifest), 0o640); err != nil {
			t.Fatal(err)
		}
		segs, err := salvagedSegments(dir)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range segs {
			if !isSegmentName(filepath.Base(s.path)) || filepath.Dir(filepath.Dir(s.path)) != dir && filepath.Dir(s.path) != dir {
				t.Fatalf("segment %q from manifest %q", s.path, manifest)
			}
			if i > 0 && segs[i-1].first > s.first {
				t.Fatalf("segments out of order: %v", segs)
			}
		}
	})
}
