package cli

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/journal"
)

// testCancelGrace cancels a foreground run whose shutdown_grace is ten
// minutes with cancel --grace 0: its running task is killed at once (the
// run ends well within the minute c.wait allows), on_cancel runs, the run
// ends canceled. shorten: a plain cancel first (the ten minutes start),
// then cancel --grace 0 cuts them short. A negative --grace is refused.
func testCancelGrace(t *testing.T, bin string) {
	if r := pf(t, t.TempDir(), "cancel", "--grace", "-1s", "20261201-000000-00000000"); r.code != ExitUsage ||
		!strings.Contains(r.stderr, "--grace must be 0") {
		t.Errorf("cancel --grace -1s: exit %d, want %d\n%s", r.code, ExitUsage, r.stderr)
	}
	for _, shorten := range []bool{false, true} {
		name := map[bool]string{false: "grace-0", true: "shorten"}[shorten]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			home := filepath.Join(dir, "home")
			file := writeWorkflow(t, dir, "cg", "{shutdown_grace: 10m}",
				spec{name: "long", cmd: `echo $$ > "$T/pgid"; exec sleep 600`},
				spec{name: "after", cmd: ledger("after"), deps: []string{"long"}})
			withHandlers(t, file, handlerYAML("on_cancel", "undo", `echo undo >> "$T/ledger"`))
			c := start(t, bin, "run", "--home", home, file)
			pgid := c.taskGroup(t, filepath.Join(dir, "pgid"))
			id := onlyRun(t, home)
			if shorten {
				first := start(t, bin, "cancel", "--home", home, id)
				if code := first.wait(t); code != ExitOK || !strings.Contains(first.stdout.String(), "the workflow's shutdown_grace") {
					t.Fatalf("cancel: exit %d\n%s%s", code, &first.stdout, &first.stderr)
				}
			}
			cancel := start(t, bin, "cancel", "--home", home, "--grace", "0", id)
			if code := cancel.wait(t); code != ExitOK || !strings.Contains(cancel.stdout.String(), "get 0s") {
				t.Fatalf("cancel --grace 0: exit %d\n%s%s", code, &cancel.stdout, &cancel.stderr)
			}
			if code := c.wait(t); code != ExitFailed || !strings.Contains(c.stderr.String(), "canceled") {
				t.Fatalf("the canceled run: exit %d\n%s", code, &c.stderr)
			}
			waitGroupGone(t, pgid)
			if r := runOf(t, home, id); r.Status != engine.RunCanceled || r.Tasks["long"].Status != engine.Canceled {
				t.Errorf("run %s, task long %s; want both canceled", r.Status, r.Tasks["long"].Status)
			}
			if got := readLedger(t, dir); !slices.Equal(got, []string{"undo"}) {
				t.Errorf("ledger %v, want undo", got)
			}
		})
	}
}

// testDaemonCancelGrace is cancel --grace 0 of a run the daemon executes,
// its shutdown_grace ten minutes: the request carries the grace over the
// control socket, the task is killed at once, the run ends canceled.
func testDaemonCancelGrace(t *testing.T, bin string) {
	work := t.TempDir()
	mark := filepath.Join(work, "started")
	wf := "name: dgrace\nconfig: {shutdown_grace: 10m}\ntasks:\n" +
		"  - {name: work, type: shell, config: {command: \"touch " + mark + "; exec sleep 600\"}}\n"
	e := newDmnEnv(t, bin, map[string]string{"dgrace.yaml": wf})
	p := e.startDaemon()
	id := e.triggerStarted("dgrace", mark)
	code, stdout, stderr := e.run("cancel", "--grace", "0", id)
	if code != ExitOK || !strings.Contains(stdout, "get 0s") {
		t.Fatalf("cancel --grace 0: exit %d\n%s%s", code, stdout, stderr)
	}
	e.waitFor(20*time.Second, "the run to end canceled", func() bool {
		return e.count(func(ev *journal.Event) bool {
			return ev.Type == journal.RunFinished && ev.Run == id && ev.Status == journal.StatusCanceled
		}) == 1
	})
	if code := p.stop(t); code != 0 {
		t.Fatalf("daemon exit %d\n%s", code, p.stderr)
	}
}
