package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/journal"
)

// home is the state directory layout:
//
//	HOME/journal/          the journal (segments, LOCK, damaged/)
//	HOME/logs/WF/RUN/      one TASK.ATTEMPT.log per attempt
//	HOME/locks/WF.lock     held while a process runs workflow WF
//	HOME/picoflow.db       the SQLite projection of the journal (derived; reindex rebuilds it)
type home string

func (h home) journal() string { return filepath.Join(string(h), "journal") }
func (h home) logs() string    { return filepath.Join(string(h), "logs") }
func (h home) locks() string   { return filepath.Join(string(h), "locks") }
func (h home) db() string      { return filepath.Join(string(h), "picoflow.db") }

// openJournal opens the journal for writing and replays it into a state.
func (h home) openJournal(owner string, g *globals) (*journal.Journal, *engine.State, error) {
	j, err := journal.Open(h.journal(), journal.Options{Owner: owner})
	var le *journal.LockedError
	if errors.As(err, &le) {
		return nil, nil, withCode(ExitLocked, fmt.Errorf("%w; only one picoflow process writes a home at a time (use a daemon and picoflow trigger to run workflows concurrently)", err))
	}
	if err != nil {
		return nil, nil, withCode(ExitInternal, err)
	}
	if rep := j.Repaired; rep.Truncated {
		g.log.Warn("journal repaired: dropped a torn tail left by a crash",
			"segment", rep.Segment, "offset", rep.Offset, "bytes", rep.Dropped,
			"last_good", rep.LastGood, "copy", rep.Copy, "cause", rep.Cause)
	}
	st := engine.NewState()
	if err := j.ReadFrom(0, st.Apply); err != nil {
		j.Close()
		return nil, nil, withCode(ExitInternal, fmt.Errorf("replay journal: %w", err))
	}
	return j, st, nil
}

// lockWorkflow takes the per-workflow lock so that one workflow never runs
// twice at once. The lock dies with the process.
func (h home) lockWorkflow(name string) (release func(), err error) {
	if err := journal.MkdirDurable(h.locks(), 0o750); err != nil {
		return nil, withCode(ExitInternal, err)
	}
	f, err := journal.LockFile(filepath.Join(h.locks(), name+".lock"), "run "+name)
	var le *journal.LockedError
	if errors.As(err, &le) {
		holder := "another process"
		if le.PID > 0 {
			holder = "pid " + strconv.Itoa(le.PID)
		}
		return nil, exitf(ExitLocked, "workflow %s is already running in %s; refusing to run it twice", name, holder)
	}
	if err != nil {
		return nil, withCode(ExitInternal, err)
	}
	return func() { f.Close() }, nil
}
