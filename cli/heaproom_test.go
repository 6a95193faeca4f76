package cli

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

func TestRoomLimit(t *testing.T) {
	const mib = 1 << 20
	const base = 48 * mib
	for _, tc := range []struct {
		name               string
		limit, live, other int64
		want               int64 // 0: stays
	}{
		{"a 100,000-task run: squeezed", base, 39 * mib, 9 * mib, 9*mib + 39*mib + 39*mib/32},
		{"a small run: room enough", base, 5 * mib, 9 * mib, 0},
		{"a 64th left", base, 38 * mib, 9 * mib, 0},
		{"less than a 64th", base - 1, 38 * mib, 9*mib + 38*mib/64, 9*mib + 38*mib/64 + 38*mib + 38*mib/32},
		{"over it", base, 60 * mib, 9 * mib, 9*mib + 60*mib + 60*mib/32},
		{"raised, within a 16th", 60 * mib, 48 * mib, 9 * mib, 0},
		{"raised, the live heap shrank", 60 * mib, 40 * mib, 9 * mib, 9*mib + 40*mib + 40*mib/32},
		{"raised, the live heap gone", 60 * mib, 2 * mib, 9 * mib, base},
		{"metrics that do not add up", base, 39 * mib, -1, 0},
	} {
		got, ok := roomLimit(tc.limit, base, tc.live, tc.other)
		if ok != (tc.want != 0) || got != tc.want {
			t.Errorf("%s: roomLimit(%d, %d, %d) = %d, %v; want %d", tc.name, tc.limit, tc.live, tc.other, got, ok, tc.want)
		}
	}
}

// TestHeapRoom holds a live heap of 24 MiB under a soft limit that leaves
// it no room, as a 100,000-task run under the default limit did: the
// guard raises the limit after the next collections, lowers it again
// once the heap is let go of, and leaves a limit the user set alone.
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
	// until runs collections until the limit is other than from, and
	// returns it; the guard runs after a collection, on the cleanup
	// goroutine.
	until := func(what string, from int64) int64 {
		for range 100 {
			if l := debug.SetMemoryLimit(-1); l != from {
				return l
			}
			runtime.GC()
		}
		t.Fatalf("%s: the limit stayed at %d after 100 collections", what, from)
		return 0
	}

	guardHeapRoom(1) // armed, then let go: the limit is the user's
	unguardHeapRoom()
	limit := squeeze()
	for range 3 {
		runtime.GC()
	}
	if got := debug.SetMemoryLimit(-1); got != limit {
		t.Fatalf("a limit the user set went from %d to %d", limit, got)
	}

	guardHeapRoom(1)
	limit = squeeze()
	raised := until("24 MiB live", limit)
	if raised < limit+(24<<20)/64 {
		t.Errorf("the limit went from %d to %d: less than a 64th of the live heap above it", limit, raised)
	}
	runtime.KeepAlive(live)
	live = nil
	if lowered := until("the 24 MiB let go of", raised); lowered > raised-(16<<20) {
		t.Errorf("the heap let go of 24 MiB, and the limit went from %d to %d only", raised, lowered)
	}
}
