package cli

import (
	"bytes"
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
