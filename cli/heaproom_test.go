package cli

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

func TestRoomLimit(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		limit, live, other, want int64
	}{
		{48 * mib, 39 * mib, 9 * mib, 9*mib + 39*mib + 39*mib/32},                         // a 100,000-task run: squeezed
		{48 * mib, 30 * mib, 9 * mib, 0},                                                  // room enough
		{48 * mib, 38 * mib, 9 * mib, 0},                                                  // a 64th and more
		{48*mib - 1, 38 * mib, 9*mib + 38*mib/64, 9*mib + 38*mib/64 + 38*mib + 38*mib/32}, // less than a 64th
		{48 * mib, 60 * mib, 9 * mib, 9*mib + 60*mib + 60*mib/32},                         // over it
		{48 * mib, 39 * mib, -1, 0},                                                       // metrics that do not add up
	} {
		got, ok := roomLimit(tc.limit, tc.live, tc.other)
		if ok != (tc.want != 0) || got != tc.want {
			t.Errorf("roomLimit(%d, %d, %d) = %d, %v; want %d", tc.limit, tc.live, tc.other, got, ok, tc.want)
		}
	}
}

// TestHeapRoom holds a live heap of 24 MiB under a soft limit that leaves
// it no room, as a 100,000-task run under the default limit did: the
// guard raises the limit after the next collections, and leaves a limit
// the user set alone.
func TestHeapRoom(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { unguardHeapRoom(); debug.SetMemoryLimit(before) })
	live := make([][]byte, 24)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	squeeze := func() int64 { // a limit that leaves the heap's goal at its live heap
		debug.FreeOSMemory()
		s := make([]metrics.Sample, len(roomSamples)) // the guard's own are its own
		for i := range s {
			s[i].Name = roomSamples[i].Name
		}
		metrics.Read(s)
		v := func(i int) int64 { return int64(s[i].Value.Uint64()) }
		live, total, released, objects, free := v(0), v(1), v(2), v(3), v(4)
		limit := total - released - objects - free + live
		debug.SetMemoryLimit(limit)
		return limit
	}

	guardHeapRoom() // armed, then let go: the limit is the user's
	unguardHeapRoom()
	limit := squeeze()
	for range 3 {
		runtime.GC()
	}
	if got := debug.SetMemoryLimit(-1); got != limit {
		t.Fatalf("a limit the user set went from %d to %d", limit, got)
	}

	guardHeapRoom()
	limit = squeeze()
	for i := 0; debug.SetMemoryLimit(-1) == limit; i++ {
		if i == 100 {
			t.Fatalf("the limit stayed at %d after 100 collections with 24 MiB live", limit)
		}
		runtime.GC() // the guard runs after a collection, on the cleanup goroutine
	}
	if got := debug.SetMemoryLimit(-1); got < limit+(24<<20)/64 {
		t.Errorf("the limit went from %d to %d: less than a 64th of the live heap above it", limit, got)
	}
	runtime.KeepAlive(live)
}
