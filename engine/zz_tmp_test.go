package engine

import (
	"os"
	"testing"

	"github.com/picoflow/picoflow/journal"
)

func BenchmarkTmpFold(b *testing.B) {
	dir := os.Getenv("FOLDDIR")
	for b.Loop() {
		st := NewState()
		if err := st.FoldDir(dir, journal.ScanOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
