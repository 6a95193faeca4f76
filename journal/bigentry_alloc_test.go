package journal

import (
	"runtime"
	"testing"
)

// TestBigEntryAllocs: encoding a big definition allocates its entry and
// little else (the piecewise escaping reuses one buffer), so that a big
// DAG's run_started makes no garbage of its definition's size.
func TestBigEntryAllocs(t *testing.T) {
	ev := bigEvent()
	if _, err := newEntry(ev); err != nil { // warm the encoder's pool
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	entry, err := newEntry(ev)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > uint64(len(entry))+256<<10 {
		t.Errorf("newEntry of a %d-byte entry allocated %d bytes, want the entry and little more", len(entry), got)
	}
}
