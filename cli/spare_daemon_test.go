package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// TestSpareDaemon: three workflows at max_parallel 1 share the daemon's
// two task slots, so their spares wait while other runs hold the slots.
// The daemon is stopped (SIGTERM) while a spare waits and started again:
// it resumes the runs. Checked from the tasks' ledger: never more than
// two tasks at once over all runs, nor two of one run; every task ran
// exactly once; no shell is left at its gate after the stop, and no log
// file of an attempt the journal never started is left.
func TestSpareDaemon(t *testing.T) {
	bin := testBinary(t)
	files := map[string]string{}
	e := newDmnEnv(t, bin, files)
	root := filepath.Dir(e.dir)
	wfs := []string{"wa", "wb", "wc"}
	for _, w := range wfs {
		var b strings.Builder
		fmt.Fprintf(&b, "name: %s\nenv: {T: %q}\nconfig: {max_parallel: 1}\ntasks:\n", w, root)
		for i := range 6 {
			fmt.Fprintf(&b, "  - {name: t%d, type: shell, config: {command: 'echo S $PICOFLOW_WORKFLOW $PICOFLOW_TASK >> $T/ledger; sleep 0.0$(($$ %% 8 + 2)); echo E $PICOFLOW_WORKFLOW $PICOFLOW_TASK >> $T/ledger'}}\n", i)
		}
		e.write(w+".yaml", b.String())
	}
	p := e.startDaemon("--max-parallel", "2")
	for _, w := range wfs {
		if code, out, errb := e.run("trigger", w); code != ExitOK {
			t.Fatalf("trigger %s: exit %d %s %s", w, code, out, errb)
		}
	}
	e.waitFor(20*time.Second, "a spare at its gate", func() bool { return len(gatedShells(root)) > 0 })
	if code := p.stop(t); code != ExitOK {
		t.Fatalf("daemon stop: exit %d\n%s", code, p.stderr)
	}
	noneLeft(t, root, "after the daemon's stop")
	checkSpareLogs(t, e)
	p = e.startDaemon("--max-parallel", "2")
	e.waitFor(30*time.Second, "the three runs to succeed", func() bool {
		return e.count(func(ev *journal.Event) bool {
			return ev.Type == journal.RunFinished && ev.Status == journal.StatusSuccess
		}) == len(wfs)
	})
	if code := p.stop(t); code != ExitOK {
		t.Fatalf("daemon stop: exit %d\n%s", code, p.stderr)
	}
	noneLeft(t, root, "at the end")
	checkSpareLogs(t, e)
	b, err := os.ReadFile(filepath.Join(root, "ledger"))
	if err != nil {
		t.Fatal(err)
	}
	all, per, ran := 0, map[string]int{}, map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			t.Fatalf("torn ledger line %q", l)
		}
		d := 1
		if f[0] == "E" {
			d = -1
		} else {
			ran[f[1]+" "+f[2]]++
		}
		all += d
		per[f[1]] += d
		if all > 2 || per[f[1]] > 1 {
			t.Errorf("at %q: %d tasks at once, %d of %s (limits 2 and 1)", l, all, per[f[1]], f[1])
		}
	}
	for _, w := range wfs {
		for i := range 6 {
			if n := ran[fmt.Sprintf("%s t%d", w, i)]; n != 1 {
				t.Errorf("%s t%d ran %d times, want once", w, i, n)
			}
		}
	}
}

// checkSpareLogs: every file of the home's log directories is the log of
// an attempt the journal started.
func checkSpareLogs(t *testing.T, e *dmnEnv) {
	t.Helper()
	named := map[string]bool{}
	for _, ev := range e.events() {
		if ev.Type == journal.TaskStarted {
			named[ev.LogPath] = true
		}
	}
	m, _ := filepath.Glob(filepath.Join(e.home, "logs", "*", "*", "*"))
	for _, p := range m {
		if !named[p] {
			t.Errorf("the log directory holds %s, of no attempt the journal started", p)
		}
	}
}
