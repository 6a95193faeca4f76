package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/picoflow/picoflow/journal"
)

// startHook is a journal that calls hit before it appends a batch that
// starts task; an error of hit fails the append.
type startHook struct {
	Journal
	task string
	hit  func() error
}

var errStartLost = errors.New("write failed (simulated)")

func (h *startHook) check(evs []*journal.Event) error {
	for _, ev := range evs {
		if ev.Type == journal.TaskStarted && ev.Task == h.task {
			return h.hit()
		}
	}
	return nil
}

func (h *startHook) Append(evs ...*journal.Event) error {
	if err := h.check(evs); err != nil {
		return err
	}
	return h.Journal.Append(evs...)
}

func (h *startHook) AppendLazy(evs ...*journal.Event) error {
	if err := h.check(evs); err != nil {
		return err
	}
	return h.Journal.AppendLazy(evs...)
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
	eng := h.engine(func(o *Options) {
		o.Journal = &startHook{Journal: h.j, task: "b", hit: func() error { return errStartLost }}
	})
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

// TestStopDuringStartCommitStartsNothing: a stop that comes while the
// batch starting b is committed starts no process of b (nothing starts
// after the signal). b's committed attempt is journaled interrupted, not
// in doubt although b is not idempotent (it never ran), and the resume
// runs it.
func TestStopDuringStartCommitStartsNothing(t *testing.T) {
	h := newHome(t)
	marker := filepath.Join(h.work, "b-ran")
	wf := parse(t, wfYAML("stopatstart", "", "",
		task{name: "a", cmd: "true"},
		task{name: "b", cmd: "touch " + marker, deps: []string{"a"}, extra: "idempotent: false"}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The stop comes while the batch starting b is committed: after the
	// loop checked its context (a signal during the commit's fsync).
	stop := func() error { cancel(); return nil }
	eng := h.engine(func(o *Options) { o.Journal = &startHook{Journal: h.j, task: "b", hit: stop} })
	r, err := eng.Start(ctx, wf, nil, "manual")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("b ran after the stop: %v", err)
	}
	evs := h.events()
	fin := filter(evs, journal.TaskFinished, "b")
	if len(fin) != 1 || fin[0].Status != journal.StatusInterrupted || len(filter(evs, journal.TaskInDoubt, "b")) != 0 {
		t.Fatalf("b's start overtaken by the stop: finished %+v, in doubt %d; want one interrupted, none in doubt",
			fin, len(filter(evs, journal.TaskInDoubt, "b")))
	}
	if len(filter(evs, journal.RunFinished, "")) != 0 {
		t.Fatal("the stopped run finished: it must stay resumable")
	}
	h.reopen()
	got := h.replay(r.ID)
	if err := h.engine().Resume(context.Background(), wf, got); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if got.Status != RunSuccess {
		t.Fatalf("resumed run: %s, want success", got.Status)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the resume did not run b: %v", err)
	}
}
