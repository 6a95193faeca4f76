package cli

import (
	"log/slog"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkOpenWorkflowNewHome measures what a run in a new home does
// before its engine starts: the home's layout, its four directory fsyncs
// and the workflow journal's opening (its first segment). Each iteration
// makes a new home in the benchmark's temporary directory, on the disk
// TMPDIR is on (fsyncs cost what that disk makes them cost).
func BenchmarkOpenWorkflowNewHome(b *testing.B) {
	dir := b.TempDir()
	g := &globals{log: slog.New(slog.DiscardHandler)}
	for i := 0; b.Loop(); i++ {
		h := home(filepath.Join(dir, strconv.Itoa(i)))
		j, _, err := h.openWorkflow("wf", "bench", g, nil)
		if err != nil {
			b.Fatal(err)
		}
		j.Close()
	}
}
