package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/picoflow/picoflow/journal"
)

// failStart is a journal whose appends fail for a batch that starts task.
type failStart struct {
	Journal
	task string
}

var errStartLost = errors.New("write failed (simulated)")

func (f *failStart) fails(evs []*journal.Event) bool {
	for _, ev := range evs {
		if ev.Type == journal.TaskStarted && ev.Task == f.task {
			return true
		}
	}
	return false
}

func (f *failStart) Append(evs ...*journal.Event) error {
	if f.fails(evs) {
		return errStartLost
	}
	return f.Journal.Append(evs...)
}

func (f *failStart) AppendLazy(evs ...*journal.Event) error {
	if f.fails(evs) {
		return errStartLost
	}
	return f.Journal.AppendLazy(evs...)
}

// TestUncommittedStartNeverRuns: the attempts a batch starts open their
// logs while the batch is committed; when the commit fails, their
// processes never start, and the run returns the journal's error once
// every attempt has reported.
func TestUncommittedStartNeverRuns(t *testing.T) {
	h := newHome(t)
	marker := filepath.Join(h.work, "b-ran")
	wf := parse(t, wfYAML("uncommitted", "max_parallel: 2", "",
		task{name: "a", cmd: "true"},
		task{name: "b", cmd: "touch " + marker, deps: []string{"a"}},
		task{name: "c", cmd: "touch " + marker + "-c", deps: []string{"a"}}))
	eng := h.engine(func(o *Options) { o.Journal = &failStart{Journal: h.j, task: "b"} })
	_, err := eng.Start(context.Background(), wf, nil, "manual")
	if !errors.Is(err, errStartLost) {
		t.Fatalf("Start: %v, want the journal's error", err)
	}
	for _, p := range []string{marker, marker + "-c"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %v; the task started in the batch that was not committed ran", filepath.Base(p), err)
		}
	}
}
