package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/journal"
)

// TestProgressWords checks the words of the progress lines that were
// abbreviated or misleading: an interrupted task says interrupted, and a
// timeout says how long the attempt ran besides its timeout.
func TestProgressWords(t *testing.T) {
	wf, err := workflow.Parse("p.yaml", []byte("name: p\ntasks:\n  - {name: a, type: shell, config: {command: c}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	p := newProgress(&out, &globals{logFormat: "text"}, wf)
	r := &engine.Run{ID: "r1", Workflow: "p"}
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC).UnixNano()
	p.observe(r, &journal.Event{Type: journal.TaskFinished, Time: at, Run: "r1", Task: "a", Attempt: 1,
		Status: journal.StatusInterrupted, Reason: "picoflow stopped while it ran"})
	p.observe(r, &journal.Event{Type: journal.TaskFinished, Time: at, Run: "r1", Task: "a", Attempt: 2,
		Status: journal.StatusTimeout, ExitCode: -1, DurationMS: 6000, Error: "timed out: ran 6s, over its 1s timeout"})
	got := out.String()
	for _, want := range []string{"interrupted a  picoflow stopped while it ran", "FAIL   a  timed out: ran 6s, over its 1s timeout"} {
		if !strings.Contains(got, want) {
			t.Errorf("progress does not say %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "intr ") {
		t.Errorf("progress abbreviates interrupted:\n%s", got)
	}
}

// writeLog is an engine.Journal that records which calls reached it.
type writeLog struct{ calls []string }

var _ engine.Journal = (*writeLog)(nil)

func (w *writeLog) Append(evs ...*journal.Event) error {
	w.calls = append(w.calls, "append "+evs[0].Type.String())
	return nil
}

func (w *writeLog) AppendLazy(evs ...*journal.Event) error {
	w.calls = append(w.calls, "lazy "+evs[0].Type.String())
	return nil
}

func (w *writeLog) Sync() error { w.calls = append(w.calls, "sync"); return nil }

// TestStartWatchHoldsWrites: while a new home's directories are not
// durable yet (ready has not returned), a lazy run_started is written, and
// every other write (a task's start, a durable append, a sync) waits for
// ready; a failed ready fails the write, which never reaches the journal.
func TestStartWatchHoldsWrites(t *testing.T) {
	wf, err := workflow.Parse("p.yaml", []byte("name: p\ntasks:\n  - {name: a, type: shell, config: {command: c}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	ev := func(typ journal.Type) *journal.Event { return &journal.Event{Type: typ, Run: "r1", Workflow: "p"} }
	for _, c := range []struct {
		name  string
		write func(s startWatch) error
		want  string
	}{
		{"task-start", func(s startWatch) error { return s.AppendLazy(ev(journal.TaskStarted)) }, "lazy task_started"},
		{"durable-append", func(s startWatch) error { return s.Append(ev(journal.RunStarted)) }, "append run_started"},
		{"sync", func(s startWatch) error { return s.Sync() }, "sync"},
		{"run-start-with-more", func(s startWatch) error { return s.AppendLazy(ev(journal.RunStarted), ev(journal.TaskStarted)) }, "lazy run_started"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := &writeLog{}
			entered, release := make(chan struct{}), make(chan error)
			calls := 0
			s := startWatch{Journal: w, p: newProgress(&bytes.Buffer{}, &globals{logFormat: "text"}, wf), ready: func() error {
				calls++
				close(entered)
				return <-release
			}}
			if err := s.AppendLazy(ev(journal.RunStarted)); err != nil || calls != 0 {
				t.Fatalf("lazy run_started: err %v, %d waits for ready, want none", err, calls)
			}
			done := make(chan error)
			go func() { done <- c.write(s) }()
			<-entered // the write waits in ready
			if len(w.calls) != 1 {
				t.Fatalf("writes before ready returned: %q", w.calls)
			}
			release <- nil
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := w.calls[len(w.calls)-1]; len(w.calls) != 2 || got != c.want {
				t.Errorf("writes %q, want the lazy run_started and %q", w.calls, c.want)
			}
		})
	}
	t.Run("failed-ready", func(t *testing.T) {
		w := &writeLog{}
		s := startWatch{Journal: w, p: newProgress(&bytes.Buffer{}, &globals{logFormat: "text"}, wf),
			ready: func() error { return errors.New("sync dir HOME: input/output error") }}
		if err := s.AppendLazy(ev(journal.TaskStarted)); err == nil || len(w.calls) != 0 {
			t.Errorf("task_started after a failed ready: err %v, writes %q; want the error and no write", err, w.calls)
		}
	})
}
