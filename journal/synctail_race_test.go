package journal

import (
	"os"
	"strings"
	"sync"
	"testing"
)

// TestSyncBesideAppends runs Sync in a loop beside appends (lazy and
// durable), the wal starting a segment every few entries, entries written
// alone and front cuts, as a run's loop, its window's sync goroutine and
// gc would (under -race: syncOutside reads and drops the tail's
// descriptor across its unlocked fsync). No call fails; whenever a Sync
// has returned, the descriptor it keeps (if any) names the newest
// segment; and after a reopen every entry kept reads back, in order.
func TestSyncBesideAppends(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 4096}
	j := openJournal(t, dir, opts)
	const n = 600
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 3)
	wg.Add(2)
	go func() { // the loop: appends, now and then durable, now and then alone
		defer wg.Done()
		defer close(done)
		for i := range n {
			var err error
			switch {
			case i%97 == 50:
				err = j.Append(&Event{Type: RunStarted, Time: baseTime, Run: "r-big", Workflow: "w", Definition: strings.Repeat("x", 5000)})
			case i%3 == 2:
				err = j.Append(testEvent(i, 300))
			default:
				err = j.AppendLazy(testEvent(i, 300))
			}
			if err != nil {
				errs <- err
				return
			}
			if i%150 == 149 { // gc
				if err := j.TruncateFront(j.LastSeq() - 20); err != nil {
					errs <- err
					return
				}
			}
		}
	}()
	syncs := 0
	go func() { // the window's sync goroutine
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := j.Sync(); err != nil {
				errs <- err
				return
			}
			syncs++
			if why := tailNamesNewest(j, dir); why != "" {
				t.Error(why)
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	last := j.LastSeq()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openJournal(t, dir, opts)
	first, err := j.FirstSeq()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(readAll(t, j, first)); uint64(got) != last-first+1 {
		t.Errorf("%d entries read back from %d, want %d", got, first, last-first+1)
	}
	if syncs < 10 {
		t.Logf("only %d Syncs beside %d appends", syncs, n)
	}
}

// tailNamesNewest returns why the journal's Sync descriptor is not the
// newest segment ("" when it is, or there is none).
func tailNamesNewest(j *Journal, dir string) string {
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if j.tail == nil || j.tailSize >= int64(j.opts.SegmentSize) {
		return "" // the next Sync lists the directory first
	}
	segs, err := listSegments(dir)
	if err != nil {
		return err.Error()
	}
	want, err := os.Stat(segs[len(segs)-1].path)
	if err != nil {
		return err.Error()
	}
	got, err := j.tail.Stat()
	if err != nil {
		return "Sync's descriptor: " + err.Error()
	}
	if !os.SameFile(got, want) {
		return "Sync's descriptor is not the newest segment " + segs[len(segs)-1].path
	}
	return ""
}
