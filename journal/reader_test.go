package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestScanDamagedFixtures reads every crash fixture with Scan: it must not
// change a file, must see exactly the entries Open would keep, and in
// strict mode must report the damage with its entry index.
func TestScanDamagedFixtures(t *testing.T) {
	for _, sc := range crashScenarios {
		t.Run(sc.name, func(t *testing.T) {
			dir := loadFixture(t, sc.name)
			evs, _ := sc.base()
			kept := describeAll(evs[:min(int(sc.lastGood), len(evs))], 1)
			before := snapshot(t, dir)
			if sc.damaged != nil {
				checkScanDamaged(t, dir, sc)
				if !maps.Equal(before, snapshot(t, dir)) {
					t.Errorf("Scan changed the directory")
				}
				return
			}

			got, err := scanAll(t, dir, ScanOptions{})
			switch {
			case sc.scanErr != "":
				if err == nil || !strings.Contains(err.Error(), sc.scanErr) {
					t.Errorf("Scan: %v, want %q", err, sc.scanErr)
				}
			case err != nil:
				t.Errorf("Scan: %v", err)
			default:
				if d := diffLines(got, kept); d != "" {
					t.Errorf("Scan: %s", d)
				}
			}
			if sc.lastGood > 1 && sc.scanErr == "" {
				got, err := scanAll(t, dir, ScanOptions{From: sc.lastGood})
				if err != nil || !slices.Equal(got, kept[len(kept)-1:]) {
					t.Errorf("Scan from %d: %d entries, %v; want the last good one", sc.lastGood, len(got), err)
				}
			}

			_, err = scanAll(t, dir, ScanOptions{Strict: true})
			switch {
			case sc.cause == "" && sc.scanErr == "":
				if err != nil {
					t.Errorf("strict Scan of an undamaged journal: %v", err)
				}
			case sc.cause != "":
				if err == nil {
					t.Fatalf("strict Scan accepted the damage")
				}
				var d *DamageError
				if !errors.As(err, &d) || d.Index != sc.lastGood+1 {
					t.Errorf("strict Scan: %v is not a *DamageError at entry %d", err, sc.lastGood+1)
				}
				if want := fmt.Sprintf("entry %d: ", sc.lastGood+1); !strings.Contains(err.Error(), want) {
					t.Errorf("strict Scan: %q does not name the entry (%q)", err, want)
				}
			}

			after := snapshot(t, dir)
			if !maps.Equal(before, after) {
				t.Errorf("Scan changed the directory:\nbefore %v\nafter  %v", sortedKeys(before), sortedKeys(after))
				for name, st := range before {
					if after[name] != st {
						t.Errorf("%s changed", name)
					}
				}
			}
		})
	}
}

// checkScanDamaged scans a damaged fixture: without OnDamage, strict or
// not, the scan delivers the entries before the damage and fails with it;
// with OnDamage it delivers every entry that verifies and reports the
// damage once, between the entries around it.
func checkScanDamaged(t *testing.T, dir string, sc crashScenario) {
	t.Helper()
	evs, _ := sc.base()
	all := describeAll(evs, 1)
	w := *sc.damaged
	for _, strict := range []bool{false, true} {
		var seqs []uint64
		err := Scan(dir, ScanOptions{Strict: strict}, func(e *Event) error {
			seqs = append(seqs, e.Seq)
			return nil
		})
		checkDamage(t, err, dir, w)
		if want := seqRange(1, w.index-1); !slices.Equal(seqs, want) {
			t.Errorf("strict %v: delivered %v before the damage, want %v", strict, seqs, want)
		}
	}
	var got []uint64
	var reported []*DamageError
	err := Scan(dir, ScanOptions{OnDamage: func(d *DamageError) error {
		if len(got) > 0 && got[len(got)-1] >= d.Index {
			t.Errorf("damage at entry %d reported after entry %d", d.Index, got[len(got)-1])
		}
		reported = append(reported, d)
		return nil
	}}, func(e *Event) error {
		got = append(got, e.Seq)
		if e.Seq <= uint64(len(all)) && describe(e) != all[e.Seq-1] {
			t.Errorf("entry %d: %s, want %s", e.Seq, describe(e), all[e.Seq-1])
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Scan skipping damage: %v", err)
	}
	if !slices.Equal(got, w.seqs) {
		t.Errorf("Scan skipping damage delivered %v, want %v", got, w.seqs)
	}
	if len(reported) != 1 {
		t.Fatalf("reported %d damages, want 1", len(reported))
	}
	checkDamage(t, reported[0], dir, w)
	stop := errors.New("stop")
	if err := Scan(dir, ScanOptions{OnDamage: func(*DamageError) error { return stop }}, func(*Event) error { return nil }); err != stop {
		t.Errorf("OnDamage's error ends the scan: got %v", err)
	}
}

func TestScanEmpty(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T) string
	}{
		{"missing directory", func(t *testing.T) string { return filepath.Join(t.TempDir(), "none") }},
		{"empty directory", func(t *testing.T) string { return t.TempDir() }},
		{"new journal", func(t *testing.T) string {
			dir := t.TempDir()
			j, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			return dir
		}},
		{"other files only", func(t *testing.T) string {
			dir := t.TempDir()
			for _, name := range []string{"LOCK", "00000000000000000000", "0000000000000000000x", "notes.txt"} {
				os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o640)
			}
			os.Mkdir(filepath.Join(dir, "damaged"), 0o750)
			return dir
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.setup(t)
			for _, strict := range []bool{false, true} {
				got, err := scanAll(t, dir, ScanOptions{Strict: strict})
				if err != nil || len(got) != 0 {
					t.Errorf("Scan(strict %v) = %d entries, %v; want none", strict, len(got), err)
				}
			}
		})
	}
}

