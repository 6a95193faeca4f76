package journal

import (
	"runtime"
	"testing"
)

// TestBigEntryAllocs: encoding a big definition allocates its entry and
// little else (the piecewise escaping reuses one buffer), so that a big
// DAG's run_started makes no garbage of its definition's size (escaped by
// a json.Marshal per piece, it made 3 times the entry). The least of three
// measures is taken: other goroutines of the test binary allocate too.
func TestBigEntryAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts under the race detector: its sync.Pool drops encoding/json's buffers on purpose")
	}
	ev := bigEvent()
	least, size := ^uint64(0), 0
	for range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		entry, err := newEntry(ev)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatal(err)
		}
		least, size = min(least, after.TotalAlloc-before.TotalAlloc), len(entry)
	}
	if least > uint64(size+size/2) {
		t.Errorf("newEntry of a %d-byte entry allocated %d bytes, want the entry and little more", size, least)
	}
}
