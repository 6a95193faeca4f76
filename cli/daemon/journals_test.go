package daemon

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// TestJournalsFreeze: a forced exit freezes every journal the daemon holds
// (a write to one fails and writes nothing), and no journal opens after it.
func TestJournalsFreeze(t *testing.T) {
	root := t.TempDir()
	js := newJournals(func(wf string) string { return filepath.Join(root, wf) }, nil, journal.Options{})
	j, err := js.acquire("a")
	if err != nil {
		t.Fatal(err)
	}
	defer js.closeAll()
	ev := &journal.Event{Type: journal.RunStarted, Time: 1, Run: "r1", Workflow: "a"}
	if err := j.AppendLazy(ev); err != nil {
		t.Fatal(err)
	}
	if !js.freeze(time.Minute) {
		t.Fatal("freeze of idle journals did not sync")
	}
	if err := j.Append(&journal.Event{Type: journal.RunFinished, Time: 2, Run: "r1", Workflow: "a"}); err == nil ||
		!strings.Contains(err.Error(), "is frozen") {
		t.Errorf("append after freeze: %v, want the journal is frozen", err)
	}
	if _, err := js.acquire("b"); !errors.Is(err, errFrozen) {
		t.Errorf("acquire after freeze: %v, want %v", err, errFrozen)
	}
	n := 0
	if err := journal.Scan(filepath.Join(root, "a"), journal.ScanOptions{}, func(*journal.Event) error { n++; return nil }); err != nil || n != 1 {
		t.Errorf("journal a after freeze: %d entries, %v; want the run_started only", n, err)
	}
}