// TestReadFromWhileAppending reads the journal in a loop while another
// goroutine appends large batches: a reader in the writer's process must
// never see a record the writer is still writing as damage.
func TestReadFromWhileAppending(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, dir, Options{SegmentSize: 1 << 20})
	var done atomic.Bool
	var wg sync.WaitGroup
	defer func() { done.Store(true); wg.Wait() }()
	wg.Go(func() {
		defer done.Store(true)
		for k := 0; k < 100 && !done.Load(); k++ {
			batch := make([]*Event, 8)
			for i := range batch {
				batch[i] = &Event{Type: TaskFinished, Time: int64(k), Tail: tailText(k, 3000)}
			}
			if err := j.AppendLazy(batch...); err != nil {
				t.Error(err)
				return
			}
		}
	})
	reads := 0
	for !done.Load() {
		reads++
		var next uint64 = 1
		err := j.ReadFrom(1, func(e *Event) error {
			if e.Seq != next {
				return fmt.Errorf("seq %d, want %d", e.Seq, next)
			}
			next++
			return nil
		})
		if err != nil {
			t.Fatalf("read %d, after %d entries: %v", reads, next-1, err)
		}
	}
	wg.Wait()
	t.Logf("%d reads during the appends", reads)
}

// The journal in testdata/journal/v1 was written once by the first version
// of the format, with one event of every type, and is committed: it must
// replay, to testdata/journal/v1.golden, in every later version. Neither
// file is ever regenerated: TestGenerateV1Journal writes them only when
// they are absent (and -update is set). A format change adds v2 beside it.
const (
	v1Dir    = "testdata/journal/v1"
	v1Golden = "testdata/journal/v1.golden"
)

