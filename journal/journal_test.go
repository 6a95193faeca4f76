package journal

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestAppendReadFromRoundTrip(t *testing.T) {
	everyField := &Event{
		Type: TaskFinished, Time: -1, Run: "r", Task: "t", Attempt: 3,
		Workflow: "w", DefHash: "h", Definition: "d", Source: "s", Trigger: "manual",
		Params: map[string]string{"a": "1", "b": ""}, FireTime: 9, LogPath: "/l", PGID: 7,
		Resumed: true, Status: StatusTimeout, ExitCode: -1, Error: "killed", DurationMS: 1,
		Tail: "x", Outputs: map[string]string{"o": "v"}, Retryable: true, Reason: "r",
		RetryAt: 11, BackoffMS: 12,
	}
	var everyType []*Event
	for typ := Type(1); typ.Known(); typ++ {
		everyType = append(everyType, &Event{Type: typ, Time: baseTime + int64(typ), Run: "r-1"})
	}
	cases := []struct {
		name    string
		batches [][]*Event
	}{
		{"one event", [][]*Event{{testEvent(0, 0)}}},
		{"one batch", [][]*Event{testEvents(0, 10, 100)}},
		{"several batches", [][]*Event{testEvents(0, 3, 10), testEvents(3, 1, 10), testEvents(4, 7, 10)}},
		{"every type", [][]*Event{everyType}},
		{"every field", [][]*Event{{everyField}}},
		{"text that needs escaping", [][]*Event{{{Type: TaskFinished, Tail: "quote \" nul \x00 tab \t é ✓ \u2028 <html>&", Error: "\\"}}}},
		{"one large event", [][]*Event{{{Type: TaskFinished, Tail: tailText(1, 3<<20)}}}},
		{"empty append then events", [][]*Event{{}, testEvents(0, 2, 0)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := openJournal(t, t.TempDir(), Options{})
			var want []*Event
			for _, b := range tc.batches {
				if err := j.Append(b...); err != nil {
					t.Fatalf("Append: %v", err)
				}
				want = append(want, b...)
			}
			wantDesc := describeAll(want, 1)
			if d := diffLines(readAll(t, j, 1), wantDesc); d != "" {
				t.Fatalf("ReadFrom: %s", d)
			}
			if d := diffLines(readAll(t, j, 0), wantDesc); d != "" {
				t.Fatalf("ReadFrom(0): %s", d)
			}
			if got := j.LastSeq(); got != uint64(len(want)) {
				t.Errorf("LastSeq = %d, want %d", got, len(want))
			}
		})
	}
}

func TestAppendAssignsConsecutiveSeqs(t *testing.T) {
	cases := []struct {
		name  string
		sizes []int // events per Append call
	}{
		{"singles", []int{1, 1, 1, 1}},
		{"batches", []int{3, 1, 5, 2}},
		{"empty appends in between", []int{2, 0, 0, 3, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := openJournal(t, t.TempDir(), Options{})
			next, i := uint64(1), 0
			for _, n := range tc.sizes {
				evs := testEvents(i, n, 0)
				i += n
				if err := j.Append(evs...); err != nil {
					t.Fatal(err)
				}
				for _, e := range evs {
					if e.Seq != next {
						t.Fatalf("Seq = %d, want %d", e.Seq, next)
					}
					next++
				}
				if got := j.LastSeq(); got != next-1 {
					t.Fatalf("LastSeq = %d, want %d", got, next-1)
				}
			}
			if got := j.Stats().Entries; got != next-1 {
				t.Errorf("Stats().Entries = %d, want %d", got, next-1)
			}
		})
	}
}

