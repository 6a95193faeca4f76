package cli

import (
	"cmp"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/journal"
)

// holdWorkflow takes the lock of a workflow's journal, as a process that
// runs it does.
func holdWorkflow(h, wf string) (release func(), err error) {
	dir := journalDir(h, wf)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	f, err := journal.LockFile(filepath.Join(dir, "LOCK"), "run "+wf)
	if err != nil {
		return nil, err
	}
	return func() { f.Close() }, nil
}

// homeState replays every journal of a home, as resume does, every run
// kept whole.
func homeState(t *testing.T, h string) *engine.State {
	t.Helper()
	st, err := home(h).replayAll(engine.AllRuns) // whole: tests read task states
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// homeEvents reads every journal of a home, merged in time order.
func homeEvents(t *testing.T, h string) []*journal.Event {
	t.Helper()
	srcs, err := home(h).journals()
	if err != nil {
		t.Fatal(err)
	}
	var out []*journal.Event
	for _, s := range srcs {
		if err := journal.Scan(s.Dir, journal.ScanOptions{}, func(e *journal.Event) error {
			out = append(out, e)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	slices.SortStableFunc(out, func(a, b *journal.Event) int { return cmp.Compare(a.Time, b.Time) })
	return out
}
