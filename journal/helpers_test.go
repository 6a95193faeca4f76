package journal

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Helpers shared by the tests of this package: deterministic events, a
// canonical text form to compare them, and directory copies and snapshots.

// baseTime is the clock of every generated event: fixtures must be
// byte-for-byte reproducible.
const baseTime = int64(1_700_000_000_000_000_000)

// testEvent returns the i-th event of a deterministic, realistic stream: a
// run start followed by task attempts. tail is the size of the output tail
// carried by TaskFinished events, to make entries sizeable.
func testEvent(i, tail int) *Event {
	run := fmt.Sprintf("r-%04d", i/50)
	task := fmt.Sprintf("task-%02d", i%17)
	ts := baseTime + int64(i)*1_000_000
	switch {
	case i%50 == 0:
		return &Event{Type: RunStarted, Time: ts, Run: run, Workflow: "nightly-backup",
			DefHash: "sha256:5f2b0c", Source: "/etc/picoflow/nightly.yaml", Trigger: "schedule",
			Definition: "name: nightly-backup\ntasks:\n  - name: dump\n    run: pg_dump app\n",
			Params:     map[string]string{"env": "prod", "region": "eu-west-1"}, FireTime: ts}
	case i%3 == 1:
		return &Event{Type: TaskStarted, Time: ts, Run: run, Task: task, Attempt: 1 + i%2,
			LogPath: "/var/log/picoflow/" + run + "/" + task + ".log"}
	case i%3 == 2:
		return &Event{Type: TaskProcess, Time: ts, Run: run, Task: task, Attempt: 1 + i%2, PGID: 4000 + i}
	default:
		return &Event{Type: TaskFinished, Time: ts, Run: run, Task: task, Attempt: 1 + i%2,
			Status: StatusSuccess, DurationMS: int64(i * 7), Tail: tailText(i, tail),
			Outputs: map[string]string{"rows": fmt.Sprint(i)}}
	}
}

// tailText is n bytes of plausible program output.
func tailText(i, n int) string {
	line := fmt.Sprintf("[%06d] copied block %d of table events\n", i, i*31)
	return strings.Repeat(line, n/len(line)+1)[:n]
}

// testEvents returns events first..first+n-1 of the stream.
func testEvents(first, n, tail int) []*Event {
	evs := make([]*Event, n)
	for k := range evs {
		evs[k] = testEvent(first+k, tail)
	}
	return evs
}

// describe is the canonical form events are compared by: envelope fields
// and the payload as the journal writes it.
func describe(e *Event) string {
	p, err := json.Marshal(e)
	if err != nil {
		return fmt.Sprintf("%d %s <%v>", e.Seq, e.Type, err)
	}
	return fmt.Sprintf("%d %s %s", e.Seq, e.Type, p)
}

// describeAll describes events, numbering them from first as Append would.
func describeAll(evs []*Event, first uint64) []string {
	out := make([]string, len(evs))
	for k, e := range evs {
		c := *e
		c.Seq = first + uint64(k)
		out[k] = describe(&c)
	}
	return out
}

// scanAll returns the description of every event Scan yields.
func scanAll(t testing.TB, dir string, opts ScanOptions) ([]string, error) {
	t.Helper()
	var got []string
	err := Scan(dir, opts, func(e *Event) error {
		got = append(got, describe(e))
		return nil
	})
	return got, err
}

// readAll returns the description of every event of an open journal.
func readAll(t testing.TB, j *Journal, from uint64) []string {
	t.Helper()
	var got []string
	if err := j.ReadFrom(from, func(e *Event) error {
		got = append(got, describe(e))
		return nil
	}); err != nil {
		t.Fatalf("ReadFrom(%d): %v", from, err)
	}
	return got
}

// openJournal opens dir and closes it when the test ends.
func openJournal(t testing.TB, dir string, opts Options) *Journal {
	t.Helper()
	j, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

// diffLines reports the first difference between two listings.
func diffLines(got, want []string) string {
	for k := range min(len(got), len(want)) {
		if got[k] != want[k] {
			return fmt.Sprintf("line %d:\n got %.300s\nwant %.300s", k, got[k], want[k])
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("got %d lines, want %d", len(got), len(want))
	}
	return ""
}

// memTempDir returns a temporary directory on a memory file system
// (/dev/shm) when there is one, else t.TempDir(). For tests that open
// journals by the thousand to check repair logic, not the disk: there,
// fsync is free.
func memTempDir(t testing.TB) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "picoflow-journal-test-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// copyDir copies the regular files of src (not its subdirectories) to dst.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
}

// fileState is what a read-only operation must not change.
type fileState struct {
	Size  int64
	Mode  os.FileMode
	MTime int64
	Data  string
}

// snapshot records every file and directory under dir.
func snapshot(t testing.TB, dir string) map[string]fileState {
	t.Helper()
	snap := map[string]fileState{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fileState{Size: fi.Size(), Mode: fi.Mode(), MTime: fi.ModTime().UnixNano()}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			st.Data = string(b)
		}
		rel, _ := filepath.Rel(dir, path)
		snap[rel] = st
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// segmentFiles lists the segment file names of dir.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range segs {
		names = append(names, filepath.Base(s.path))
	}
	return names
}

// records returns the byte offsets of the records of a segment file, plus
// its length: record k spans [offs[k], offs[k+1]).
func records(t testing.TB, buf []byte) []int {
	t.Helper()
	offs := []int{0}
	for off := 0; off < len(buf); {
		f, err := nextFrame(buf, off)
		if err != nil {
			t.Fatalf("records: %v", err)
		}
		off = f.end
		offs = append(offs, off)
	}
	return offs
}

// sortedKeys returns the keys of a snapshot in order, for messages.
func sortedKeys(m map[string]fileState) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
