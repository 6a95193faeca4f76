package cli

import (
	"context"
	"sync"

	"github.com/picoflow/picoflow/executors"
)

// releasedGroups holds the process groups whose task's own code was let
// run, from executors.Request.Started (a gated shell reports it once its
// gate opened) until its attempt returns. A forced exit kills every group
// led by a child of this process (killTaskGroups), shells still waiting at
// their start gate included; this is how what it says tells those apart
// from tasks that ran. Process-wide, like that kill: it reads /proc.
var releasedGroups = &groupSet{n: make(map[int]int)}

// groupSet counts process group ids; a count, not a flag, because a pgid
// may be reused by a new task between the old attempt's reap and its
// removal here.
type groupSet struct {
	mu sync.Mutex
	n  map[int]int
}

func (s *groupSet) add(pgid int, d int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[pgid] += d; s.n[pgid] <= 0 {
		delete(s.n, pgid)
	}
}

func (s *groupSet) has(pgid int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[pgid] > 0
}

// snapshot returns the groups in s now: a forced exit takes it before its
// kill, after which each attempt returns and leaves the set.
func (s *groupSet) snapshot() map[int]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[int]bool, len(s.n))
	for g := range s.n {
		m[g] = true
	}
	return m
}

// recordReleased wraps ex so that each attempt's process group is in
// releasedGroups while its code runs.
func recordReleased(ex executors.Executor) executors.Executor { return &released{ex} }

type released struct{ ex executors.Executor }

var _ executors.Gater = (*released)(nil)

// Gates passes on whether the wrapped executor gates.
func (r *released) Gates() bool { return executors.Gates(r.ex) }

func (r *released) Execute(ctx context.Context, req *executors.Request) executors.Result {
	q := *req
	pgid := 0
	q.Started = func(g int) {
		pgid = g
		releasedGroups.add(g, 1)
		if req.Started != nil {
			req.Started(g)
		}
	}
	res := r.ex.Execute(ctx, &q)
	if pgid != 0 {
		releasedGroups.add(pgid, -1)
	}
	return res
}
