package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/journal"
)

// TestTornJournalTail simulates power losses at every byte of the end of a
// finished run's journal, and damage appended after it: opening the
// journal repairs it, and resuming finishes the run without running again
// a task whose success survived.
func TestTornJournalTail(t *testing.T) {
	if testing.Short() {
		t.Skip("hundreds of resumes")
	}
	src := newHome(t)
	wf := parse(t, wfYAML("torn", "max_parallel: 2", "",
		task{name: "a", cmd: ledger("a")},
		task{name: "b", cmd: ledger("b"), deps: []string{"a"}},
		task{name: "c", cmd: ledger("c"), deps: []string{"a"}},
		task{name: "d", cmd: ledger("d"), deps: []string{"b", "c"}},
	))
	const runID = "torn-0000"
	run := src.start(wf, func(o *Options) { o.NewRunID = func(time.Time) string { return runID } })
	if run.Status != RunSuccess {
		t.Fatalf("run %s", run.Status)
	}
	if err := src.j.Close(); err != nil {
		t.Fatal(err)
	}
	src.j = nil
	pristine := src.events()
	_, data, offsets := lastSegment(t, src.journalDir())
	size := len(data)
	if len(offsets) < 4 {
		t.Fatalf("the journal's last segment has %d entries", len(offsets))
	}

	var cases []damage
	for cut := offsets[len(offsets)-3]; cut < len(data); cut++ {
		cases = append(cases, damage{name: fmt.Sprintf("cut-at-%d", cut), cut: cut})
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 300)
	for i := range garbage {
		garbage[i] = byte(rnd.IntN(256))
	}
	last := data[offsets[len(offsets)-1]:]
	flipped := append([]byte(nil), last...)
	flipped[len(flipped)-1] ^= 0x01 // a payload bit: the CRC fails
	lengthOnly := binary.AppendUvarint(nil, 1<<20)
	for _, d := range []damage{
		{name: "zero-byte", tail: make([]byte, 1)},
		{name: "zeroes-100", tail: make([]byte, 100)},
		{name: "zeroed-page", tail: make([]byte, 4096)},
		{name: "garbage", tail: garbage, damaged: true}, // its first byte frames a whole 16-byte record
		{name: "length-past-end", tail: lengthOnly},
		{name: "copy-of-last-entry", tail: last, damaged: true},  // a valid envelope at the wrong sequence number
		{name: "bit-flip-in-copy", tail: flipped, damaged: true}, // and with a bad CRC
		{name: "zeroes-over-last", cut: offsets[len(offsets)-1], tail: make([]byte, len(last))},
	} {
		if d.cut == 0 {
			d.cut = len(data)
		}
		cases = append(cases, d)
	}

	torn := &tornJournal{wf: wf, pristine: pristine, size: size, offsets: offsets}
	runTrials(t, len(cases), func(k int) string { return cases[k].name }, func(t *testing.T, k int) { torn.trial(t, k, cases[k]) })
}

// damage is one way the tail of the journal is cut or overwritten.
type damage struct {
	name    string
	tail    []byte // replaces data[cut:]
	cut     int
	damaged bool // a whole bogus record, not a torn write: Open refuses it
}

// tornJournal is the finished run of TestTornJournalTail: its workflow,
// its events, and the size and entry offsets of the last segment.
type tornJournal struct {
	wf       *workflow.Workflow
	pristine []*journal.Event
	size     int
	offsets  []int
}

