package journal

import (
	"os"
	"testing"
)

// TestCloseDurable: Close after a durable Append and after a lazy one
// leaks no descriptor and loses nothing: both reopen intact.
func TestCloseDurable(t *testing.T) {
	for _, lazy := range []bool{false, true} {
		name := map[bool]string{false: "durable", true: "lazy"}[lazy]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			before := openFDs(t)
			j, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			appendEv := j.Append
			if lazy {
				appendEv = j.AppendLazy
			}
			if err := appendEv(testEvent(1, 0)); err != nil {
				t.Fatal(err)
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			if after := openFDs(t); after != before {
				t.Errorf("%d descriptors open after Close, %d before Open", after, before)
			}
			j, err = Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			if got := len(readAll(t, j, 1)); got != 1 {
				t.Errorf("read %d entries after reopening, want 1", got)
			}
		})
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd: ", err)
	}
	return len(ents)
}

// TestOpenAfterCleanClose: a journal its last writer closed needs no
// fsync of its directory when it is opened again (every name in it was
// durable by then: Close left LOCK empty); one whose writer died (here:
// its lock released without Close, as a kill does) gets one, as does a
// new journal (wal.Open created its first segment).
func TestOpenAfterCleanClose(t *testing.T) {
	dir := t.TempDir()
	open := func(step string, wantFsyncs uint64) *Journal {
		t.Helper()
		j, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := j.Stats().Fsyncs; got != wantFsyncs {
			t.Errorf("%s: Open did %d fsyncs, want %d", step, got, wantFsyncs)
		}
		return j
	}
	j := open("new journal", 1)
	if err := j.Append(testEvent(1, 0)); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = open("after Close", 0)
	if err := j.AppendLazy(testEvent(2, 0)); err != nil {
		t.Fatal(err)
	}
	// A kill: the lock goes with the process, LOCK keeps its note.
	if err := j.log.Close(); err != nil {
		t.Fatal(err)
	}
	j.unlock()
	j = open("after a killed writer", 1)
	defer j.Close()
	if got := len(readAll(t, j, 1)); got != 2 {
		t.Errorf("read %d entries, want 2", got)
	}
}
