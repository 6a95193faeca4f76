package projector

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/picoflow/picoflow/projector/projectortest"
)

// TestPendingPGIDs: a task_process is written with the end of its attempt
// when both are in one batch, on its own otherwise; every batch size gives
// each task and attempt row the process group of its task_process
// (projectortest.Generate: 1000+k for task k, every attempt finished).
func TestPendingPGIDs(t *testing.T) {
	home := t.TempDir()
	projectortest.Generate(t, home, 3, 4)
	jdir := filepath.Join(home, "journal")
	ctx := context.Background()
	for _, batch := range []int{1, 2, 3, 4, 2048} {
		db, err := Open(filepath.Join(t.TempDir(), "db"), Options{BatchSize: batch})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.CatchUp(ctx, jdir); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{
			`SELECT count(*), count(*) FILTER (WHERE pgid = 1000 + CAST(substr(task, 5) AS INTEGER)) FROM tasks`,
			`SELECT count(*), count(*) FILTER (WHERE pgid = 1000 + CAST(substr(task, 5) AS INTEGER)) FROM task_attempts`,
		} {
			var rows, right int
			if err := db.r.QueryRow(q).Scan(&rows, &right); err != nil {
				t.Fatal(err)
			}
			if rows != 12 || right != rows {
				t.Errorf("batch %d: %s: %d of %d rows hold their task_process's pgid; want 12 of 12", batch, q, right, rows)
			}
		}
		db.Close()
	}
}
