package shell

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/picoflow/picoflow/executors"
)

// BenchmarkExecuteGated runs `true` as the engine does: gated, its output
// straight into a log file, in an environment of PicoFlow's own plus the
// PICOFLOW_* variables. Its allocs/op are the executor's per task; its
// time is mostly the shell's fork, exec and start-up. Run with:
//
//	go test ./executors/shell -run '^$' -bench Gated -benchmem
func BenchmarkExecuteGated(b *testing.B) {
	dir := b.TempDir()
	log, err := os.Create(filepath.Join(dir, "task.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close()
	env := append(os.Environ(), "PICOFLOW_RUN_ID=r", "PICOFLOW_WORKFLOW=w", "PICOFLOW_TASK=t",
		"PICOFLOW_ATTEMPT=1", "PICOFLOW_OUTPUT="+filepath.Join(dir, "t.1.out"))
	task := &executors.Task{Name: "t", Shell: &executors.ShellConfig{Command: "true"}}
	sh := &Shell{}
	for b.Loop() {
		req := &executors.Request{Run: "r", Workflow: "w", Task: task, Attempt: 1,
			Env: env, Log: log, KillGrace: time.Second, OutputFile: filepath.Join(dir, "t.1.out"),
			Started: func(int) {}, Commit: commitAs(true)}
		if res := sh.Execute(context.Background(), req); res.Status != executors.Success {
			b.Fatalf("%v: %v", res.Status, res.Err)
		}
	}
}
