package cli

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// testDaemonForcedExit forces the daemon's exit (first, then second: two
// SIGINTs, or two SIGTERMs more than termEcho apart) while a task runs: it exits 130 saying it killed the task's group, the
// kill is not journaled as the task's outcome (the daemon froze its
// journals first), and the next daemon resumes the run to success.
func testDaemonForcedExit(t *testing.T, bin string, first, second os.Signal) {
	dir := t.TempDir()
	mark, again := filepath.Join(dir, "started"), filepath.Join(dir, "again")
	wf := "name: forced\ntasks:\n  - {name: work, type: shell, config: {command: \"[ -e " + again + " ] && exit 0; touch " + mark + "; exec sleep 120\"}}\n"
	e := newDmnEnv(t, bin, map[string]string{"forced.yaml": wf})
	p := e.startDaemon()
	id := e.triggerStarted("forced", mark)
	var noticed time.Time // after the daemon took the first signal in: its echo window began before
	for i, notice := range []string{"stopping gracefully", "forced exit"} {
		s := first
		if i == 1 {
			s = second
			if first == syscall.SIGTERM && second == syscall.SIGTERM {
				time.Sleep(termEcho - time.Since(noticed)) // the rule's window, not a synchronisation: an echo would not force
			}
		}
		if err := p.cmd.Process.Signal(s); err != nil {
			t.Fatal(err)
		}
		e.waitFor(10*time.Second, "the notice "+notice, func() bool { return strings.Contains(p.stderr.String(), notice) })
		noticed = time.Now()
	}
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		t.Fatalf("the daemon did not exit after a forced exit\n%s", p.stderr)
	}
	if p.code != ExitForced || !strings.Contains(p.stderr.String(), "killed 1 task process group(s)") {
		t.Fatalf("exit %d after %v then %v, want %d and the killed group named\n%s", p.code, first, second, ExitForced, p.stderr)
	}
	ended := func(ev *journal.Event) bool {
		return ev.Run == id && (ev.Type == journal.TaskFinished || ev.Type == journal.RunFinished)
	}
	if n := e.count(ended); n != 0 {
		t.Fatalf("the forced exit journaled %d end(s) of run %s: the kill became an outcome", n, id)
	}
	if err := os.WriteFile(again, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p = e.startDaemon()
	e.waitFor(20*time.Second, "the resumed run to finish", func() bool {
		return e.count(func(ev *journal.Event) bool {
			return ev.Type == journal.RunFinished && ev.Run == id && ev.Status == journal.StatusSuccess
		}) == 1
	})
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, p.stderr)
	}
}
