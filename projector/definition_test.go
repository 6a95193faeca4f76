package projector

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// bigYAML is a definition over bigDefinition, with quotes and newlines
// (escaped in the journal's JSON) as a 100,000-task workflow has.
func bigYAML(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\ntasks:\n", name)
	for i := 0; b.Len() <= bigDefinition; i++ {
		fmt.Fprintf(&b, "  - name: task-%d\n    type: shell\n    config: {command: \"true\"}\n", i)
	}
	return b.String()
}

// writeRuns writes a journal of finished runs, one per definition given:
// a run_started carrying it, one task, a run_finished.
func writeRuns(t *testing.T, dir string, defs ...string) []*journal.Event {
	t.Helper()
	j, err := journal.Open(dir, journal.Options{Owner: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC).UnixNano()
	var starts []*journal.Event
	for i, def := range defs {
		run := fmt.Sprintf("r%d", i)
		start := &journal.Event{Type: journal.RunStarted, Time: at, Run: run, Workflow: "wf",
			DefHash: fmt.Sprintf("hash-%d", len(def)), Definition: def, Source: "wf.yaml", Trigger: "manual"}
		err := j.Append(start,
			&journal.Event{Type: journal.TaskStarted, Time: at + 1, Run: run, Task: "t", Attempt: 1},
			&journal.Event{Type: journal.TaskFinished, Time: at + 2, Run: run, Task: "t", Attempt: 1, Status: journal.StatusSuccess},
			&journal.Event{Type: journal.RunFinished, Time: at + 3, Run: run, Status: journal.StatusSuccess})
		if err != nil {
			t.Fatal(err)
		}
		starts = append(starts, start)
		at += int64(time.Second)
	}
	return starts
}

// TestDefinitionsStoredFromTheJournal: the scans leave definitions out
// (NoDefinition); every definition is still stored, once per hash, the
// big one read again from its entry, in batches of any size and by a
// rebuild.
func TestDefinitionsStoredFromTheJournal(t *testing.T) {
	big, small := bigYAML("big"), "name: small\ntasks: []\n"
	dir := filepath.Join(t.TempDir(), "journal")
	starts := writeRuns(t, dir, big, small, big)
	ctx := context.Background()
	for _, batch := range []int{1, 5, 2048, 0} {
		db, err := Open(filepath.Join(t.TempDir(), "db"), Options{BatchSize: max(batch, 1)})
		if err != nil {
			t.Fatal(err)
		}
		apply := db.CatchUp
		if batch == 0 {
			apply = db.Rebuild
		}
		if n, err := apply(ctx, dir); err != nil || n != 12 {
			t.Fatalf("batch %d: applied %d, %v; want 12, nil", batch, n, err)
		}
		for _, s := range starts {
			got, err := db.Definition(ctx, s.DefHash)
			if err != nil || got != s.Definition {
				t.Errorf("batch %d: definition %s: %d bytes, %v; want the %d of run %s", batch, s.DefHash, len(got), err, len(s.Definition), s.Run)
			}
		}
		var n int
		if err := db.r.QueryRow(`SELECT count(*) FROM definitions`).Scan(&n); err != nil || n != 2 {
			t.Errorf("batch %d: %d definitions, %v; want 2", batch, n, err)
		}
		db.Close()
	}
}

// TestReadDefinitionGone: the entry a definition is read from must be
// the run_started just applied; when the journal no longer holds it
// (replaced, or its front cut meanwhile) the error is errRewound, which
// makes CatchUpAll rebuild.
func TestReadDefinitionGone(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "journal")
	start := writeRuns(t, dir, "name: wf\n")[0]
	cases := []struct {
		name string
		ev   journal.Event
		want string // the definition, or "" for errRewound
	}{
		{"the entry", *start, start.Definition},
		{"another time", func() journal.Event { e := *start; e.Time++; return e }(), ""},
		{"another hash", func() journal.Event { e := *start; e.DefHash = "other"; return e }(), ""},
		{"not a run_started", func() journal.Event { e := *start; e.Seq = 2; return e }(), ""},
		{"past the end", func() journal.Event { e := *start; e.Seq = 99; return e }(), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := readDefinition(dir, &c.ev)
			switch {
			case c.want != "" && (err != nil || got != c.want):
				t.Fatalf("got %q, %v; want %q", got, err, c.want)
			case c.want == "" && !errors.Is(err, errRewound):
				t.Fatalf("got %q, %v; want errRewound", got, err)
			}
		})
	}
}
