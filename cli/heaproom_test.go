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
		moves              bool
	}{
		{"a 100,000-task run: squeezed", base, 39 * mib, 9 * mib, true},
		{"a small run: room enough", base, 5 * mib, 9 * mib, false},
		{"a 128th left under the goal", limitFor(38*mib+38*mib/128+1024, 9*mib), 38 * mib, 9 * mib, false},
		{"less than a 128th", limitFor(38*mib+38*mib/128-1024, 9*mib), 38 * mib, 9 * mib, true},
		{"over it", base, 60 * mib, 9 * mib, true},
		{"raised, within a 16th", limitFor(49*mib, 9*mib), 48 * mib, 9 * mib, false},
		{"raised, the live heap shrank", limitFor(49*mib, 9*mib), 40 * mib, 9 * mib, true},
		{"raised, the live heap gone", limitFor(49*mib, 9*mib), 2 * mib, 9 * mib, true},
		{"metrics that do not add up", base, 39 * mib, -1, false},
	} {
		to, ok := roomLimit(tc.limit, base, tc.live, tc.other)
		if ok != tc.moves {
			t.Errorf("%s: roomLimit(%d, %d, %d) = %d, %v; want it to move: %v", tc.name, tc.limit, tc.live, tc.other, to, ok, tc.moves)
			continue
		}
		if !ok {
			continue
		}
		// The goal under the new limit leaves a 64th, and no more than
		// that unless the limit is the default.
		room := tc.live + tc.live/64
		if g := goalUnder(to, tc.other); to < base || g < room || to > base && goalUnder(to-1024, tc.other) >= room {
			t.Errorf("%s: the limit went to %d (goal %d), want the least over %d whose goal is at least %d",
				tc.name, to, g, base, room)
		}
	}
	if g := goalUnder(base, 9*mib); g >= 39*mib {
		t.Errorf("under the default limit, with 9 MiB of the runtime's own, the goal is %d: not squeezed on 39 MiB live", g)
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
	if raised < limit+(24<<20)/128 {
		t.Errorf("the limit went from %d to %d: less than a 128th of the live heap above it", limit, raised)
	}
	runtime.KeepAlive(live)
	live = nil
	if lowered := until("the 24 MiB let go of", raised); lowered > raised-(16<<20) {
		t.Errorf("the heap let go of 24 MiB, and the limit went from %d to %d only", raised, lowered)
	}
}
