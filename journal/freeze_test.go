package journal

import (
	"strings"
	"testing"
	"time"
)

// TestFreeze: after Freeze every write fails at once and writes nothing,
// what was written before is durable and reads back, and the journal still
// closes (a process whose exit returned, in tests, never blocks on it).
// A write in progress that does not end (holding the write lock, as a
// write stuck in the kernel does) makes Freeze give up after its wait.
func TestFreeze(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		dir := t.TempDir()
		j := openJournal(t, dir, Options{})
		evs := testEvents(1, 3, 100)
		if err := j.AppendLazy(evs...); err != nil {
			t.Fatal(err)
		}
		if !j.Freeze(time.Minute) {
			t.Fatal("Freeze of an idle journal did not sync")
		}
		if j.unsynced {
			t.Error("Freeze left lazy entries unsynced")
		}
		for _, write := range []func() error{
			func() error { return j.Append(testEvents(4, 1, 100)...) },
			func() error { return j.AppendLazy(testEvents(4, 1, 100)...) },
			func() error { return j.TruncateFront(2) },
		} {
			if err := write(); err == nil || !strings.Contains(err.Error(), "is frozen") {
				t.Errorf("write after Freeze: %v, want the journal is frozen", err)
			}
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		j = openJournal(t, dir, Options{})
		defer j.Close()
		if d := diffLines(readAll(t, j, 1), describeAll(evs, 1)); d != "" {
			t.Fatalf("after Freeze:\n%s", d)
		}
	})
	t.Run("write-in-progress", func(t *testing.T) {
		j := openJournal(t, t.TempDir(), Options{})
		j.wmu.Lock() // a write that hangs
		start := time.Now()
		if j.Freeze(50 * time.Millisecond) {
			t.Fatal("Freeze synced while a write held the journal")
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Freeze waited %v for a write in progress", d)
		}
		j.wmu.Unlock() // the write ends: Freeze's sync runs, later writes fail
		if err := j.Append(testEvents(1, 1, 100)...); err == nil || !strings.Contains(err.Error(), "is frozen") {
			t.Errorf("write after Freeze: %v, want the journal is frozen", err)
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
	})
}
