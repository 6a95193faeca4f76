package cli

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/picoflow/picoflow/engine"
)

// TestCancelHolderGone: the foreground picoflow that held a run's journal
// exits (its run just ended) between cancel's look at the LOCK and its
// SIGUSR1: cancel says so (errHolderGone), and cancel then looks again
// instead of failing with "no such process" (ExitInternal), which the
// spare torture met once in 80 trials.
func TestCancelHolderGone(t *testing.T) {
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	pid := gone.Process.Pid // reaped: no such process
	h := home(t.TempDir())
	dir := journalDir(string(h), "wf")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "LOCK"), []byte(strconv.Itoa(pid)+" run wf.yaml\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	m := &Main{Stdout: &dmnBuffer{}, Stderr: &dmnBuffer{}}
	err := m.cancelElsewhere(context.Background(), h, &engine.Run{ID: "r1", Workflow: "wf"}, pid, engine.CancelRequest{})
	if !errors.Is(err, errHolderGone) {
		t.Fatalf("cancelElsewhere: %v, want errHolderGone", err)
	}
	if _, err := os.Stat(cancelRequestPath(h, "r1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the cancel request file is left: %v", err)
	}
}