// The trials run in parallel, each on a copy of the journal in which
// the run has an id of its own: a resume kills the leftover processes
// of its run id, which must not be another trial's task.
func (s *tornJournal) trial(t *testing.T, k int, tc damage) {
	wf, pristine, size, offsets := s.wf, s.pristine, s.size, s.offsets
	h, dir := journallessHome(t)
	id := fmt.Sprintf("torn-%04d", k+1) // as long as runID: the same offsets
	writeJournal(t, dir, pristine, id)
	seg, data, _ := lastSegment(t, dir)
	if len(data) != size {
		t.Fatalf("the copy's last segment has %d bytes, the original %d", len(data), size)
	}
	damaged := append(append([]byte(nil), data[:tc.cut]...), tc.tail...)
	if err := os.WriteFile(seg, damaged, 0o640); err != nil {
		t.Fatal(err)
	}
	if tc.damaged {
		j, err := openJournal(dir)
		if !errors.Is(err, journal.ErrDamaged) {
			if j != nil {
				j.Close()
			}
			t.Fatalf("Open: %v, want damage reported", err)
		}
		return
	}
	h.open()
	succeeded := map[string]bool{}
	if err := journal.Scan(dir, journal.ScanOptions{Strict: true}, func(e *journal.Event) error {
		if e.Type == journal.TaskFinished && e.Status == journal.StatusSuccess {
			succeeded[e.Task] = true
		}
		return nil
	}); err != nil {
		t.Fatalf("after repair the journal does not scan strictly: %v", err)
	}
	// Repair keeps every whole entry before the damage: it cuts at the
	// start of the entry the damage begins in.
	keep := len(data)
	for i := len(offsets) - 1; keep > tc.cut; i-- {
		keep = offsets[i]
	}
	wantRepair := len(tc.tail) > 0 || keep != tc.cut
	if rep := h.j.Repaired; rep.Truncated != wantRepair || wantRepair && rep.Offset != int64(keep) {
		t.Errorf("repair %+v; want truncated %v at %d", rep, wantRepair, keep)
	}
	r := h.replay(id)
	if r.Status != RunSuccess {
		if r.Status != RunRunning {
			t.Fatalf("the damaged journal says the run is %s", r.Status)
		}
		if err := h.engine().Resume(context.Background(), parse(t, r.Definition), r); err != nil {
			t.Fatalf("resume: %v", err)
		}
		r = h.replay(id)
	}
	if r.Status != RunSuccess {
		t.Fatalf("run %s after the resume: %s", r.Status, failures(r))
	}
	for _, tk := range wf.Tasks {
		if st := r.Tasks[tk.Name]; st == nil || st.Status != Success {
			t.Errorf("task %s is %v", tk.Name, st)
		}
	}
	var reran []string
	for _, n := range h.lines("ledger") {
		if succeeded[n] {
			t.Errorf("task %s ran again although its success survived", n)
		}
		reran = append(reran, n)
	}
	var lost []string
	for _, tk := range wf.Tasks {
		if !succeeded[tk.Name] {
			lost = append(lost, tk.Name)
		}
	}
	sort.Strings(reran)
	if fmt.Sprint(reran) != fmt.Sprint(lost) {
		t.Errorf("re-ran %v, want exactly the tasks whose success was lost: %v", reran, lost)
	}
}

// runTrials runs trial 0..n-1 as subtests from a pool of goroutines
// (t.Run may be called from several): it keeps fsync-bound trials
// overlapping whatever -parallel is.
func runTrials(t *testing.T, n int, name func(int) string, trial func(*testing.T, int)) {
	work := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				t.Run(name(k), func(t *testing.T) { trial(t, k) })
			}
		}()
	}
	for k := range n {
		work <- k
	}
	close(work)
	wg.Wait()
}

// journallessHome returns a home whose journal is closed and removed, and
// the journal's directory.
func journallessHome(t *testing.T) (*home, string) {
	h := newHome(t)
	h.j.Close()
	h.j = nil
	dir := h.journalDir()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	return h, dir
}

// writeJournal writes events to a new journal in dir, as run id.
func writeJournal(t *testing.T, dir string, evs []*journal.Event, id string) {
	t.Helper()
	j, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	cp := make([]*journal.Event, len(evs))
	for i, e := range evs {
		c := *e
		c.Run = id
		cp[i] = &c
	}
	if err := j.Append(cp...); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
}

// lastSegment returns the path and bytes of a journal's last segment file
// and the offset of each record in it.
func lastSegment(t *testing.T, dir string) (string, []byte, []int) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var segs []string
	for _, e := range ents {
		if !e.IsDir() && len(e.Name()) == 20 {
			segs = append(segs, e.Name())
		}
	}
	if len(segs) == 0 {
		t.Fatal("no segment")
	}
	sort.Strings(segs)
	path := filepath.Join(dir, segs[len(segs)-1])
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var offsets []int
	for off := 0; off < len(data); {
		n, k := binary.Uvarint(data[off:])
		if k <= 0 || off+k+int(n) > len(data) {
			t.Fatalf("undamaged segment unreadable at %d", off)
		}
		offsets = append(offsets, off)
		off += k + int(n)
	}
	return path, data, offsets
}

// copyDir copies the regular files of a directory (not its damaged/).
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o750); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
}