// v1Events is one of each type, as a run with a retry, a skip, a crash, an
// in-doubt task and two schedule decisions writes them.
func v1Events() [][]*Event {
	const run = "r-20231114-221320-a1b2"
	at := func(ms int64) int64 { return baseTime + ms*1_000_000 }
	return [][]*Event{
		{{Type: ScheduleFired, Time: at(0), Workflow: "nightly-backup", FireTime: at(0), Run: run}},
		{{Type: RunStarted, Time: at(1), Run: run, Workflow: "nightly-backup", DefHash: "sha256:9c1e4f",
			Definition: "name: nightly-backup\ntasks:\n  - name: dump\n    run: pg_dump app > /backup/app.sql\n  - name: upload\n    depends_on: [dump]\n    run: rclone copy /backup remote:\n",
			Source:     "/etc/picoflow/nightly-backup.yaml", Trigger: "schedule", Params: map[string]string{"target": "remote", "day": "tue"}, FireTime: at(0)}},
		{{Type: TaskStarted, Time: at(2), Run: run, Task: "dump", Attempt: 1, LogPath: "/var/lib/picoflow/logs/" + run + "/dump.1.log"}},
		{{Type: TaskProcess, Time: at(3), Run: run, Task: "dump", Attempt: 1, PGID: 41207}},
		{{Type: TaskFinished, Time: at(4004), Run: run, Task: "dump", Attempt: 1, Status: StatusFailed, ExitCode: 1,
			Error: "exit status 1", DurationMS: 4001, Tail: "pg_dump: error: connection to server failed\n", Retryable: true},
			{Type: TaskRetrying, Time: at(4004), Run: run, Task: "dump", Attempt: 1, RetryAt: at(9004), BackoffMS: 5000}},
		{{Type: TaskStarted, Time: at(9005), Run: run, Task: "dump", Attempt: 2, LogPath: "/var/lib/picoflow/logs/" + run + "/dump.2.log"}},
		{{Type: TaskFinished, Time: at(12000), Run: run, Task: "dump", Attempt: 2, Status: StatusInterrupted, ExitCode: -1,
			Error: "interrupted by shutdown", DurationMS: 2995}},
		{{Type: RunResumed, Time: at(60000), Run: run}},
		{{Type: TaskInDoubt, Time: at(60001), Run: run, Task: "upload", Attempt: 1, Reason: "not idempotent; interrupted while running"}},
		{{Type: TaskResolved, Time: at(61000), Run: run, Task: "upload", Attempt: 1, Status: StatusFailed, Reason: "operator: rerun manually"}},
		{{Type: TaskStarted, Time: at(61001), Run: run, Task: "dump", Attempt: 3, Resumed: true, LogPath: "/var/lib/picoflow/logs/" + run + "/dump.3.log"}},
		{{Type: TaskFinished, Time: at(65000), Run: run, Task: "dump", Attempt: 3, Status: StatusSuccess, DurationMS: 3999,
			Outputs: map[string]string{"bytes": "73400320", "path": "/backup/app.sql"}, Tail: "done\n"},
			{Type: TaskSkipped, Time: at(65000), Run: run, Task: "upload", Status: StatusSkipped, Reason: "upstream failed: upload resolved as failed"}},
		{{Type: RunFinished, Time: at(65001), Run: run, Status: StatusFailed, Error: "1 task failed"}},
		{{Type: ScheduleSkipped, Time: at(86400000), Workflow: "nightly-backup", FireTime: at(86400000), Reason: "overlap: previous run still active"}},
	}
}