func TestReopenContinuesNumbering(t *testing.T) {
	dir := t.TempDir()
	var want []*Event
	for round := range 4 {
		j, err := Open(dir, Options{SegmentSize: 4096})
		if err != nil {
			t.Fatalf("round %d: Open: %v", round, err)
		}
		if j.Repaired.Truncated {
			t.Errorf("round %d: clean reopen repaired: %+v", round, j.Repaired)
		}
		if got := j.LastSeq(); got != uint64(len(want)) {
			t.Fatalf("round %d: LastSeq = %d, want %d", round, got, len(want))
		}
		evs := testEvents(len(want), 10+round*7, 200)
		if err := j.Append(evs...); err != nil {
			t.Fatal(err)
		}
		if evs[0].Seq != uint64(len(want)+1) {
			t.Fatalf("round %d: first new Seq = %d, want %d", round, evs[0].Seq, len(want)+1)
		}
		want = append(want, evs...)
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := scanAll(t, dir, ScanOptions{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	if d := diffLines(got, describeAll(want, 1)); d != "" {
		t.Fatal(d)
	}
}

func TestAppendLazyDurableAfterClose(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	before := j.Stats().Fsyncs
	evs := testEvents(0, 5, 50)
	for _, e := range evs {
		if err := j.AppendLazy(e); err != nil {
			t.Fatal(err)
		}
	}
	if got := j.Stats().Fsyncs - before; got != 0 {
		t.Errorf("AppendLazy fsynced %d times, want 0", got)
	}
	if evs[4].Seq != 5 {
		t.Errorf("lazy Seq = %d, want 5", evs[4].Seq)
	}
	// Lazy entries are readable at once.
	if d := diffLines(readAll(t, j, 1), describeAll(evs, 1)); d != "" {
		t.Fatal(d)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if got := j.Stats().Fsyncs - before; got != 1 {
		t.Errorf("Close fsynced %d times, want 1", got)
	}

	j = openJournal(t, dir, Options{})
	if j.Repaired.Truncated {
		t.Errorf("repaired after a clean close: %+v", j.Repaired)
	}
	if d := diffLines(readAll(t, j, 1), describeAll(evs, 1)); d != "" {
		t.Fatal(d)
	}
	// An Append makes earlier lazy entries durable with its single fsync.
	before = j.Stats().Fsyncs
	more := testEvents(5, 3, 0)
	if err := j.AppendLazy(more[:2]...); err != nil {
		t.Fatal(err)
	}
	if err := j.Append(more[2]); err != nil {
		t.Fatal(err)
	}
	if got := j.Stats().Fsyncs - before; got != 1 {
		t.Errorf("AppendLazy+Append fsynced %d times, want 1", got)
	}
	before = j.Stats().Fsyncs
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := j.Stats().Fsyncs - before; got != 1 {
		t.Errorf("Sync fsynced %d times, want 1", got)
	}
}

func TestAppendRejects(t *testing.T) {
	cases := []struct {
		name string
		evs  []*Event
		want string
	}{
		{"type zero", []*Event{{Time: 1}}, "append: unknown event type 0"},
		{"unknown type", []*Event{{Type: typeEnd}}, fmt.Sprintf("append: unknown event type %d", typeEnd)},
		{"one bad in a batch", []*Event{testEvent(1, 0), {Type: 500}, testEvent(2, 0)}, "unknown event type 500"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := openJournal(t, t.TempDir(), Options{})
			if err := j.Append(testEvent(0, 0)); err != nil {
				t.Fatal(err)
			}
			err := j.Append(tc.evs...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Append: %v, want %q", err, tc.want)
			}
			if got := j.LastSeq(); got != 1 {
				t.Errorf("LastSeq = %d after a rejected append, want 1", got)
			}
			// Nothing of the rejected batch was written; the journal goes on.
			if err := j.Append(testEvent(3, 0)); err != nil {
				t.Fatal(err)
			}
			if got := len(readAll(t, j, 1)); got != 2 {
				t.Errorf("read %d entries, want 2", got)
			}
		})
	}
}

func TestClosed(t *testing.T) {
	j, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	ops := []struct {
		name string
		op   func() error
	}{
		{"Append", func() error { return j.Append(testEvent(0, 0)) }},
		{"AppendLazy", func() error { return j.AppendLazy(testEvent(0, 0)) }},
		{"Sync", j.Sync},
		{"TruncateFront", func() error { return j.TruncateFront(1) }},
		{"FirstSeq", func() error { _, err := j.FirstSeq(); return err }},
	}
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			if err := o.op(); err == nil || !strings.Contains(err.Error(), "closed") {
				t.Errorf("%s after Close: %v, want a closed error", o.name, err)
			}
		})
	}
	if err := j.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestConcurrentAppend has 8 goroutines append at once: every event must be
// written exactly once, numbered without gaps, in each goroutine's order,
// and group commit must never cost more than one fsync per Append.
func TestConcurrentAppend(t *testing.T) {
	const writers, perWriter = 8, 40
	dir := t.TempDir()
	j := openJournal(t, dir, Options{SegmentSize: 64 << 10})
	before := j.Stats()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for k := range perWriter {
				e := &Event{Type: TaskProcess, Time: baseTime, Run: fmt.Sprintf("w%d", w), Attempt: k, Tail: tailText(k, 100)}
				var err error
				if k%5 == 4 {
					err = j.Append(e, &Event{Type: TaskProcess, Time: baseTime, Run: fmt.Sprintf("w%d", w), Attempt: k, PGID: 1})
				} else {
					err = j.Append(e)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	calls := uint64(writers * perWriter)
	entries := uint64(writers * (perWriter + perWriter/5))
	after := j.Stats()
	if got := after.Entries - before.Entries; got != entries {
		t.Errorf("Stats().Entries grew by %d, want %d", got, entries)
	}
	rolls := uint64(len(segmentFiles(t, dir)) - 1)
	fsyncs := after.Fsyncs - before.Fsyncs
	if fsyncs > calls+rolls {
		t.Errorf("%d fsyncs for %d Append calls and %d segment rolls: group commit costs more than one per call", fsyncs, calls, rolls)
	}
	t.Logf("%d Append calls from %d goroutines: %d fsyncs (%d segment rolls)", calls, writers, fsyncs, rolls)

	seen := map[[2]int]uint64{} // (writer, attempt) → seq of its first event
	var prevSeq uint64
	last := map[string]uint64{}
	err := j.ReadFrom(1, func(e *Event) error {
		if e.Seq != prevSeq+1 {
			return fmt.Errorf("seq %d follows %d", e.Seq, prevSeq)
		}
		prevSeq = e.Seq
		if e.Seq < last[e.Run] {
			return fmt.Errorf("writer %s: seq %d after %d", e.Run, e.Seq, last[e.Run])
		}
		last[e.Run] = e.Seq
		if e.PGID == 1 {
			if first, ok := seen[[2]int{int(e.Run[1] - '0'), e.Attempt}]; !ok || first != e.Seq-1 {
				return fmt.Errorf("seq %d: batch of %s/%d split (first at %d)", e.Seq, e.Run, e.Attempt, first)
			}
			return nil
		}
		key := [2]int{int(e.Run[1] - '0'), e.Attempt}
		if _, dup := seen[key]; dup {
			return fmt.Errorf("seq %d: %s/%d written twice", e.Seq, e.Run, e.Attempt)
		}
		seen[key] = e.Seq
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != int(calls) || prevSeq != entries {
		t.Errorf("read %d distinct appends and %d entries, want %d and %d", len(seen), prevSeq, calls, entries)
	}
}

// TestGroupCommitSharesFsync makes the contention deterministic: the first
// Append is held inside its fsync until seven more have queued behind it;
// those seven must then be committed together, with one write and one fsync.
func TestGroupCommitSharesFsync(t *testing.T) {
	var hold atomic.Pointer[chan struct{}]
	entered := make(chan struct{})
	opts := Options{ObserveFsync: func(time.Duration) {
		if ch := hold.Swap(nil); ch != nil {
			entered <- struct{}{}
			<-*ch
		}
	}}
	j := openJournal(t, t.TempDir(), opts)
	before := j.Stats().Fsyncs
	release := make(chan struct{})
	hold.Store(&release)

	evs := testEvents(0, 8, 0)
	var wg sync.WaitGroup
	errs := make([]error, len(evs))
	wg.Go(func() { errs[0] = j.Append(evs[0]) })
	<-entered // the first commit is inside its fsync, holding the write lock
	for k := 1; k < len(evs); k++ {
		wg.Go(func() { errs[k] = j.Append(evs[k]) })
	}
	for queued := 0; queued < len(evs)-1; runtime.Gosched() {
		j.qmu.Lock()
		queued = len(j.queue)
		j.qmu.Unlock()
	}
	close(release)
	wg.Wait()
	for k, err := range errs {
		if err != nil {
			t.Fatalf("Append %d: %v", k, err)
		}
	}
	if got := j.Stats().Fsyncs - before; got != 2 {
		t.Errorf("8 Appends, 7 of them queued together: %d fsyncs, want 2", got)
	}
	if evs[0].Seq != 1 {
		t.Errorf("first Append got seq %d, want 1", evs[0].Seq)
	}
	var seqs []uint64
	for _, e := range evs[1:] {
		seqs = append(seqs, e.Seq)
	}
	slices.Sort(seqs)
	if want := []uint64{2, 3, 4, 5, 6, 7, 8}; !slices.Equal(seqs, want) {
		t.Errorf("queued appends got seqs %v, want %v", seqs, want)
	}
}

// TestOpenLockedInProcess opens the same directory twice in one process:
// flock locks belong to an open file description, so the second Open
// conflicts with the first although the process is the same.
func TestOpenLockedInProcess(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir, Options{Owner: "scheduler"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		dir  string
	}{
		{"same path", dir},
		{"path with a trailing slash", dir + "/"},
		{"path through dot", filepath.Join(dir, ".")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j2, err := Open(tc.dir, Options{})
			if err == nil {
				j2.Close()
				t.Fatal("second Open succeeded")
			}
			var le *LockedError
			if !errors.As(err, &le) {
				t.Fatalf("Open: %v (%T), want *LockedError", err, err)
			}
			if le.PID != os.Getpid() || le.Owner != "scheduler" || le.Path != filepath.Join(tc.dir, "LOCK") {
				t.Errorf("LockedError = %+v, want pid %d owner scheduler dir %s", *le, os.Getpid(), tc.dir)
			}
			if want := fmt.Sprintf("journal %s is in use by pid %d (scheduler)", tc.dir, os.Getpid()); err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
		})
	}
	// The refused Opens did not disturb the holder.
	if err := j.Append(testEvent(0, 0)); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openJournal(t, dir, Options{})
	if got := j.LastSeq(); got != 1 {
		t.Errorf("LastSeq = %d, want 1", got)
	}
}

const lockHelperEnv = "PICOFLOW_JOURNAL_LOCK_HELPER_DIR"

// TestLockHelperProcess is not a test: TestOpenLockedByChildProcess runs
// the test binary again to execute it in a child process, which opens the
// journal, appends one event, says "ready" and holds the journal until it
// is killed (or its standard input closes).
func TestLockHelperProcess(t *testing.T) {
	dir := os.Getenv(lockHelperEnv)
	if dir == "" {
		t.Skip("helper process of TestOpenLockedByChildProcess")
	}
	j, err := Open(dir, Options{Owner: "lock-helper"})
	if err == nil {
		err = j.Append(&Event{Type: RunStarted, Time: baseTime, Run: "child"})
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	j.Close()
	os.Exit(0)
}

func TestOpenLockedByChildProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	t.Cleanup(func() {
		stdin.Close()
		if !waited {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	ready := false
	for sc := bufio.NewScanner(stdout); !ready && sc.Scan(); {
		if strings.HasPrefix(sc.Text(), "error:") {
			t.Fatalf("child: %s", sc.Text())
		}
		ready = sc.Text() == "ready"
	}
	if !ready {
		cmd.Wait()
		waited = true
		t.Fatalf("child exited before holding the journal: %s", stderr.String())
	}

	_, err = Open(dir, Options{})
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("Open while the child holds the journal: %v, want *LockedError", err)
	}
	if le.PID != cmd.Process.Pid || le.Owner != "lock-helper" {
		t.Errorf("LockedError = %+v, want pid %d owner lock-helper", *le, cmd.Process.Pid)
	}
	if _, err := scanAll(t, dir, ScanOptions{Strict: true}); err != nil {
		t.Errorf("Scan while the child holds the journal: %v", err)
	}

	// kill -9: the kernel drops the lock with the process.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	waited = true
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v", err)
	}
	j := openJournal(t, dir, Options{})
	if j.Repaired.Truncated {
		t.Errorf("repaired after the child's kill: %+v", j.Repaired)
	}
	got := readAll(t, j, 1)
	if want := []string{`1 run_started {"ts":1700000000000000000,"run":"child"}`}; !slices.Equal(got, want) {
		t.Errorf("child's durable append: got %q, want %q", got, want)
	}
}

// TestDirSyncedWhenSegmentStarts: a durable Append fsyncs the tail segment
// only, until the wal starts a new segment; then the directory too (its new
// name), before Append returns. Every entry survives a reopen.
func TestDirSyncedWhenSegmentStarts(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, dir, Options{SegmentSize: 4096})
	var all []*Event
	dirSyncs := 0
	for k := 0; k < 60; k++ {
		segs, err := listSegments(dir)
		if err != nil {
			t.Fatal(err)
		}
		before := j.Stats().Fsyncs
		ev := testEvent(k, 300)
		if err := j.Append(ev); err != nil {
			t.Fatal(err)
		}
		all = append(all, ev)
		after, err := listSegments(dir)
		if err != nil {
			t.Fatal(err)
		}
		want := uint64(1)
		if len(after) != len(segs) {
			want = 2 // the segment and the directory
			dirSyncs++
		}
		if got := j.Stats().Fsyncs - before; got != want {
			t.Fatalf("append %d: %d fsyncs, want %d (segments %d -> %d)", k, got, want, len(segs), len(after))
		}
	}
	if dirSyncs < 3 {
		t.Fatalf("only %d segments started: the test wrote too little", dirSyncs)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openJournal(t, dir, Options{SegmentSize: 4096})
	if d := diffLines(readAll(t, j, 1), describeAll(all, 1)); d != "" {
		t.Fatal(d)
	}
}

// TestBigBatchDropsSegmentCache: after an event bigger than a segment (a
// big definition) the journal drops the segment the wal caches; every event
// before and after it, lazy ones included, reads back in order, from the
// open journal and after a reopen.
func TestBigBatchDropsSegmentCache(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 1 << 20}
	j := openJournal(t, dir, opts)
	big := &Event{Type: RunStarted, Time: baseTime, Run: "r-big", Workflow: "w",
		Definition: strings.Repeat("  - name: t\n    config: {command: \"true\"}\n", 40000)}
	before, after := testEvents(1, 20, 100), testEvents(21, 40, 100)
	want := describeAll(append(append(append([]*Event{}, before...), big), after...), 1)
	if err := j.Append(before...); err != nil {
		t.Fatal(err)
	}
	if err := j.Append(big); err != nil {
		t.Fatal(err)
	}
	if err := j.AppendLazy(after[:20]...); err != nil {
		t.Fatal(err)
	}
	if err := j.Append(after[20:]...); err != nil {
		t.Fatal(err)
	}
	if d := diffLines(readAll(t, j, 1), want); d != "" {
		t.Fatalf("open journal:\n%s", d)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openJournal(t, dir, opts)
	if d := diffLines(readAll(t, j, 1), want); d != "" {
		t.Fatalf("reopened journal:\n%s", d)
	}
	if n := len(segmentFiles(t, dir)); n < 2 {
		t.Fatalf("%d segment(s): the big event should have closed one", n)
	}
}
