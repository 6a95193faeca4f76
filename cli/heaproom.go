package cli

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// Room above the live heap under the default soft limit.
//
// The default soft limit of the commands that load a workflow
// (workflowMemoryLimit) makes the collector work harder as the heap nears
// it, which keeps a big DAG within a board's budget. It must not squeeze
// the heap goal down to the live heap itself: each collection then frees
// next to nothing and the next one starts at once. A 100,000-task run
// holds ~39 MB live under the 48 MiB limit (the rest is the runtime's own
// memory), and its heap goal sat on its live heap: a collection every
// 15 tasks of a chain, 67 % of the process's CPU spent marking, 3.4 ms a
// step against 1.1 at 10,000 tasks. So after each collection the limit
// is set so that the collector's goal leaves a 64th of the live heap above
// it (with the runtime's own memory as it is, and the collector's own
// headroom under the limit), never under the default: ~0.6 MB for a
// 100,000-task DAG, a collection every ~45 steps of a chain instead of
// every 15. It moves only when the goal leaves less than a 128th or more
// than a 16th: up as the live heap grows, back down as it shrinks (a
// daemon's big run ends), so the heap never keeps more room than that.
// More room would cost the RSS goal (0.6 KiB a task at 100,000: 60,000
// KiB): side by side on a loaded machine, a 100,000-task chain peaked at
// 56.6 MB without the guard (3,382 collections in its first 242 s), 58.5
// with a 64th (935), 58.8-60.3 with a 32nd, and with the first version
// of this guard, whose limit only ever rose, 60.0 MiB with an eighth
// (277 collections in all), 59.2 with a 16th (583). A limit the user set
// (resources.memory_limit, $GOMEMLIMIT) is never moved: it is not guarded.

// heapRoom guards the default limit; one per process.
var heapRoom struct {
	once sync.Once
	on   atomic.Bool  // the limit is picoflow's default: it may move
	base atomic.Int64 // the default: the limit never goes under it
}

// guardHeapRoom starts guarding base, the default limit just set.
func guardHeapRoom(base int64) {
	heapRoom.base.Store(base)
	heapRoom.on.Store(true)
	heapRoom.once.Do(armHeapRoom)
}

// unguardHeapRoom stops guarding: the limit is the user's.
func unguardHeapRoom() { heapRoom.on.Store(false) }

// gcMark is collected at every cycle; its cleanup checks the room and
// makes the next one.
type gcMark struct{ _ *int } // not a tiny allocation: its cleanup runs

func armHeapRoom() {
	m := new(gcMark)
	runtime.AddCleanup(m, func(struct{}) {
		if heapRoom.on.Load() {
			checkHeapRoom()
		}
		armHeapRoom()
	}, struct{}{})
}

var roomSamples = []metrics.Sample{
	{Name: "/gc/heap/live:bytes"},
	{Name: "/memory/classes/total:bytes"},
	{Name: "/memory/classes/heap/released:bytes"},
	{Name: "/memory/classes/heap/objects:bytes"},
	{Name: "/memory/classes/heap/free:bytes"},
}

var roomMu sync.Mutex

func checkHeapRoom() {
	roomMu.Lock()
	defer roomMu.Unlock()
	metrics.Read(roomSamples)
	v := func(i int) int64 { return int64(roomSamples[i].Value.Uint64()) }
	// The runtime's own memory as the collector counts it against the
	// limit: what is mapped, less the heap's objects and its free pages
	// (which it returns to the system before it lets the heap's goal
	// shrink).
	live, total, released, objects, free := v(0), v(1), v(2), v(3), v(4)
	limit := debug.SetMemoryLimit(-1)
	if to, ok := roomLimit(limit, heapRoom.base.Load(), live, total-released-objects-free); ok {
		debug.SetMemoryLimit(to)
	}
}

// roomLimit returns the limit under which the collector's heap goal
// leaves a 64th of the live heap above it, besides the runtime's own
// memory (other), and never goes under base, when under limit the goal
// leaves less than a 128th, or more than a 16th while limit is over base;
// ok is false when limit is to stay.
func roomLimit(limit, base, live, other int64) (int64, bool) {
	if other < 0 {
		return 0, false
	}
	to := max(base, limitFor(live+live/64, other))
	g := goalUnder(limit, other)
	if g >= live+live/128 && (g <= live+live/16 || limit <= base) || to == limit {
		return 0, false
	}
	return to, true
}

// goalUnder returns the heap goal the collector sets itself under limit
// when the runtime's own memory is other: what the limit leaves, less a
// headroom of 3 % of that and at least 1 MiB (runtime/mgcpacer.go,
// memoryLimitHeapGoal).
func goalUnder(limit, other int64) int64 {
	g := limit - other
	return g - max(g*3/100, 1<<20)
}

// limitFor returns the smallest limit under which the goal is at least
// goal (goalUnder).
func limitFor(goal, other int64) int64 {
	return other + max(goal*100/97+1, goal+1<<20)
}