// TestGenerateV1Journal writes the v1 fixture if, and only if, it is absent.
func TestGenerateV1Journal(t *testing.T) {
	if !*update {
		t.Skip("run with -update to create a missing v1 journal fixture")
	}
	if _, err := os.Stat(v1Dir); err == nil {
		t.Skipf("%s exists and is never regenerated", v1Dir)
	}
	tmp := t.TempDir()
	j, err := Open(tmp, Options{SegmentSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	for k, batch := range v1Events() {
		if k%3 == 2 {
			err = j.AppendLazy(batch...)
		} else {
			err = j.Append(batch...)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(tmp, "LOCK"))
	copyDir(t, tmp, v1Dir)
	if _, err := os.Stat(v1Golden); err == nil {
		return
	}
	lines, err := listJSON(v1Dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(v1Golden, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// listJSON lists a journal as JSON lines: sequence number, type name and
// the event's payload.
func listJSON(dir string) ([]string, error) {
	var lines []string
	err := Scan(dir, ScanOptions{Strict: true}, func(e *Event) error {
		p, err := json.Marshal(e)
		if err != nil {
			return err
		}
		line, err := json.Marshal(struct {
			Seq   uint64          `json:"seq"`
			Type  string          `json:"type"`
			Event json.RawMessage `json:"event"`
		}{e.Seq, e.Type.String(), p})
		lines = append(lines, string(line))
		return err
	})
	return lines, err
}

func TestV1JournalReplays(t *testing.T) {
	want, err := os.ReadFile(v1Golden)
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, v1Dir)
	got, err := listJSON(v1Dir)
	if err != nil {
		t.Fatalf("Scan %s: %v", v1Dir, err)
	}
	if d := diffLines(got, strings.Split(strings.TrimSuffix(string(want), "\n"), "\n")); d != "" {
		t.Fatalf("%s no longer replays to %s: %s", v1Dir, v1Golden, d)
	}
	if !maps.Equal(before, snapshot(t, v1Dir)) {
		t.Fatalf("Scan changed %s", v1Dir)
	}
	if segs := segmentFiles(t, v1Dir); len(segs) < 2 {
		t.Errorf("v1 journal has %d segments, want several", len(segs))
	}

	// One event of every type of version 1.
	seen := map[string]bool{}
	for _, line := range got {
		var l struct{ Type string }
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		seen[l.Type] = true
	}
	for typ := RunStarted; typ <= ScheduleSkipped; typ++ {
		if !seen[typ.String()] {
			t.Errorf("v1 journal has no %s event", typ)
		}
	}

	// It also opens for writing (on a copy) and takes new entries.
	dir := t.TempDir()
	copyDir(t, v1Dir, dir)
	j := openJournal(t, dir, Options{SegmentSize: 1024})
	if j.Repaired.Truncated || j.LastSeq() != uint64(len(got)) {
		t.Fatalf("Open: LastSeq %d, Repaired %+v; want %d entries untouched", j.LastSeq(), j.Repaired, len(got))
	}
	if err := j.Append(testEvent(1, 10)); err != nil {
		t.Fatal(err)
	}
	if n := len(readAll(t, j, 1)); n != len(got)+1 {
		t.Errorf("read %d entries, want %d", n, len(got)+1)
	}
}

// TestScanWhileTruncating reads the journal while retention removes its
// front: a scan may skip entries that are gone by its end, never one that
// is kept, and reads on at least to the entries appended before it began.
func TestScanWhileTruncating(t *testing.T) {
	dir := memTempDir(t)
	j := openJournal(t, dir, Options{SegmentSize: 4096})
	if err := j.AppendLazy(testEvents(0, 100, 100)...); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	defer func() { stop.Store(true); wg.Wait() }()
	wg.Go(func() {
		defer stop.Store(true)
		for k := 0; k < 300 && !stop.Load(); k++ {
			if err := j.AppendLazy(testEvents(100+k*4, 4, 100)...); err != nil {
				t.Error(err)
				return
			}
			if err := j.TruncateFront(j.LastSeq() - 60); err != nil {
				t.Error(err)
				return
			}
		}
	})
	readers := []struct {
		name string
		read func(fn func(*Event) error) error
	}{
		{"ReadFrom", func(fn func(*Event) error) error { return j.ReadFrom(0, fn) }},
		{"Scan", func(fn func(*Event) error) error { return Scan(dir, ScanOptions{}, fn) }},
	}
	scans := 0
	for !stop.Load() {
		scans++
		for _, r := range readers {
			floor := j.LastSeq()
			next := uint64(1)
			var skipped [][2]uint64
			err := r.read(func(e *Event) error {
				if e.Seq < next {
					return fmt.Errorf("entry %d read again after %d", e.Seq, next-1)
				}
				if e.Seq > next {
					skipped = append(skipped, [2]uint64{next, e.Seq - 1})
				}
				next = e.Seq + 1
				return nil
			})
			if err != nil {
				t.Fatalf("%s %d: %v", r.name, scans, err)
			}
			if next <= floor {
				skipped = append(skipped, [2]uint64{next, floor})
			}
			first, err := j.FirstSeq()
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range skipped {
				if s[1] >= first {
					t.Fatalf("%s %d skipped entries %d..%d, but the journal still begins at %d", r.name, scans, s[0], s[1], first)
				}
			}
		}
	}
	t.Logf("%d scans during the truncations", scans)
}

// TestScanMissingSegment: a segment file missing between others is damage,
// not a place to skip entries silently.
func TestScanMissingSegment(t *testing.T) {
	dir := memTempDir(t)
	writeBase(t, dir, multiBase)
	segs, err := listSegments(dir)
	if err != nil || len(segs) != 3 {
		t.Fatalf("segments %v, %v; want 3", segs, err)
	}
	if err := os.Remove(segs[1].path); err != nil {
		t.Fatal(err)
	}
	for _, strict := range []bool{false, true} {
		got, err := scanAll(t, dir, ScanOptions{Strict: strict})
		want := fmt.Sprintf("segment %s does not follow entry %d", filepath.Base(segs[2].path), segs[1].first-1)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Scan(strict %v): %v, want %q", strict, err, want)
		}
		if len(got) != int(segs[1].first-1) {
			t.Errorf("Scan(strict %v) read %d entries, want the %d before the gap", strict, len(got), segs[1].first-1)
		}
	}
	// From past the gap reads on.
	got, err := scanAll(t, dir, ScanOptions{From: segs[2].first})
	if err != nil || len(got) != 44-int(segs[2].first)+1 {
		t.Errorf("Scan from %d: %d entries, %v", segs[2].first, len(got), err)
	}
}

// TestScanTypes: with ScanOptions.Types a scan (and Journal.Read) delivers
// the entries of those types only, the same events a full scan delivers
// for them, over several segments; damage still stops it.
func TestScanTypes(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir, Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Append(testEvents(0, 600, 300)...); err != nil {
		t.Fatal(err)
	}
	types := []Type{RunStarted, TaskProcess}
	var want []string
	if err := Scan(dir, ScanOptions{}, func(e *Event) error {
		if slices.Contains(types, e.Type) {
			want = append(want, describe(e))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, err := scanAll(t, dir, ScanOptions{Types: types})
	if err != nil || !slices.Equal(got, want) || len(want) == 0 {
		t.Fatalf("Scan with Types: %d events, %v; want the %d of those types", len(got), err, len(want))
	}
	var read []string
	if err := j.Read(ScanOptions{Types: types}, func(e *Event) error { read = append(read, describe(e)); return nil }); err != nil || !slices.Equal(read, want) {
		t.Fatalf("Read with Types: %d events, %v; want %d", len(read), err, len(want))
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	segs, err := listSegments(dir)
	if err != nil || len(segs) < 3 {
		t.Fatalf("%d segments, %v: the test wants several", len(segs), err)
	}
	b, err := os.ReadFile(segs[1].path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff // in the middle of a segment that others follow: damage
	if err := os.WriteFile(segs[1].path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	var de *DamageError
	if _, err := scanAll(t, dir, ScanOptions{Types: types}); !errors.As(err, &de) {
		t.Fatalf("Scan with Types over damage: %v, want a *DamageError", err)
	}
}

// TestScanNoDefinition: a run_started that ScanOptions.NoDefinition names
// is delivered without its definition, every other field as a full scan
// delivers it, and its definition is never copied out: scanning it
// allocates less than its size.
func TestScanNoDefinition(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	big := "name: big\n# " + strings.Repeat("a line of the definition\n", 80_000) // ~2 MB: a big entry
	evs := testEvents(0, 120, 50)
	evs[50].Definition = big
	if err := j.Append(evs...); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	skip := func(run string) bool { return run != "r-0000" } // r-0001 has the big one, r-0002 a small one
	var full, light []*Event
	if err := Scan(dir, ScanOptions{}, func(e *Event) error { full = append(full, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := Scan(dir, ScanOptions{NoDefinition: skip}, func(e *Event) error { light = append(light, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(full) != len(light) {
		t.Fatalf("%d events without definitions, %d with", len(light), len(full))
	}
	for k, e := range full {
		want := *e
		if e.Type == RunStarted && skip(e.Run) {
			want.Definition = ""
		}
		if describe(&want) != describe(light[k]) {
			t.Errorf("entry %d: %s\nwant %s", e.Seq, describe(light[k]), describe(&want))
		}
	}
	var opened []*Event // Open's replay (Options.Replay) leaves them out too
	j, err = Open(dir, Options{NoDefinition: skip, Replay: func(e *Event) error { opened = append(opened, e); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if len(opened) != len(light) {
		t.Fatalf("Open replayed %d events, the scan %d", len(opened), len(light))
	}
	for k, e := range opened {
		if describe(e) != describe(light[k]) {
			t.Errorf("entry %d replayed by Open: %s\nwant %s", e.Seq, describe(e), describe(light[k]))
		}
	}
	if light[0].Definition == "" || light[50].Definition != "" {
		t.Fatalf("definitions: kept %q, skipped %d bytes", light[0].Definition, len(light[50].Definition))
	}
	alloc := func(opts ScanOptions) uint64 {
		var a, b runtime.MemStats
		runtime.ReadMemStats(&a)
		if err := Scan(dir, opts, func(*Event) error { return nil }); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&b)
		return b.TotalAlloc - a.TotalAlloc
	}
	with, without := alloc(ScanOptions{}), alloc(ScanOptions{NoDefinition: skip})
	// Both read the big entry's segment into a buffer of its size (or a
	// pooled one); the definition is at least one copy of its size more.
	if with < without || with-without < uint64(len(big))*3/4 {
		t.Errorf("scan allocates %d bytes with the definition, %d without: want about its %d bytes less", with, without, len(big))
	}
}
