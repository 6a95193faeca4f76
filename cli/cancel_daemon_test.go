package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// testDaemonCancel cancels a run the daemon executes: cancel goes over the
// control socket, the task is stopped after the grace, on_cancel runs in
// the daemon, and the run ends canceled with the reason.
func testDaemonCancel(t *testing.T, bin string) {
	work := t.TempDir()
	mark := filepath.Join(work, "started")
	wf := "name: dcancel\nconfig: {shutdown_grace: 300ms}\ntasks:\n" +
		"  - {name: work, type: shell, config: {command: \"touch " + mark + "; exec sleep 120\"}}\n" +
		"  - {name: after, type: shell, depends_on: [work], config: {command: \"true\"}}\n" +
		"on_cancel:\n  - {name: undo, type: shell, config: {command: \"echo undo >> " + filepath.Join(work, "ledger") + "\"}}\n"
	e := newDmnEnv(t, bin, map[string]string{"dcancel.yaml": wf})
	p := e.startDaemon()
	id := e.triggerStarted("dcancel", mark)
	code, stdout, stderr := e.run("cancel", id, "--reason", "maintenance")
	if code != ExitOK || !strings.Contains(stdout, "canceled") {
		t.Fatalf("cancel: exit %d\n%s%s", code, stdout, stderr)
	}
	e.waitFor(20*time.Second, "the run to end canceled", func() bool {
		return e.count(func(ev *journal.Event) bool {
			return ev.Type == journal.RunFinished && ev.Run == id && ev.Status == journal.StatusCanceled &&
				strings.HasSuffix(ev.Reason, ": maintenance")
		}) == 1
	})
	if b, _ := os.ReadFile(filepath.Join(work, "ledger")); string(b) != "undo\n" {
		t.Errorf("ledger %q, want the on_cancel handler once", b)
	}
	if code, _, stderr := e.run("cancel", id); code != ExitFinished {
		t.Errorf("second cancel: exit %d, want %d: %s", code, ExitFinished, stderr)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("daemon exit %d\n%s", code, p.stderr)
	}
}
