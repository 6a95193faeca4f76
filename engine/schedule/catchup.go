package schedule

import (
	"fmt"
	"time"
)

// CatchupPolicy says which missed fires run when the daemon comes back.
type CatchupPolicy uint8

const (
	CatchupNone   CatchupPolicy = iota // missed fires are not run (default)
	CatchupLatest                      // the newest missed fire within the window runs
	CatchupAll                         // every missed fire within the window runs, oldest first, one at a time
)

var catchupNames = [...]string{"none", "latest", "all"}

func (p CatchupPolicy) String() string {
	if int(p) < len(catchupNames) {
		return catchupNames[p]
	}
	return fmt.Sprintf("catchup(%d)", p)
}

// ParseCatchupPolicy parses none, latest or all ("" is none).
func ParseCatchupPolicy(s string) (CatchupPolicy, error) {
	if s == "" {
		return CatchupNone, nil
	}
	for i, n := range catchupNames {
		if s == n {
			return CatchupPolicy(i), nil
		}
	}
	return 0, fmt.Errorf("catch-up policy %q: want none, latest or all", s)
}

// Catchup is a workflow's catch-up setting.
type Catchup struct {
	Policy CatchupPolicy
	// Window bounds how old a missed fire may be and still run, measured
	// back from the moment the daemon notices it; 0 means no bound.
	Window time.Duration
}

// MaxCatchup bounds how many missed fires policy all runs: the newest ones.
const MaxCatchup = 100

// Missed describes the fires of a schedule that fell in (last, until]
// without being started.
type Missed struct {
	First  time.Time   // the oldest missed fire; zero when none was missed
	Latest time.Time   // the newest missed fire
	Run    []time.Time // those to run now as catch-up runs, oldest first
}

// ComputeMissed returns the fires of s after last (the newest fire the
// journal records for the workflow) up to until, and which of them the
// catch-up policy runs: those no older than now minus the window — the
// newest one (latest) or the newest MaxCatchup (all). A zero last means
// the workflow never fired: nothing was missed.
//
// The daemon calls it at start (until = now) and when it wakes late, for
// instance after the machine slept (until = now minus the lateness
// allowed).
func ComputeMissed(s *Schedule, last, until, now time.Time, c Catchup) Missed {
	var m Missed
	if last.IsZero() || !until.After(last) {
		return m
	}
	first := s.After(last, last)
	if first.IsZero() || first.After(until) {
		return m
	}
	m.First = first
	if latest := s.newest(last, last, until, 1); len(latest) == 1 {
		m.Latest = latest[0]
	}
	n := 0
	switch c.Policy {
	case CatchupLatest:
		n = 1
	case CatchupAll:
		n = MaxCatchup
	}
	lo := last
	if c.Window > 0 {
		// fires at or after now-window are within it: (now-window-1ns, until]
		if ws := now.Add(-c.Window).Add(-time.Nanosecond); ws.After(lo) {
			lo = ws
		}
	}
	m.Run = s.newest(last, lo, until, n)
	return m
}
