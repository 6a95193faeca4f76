package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/picoflow/picoflow/executors"
	"github.com/picoflow/picoflow/journal"
)

// headWF is a workflow whose first task records its shell's pid, so that
// a test tells the shell started ahead from one started by the run.
func headWF(t *testing.T, h *home) string {
	t.Helper()
	// The workflow's log directory exists: not its first run.
	if err := os.MkdirAll(filepath.Join(h.dir, "logs", "head"), 0o750); err != nil {
		t.Fatal(err)
	}
	return wfYAML("head", "", "",
		task{name: "a", cmd: `echo a >> "$T/ledger"; echo $$ > "$T/a.pid"; echo hello from a`},
		task{name: "b", cmd: `echo b >> "$T/ledger"`, deps: []string{"a"}})
}

// wfLogEntries lists HOME/logs/head: run directories only, never a file.
func wfLogEntries(t *testing.T, h *home) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(h.dir, "logs", "head"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func pidIn(t *testing.T, h *home, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.work, name))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestHeadStartRuns: the shell started ahead waits at its gate, leaves no
// name in the home meanwhile, and is the one that runs the task once the
// run with its id is started; its log is where the journal says.
func TestHeadStartRuns(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	wf := parse(t, headWF(t, h))
	eng := h.engine()
	hs := eng.HeadStart(wf, nil)
	if hs == nil {
		t.Fatal("no head start")
	}
	pid := waitSpare(t, h, "a")
	if got := h.lines("ledger"); len(got) != 0 {
		t.Fatalf("ledger %v before the run started", got)
	}
	if ents := wfLogEntries(t, h); len(ents) != 0 {
		t.Fatalf("HOME/logs/head holds %v before the run's run_started is written", ents)
	}
	id := hs.runID()
	r, err := eng.StartHead(context.Background(), wf, nil, "manual", hs)
	if err != nil {
		t.Fatalf("StartHead: %v", err)
	}
	hs.Dismiss() // a no-op once the run took it
	if l := strings.Join(h.lines("ledger"), " "); r.Status != RunSuccess || l != "a b" {
		t.Fatalf("run %s, ledger %q; want success, \"a b\"", r.Status, l)
	}
	if ran := pidIn(t, h, "a.pid"); ran != pid {
		t.Errorf("a ran in shell %d, the head start's was %d", ran, pid)
	}
	if r.ID != id {
		t.Errorf("run id %s, head start's %s", r.ID, id)
	}
	started := filter(h.events(), journal.TaskStarted, "a")
	if len(started) != 1 {
		t.Fatalf("a started %d times", len(started))
	}
	b, err := os.ReadFile(started[0].LogPath)
	if err != nil || !strings.Contains(string(b), "hello from a") {
		t.Fatalf("a's log %s: %q, %v", started[0].LogPath, b, err)
	}
	if ents := wfLogEntries(t, h); len(ents) != 1 || ents[0] != r.ID {
		t.Errorf("HOME/logs/head holds %v, want the run's directory only", ents)
	}
}

// TestHeadStartDismissed: a head start no run takes exits unrun and
// leaves nothing.
func TestHeadStartDismissed(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	wf := parse(t, headWF(t, h))
	hs := h.engine().HeadStart(wf, nil)
	if hs == nil {
		t.Fatal("no head start")
	}
	pid := waitSpare(t, h, "a")
	hs.Dismiss()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("head start's shell %d: %v, want it gone once dismissed", pid, err)
	}
	hs.Dismiss() // twice: nothing more
	if got := h.lines("ledger"); len(got) != 0 {
		t.Fatalf("ledger %v: a dismissed head start ran", got)
	}
	if ents := wfLogEntries(t, h); len(ents) != 0 {
		t.Errorf("dismissed head start left %v", ents)
	}
	if evs := h.events(); len(evs) != 0 {
		t.Errorf("dismissed head start journaled %d events", len(evs))
	}
}

// TestHeadStartStale: a head start older than spareFresh when its run
// starts (a journal slow to open) is dismissed, and the task starts as
// any launch, once.
func TestHeadStartStale(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	var late atomic.Int64
	eng := h.engine(func(o *Options) { o.Clock = func() time.Time { return time.Now().Add(time.Duration(late.Load())) } })
	givesWay(t, h, eng, func() { late.Store(int64(2 * spareFresh)) })
}

// TestHeadStartUnlinked: when the head start's log cannot be named in the
// run's directory, the head start is let go and the task starts as any
// launch, once, with its log.
func TestHeadStartUnlinked(t *testing.T) {
	h := newHome(t)
	linkLog = func(*os.File, string) error { return syscall.EXDEV }
	t.Cleanup(func() { linkLog = linkUnnamed })
	givesWay(t, h, h.engine(), func() {})
}

// givesWay starts a head start with eng, calls before once its shell
// waits, starts its run, and checks that the task ran once, in another
// shell, with its log, and that the head start's shell is gone.
func givesWay(t *testing.T, h *home, eng *Engine, before func()) {
	t.Helper()
	wf := parse(t, headWF(t, h))
	hs := eng.HeadStart(wf, nil)
	if hs == nil {
		t.Fatal("no head start")
	}
	pid := waitSpare(t, h, "a")
	before()
	r, err := eng.StartHead(context.Background(), wf, nil, "manual", hs)
	if err != nil {
		t.Fatalf("StartHead: %v", err)
	}
	if l := strings.Join(h.lines("ledger"), " "); r.Status != RunSuccess || l != "a b" {
		t.Fatalf("run %s, ledger %q; want success, \"a b\"", r.Status, l)
	}
	if ran := pidIn(t, h, "a.pid"); ran == pid {
		t.Errorf("a ran in the head start's shell %d", pid)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("head start's shell %d: %v, want it gone", pid, err)
	}
	started := filter(h.events(), journal.TaskStarted, "a")
	if b, err := os.ReadFile(started[0].LogPath); err != nil || !strings.Contains(string(b), "hello from a") {
		t.Fatalf("a's log: %q, %v", b, err)
	}
}

// TestHeadStartNone: no head start where a spare would not be one, nor
// for a workflow's first run (its log directory is made by the home's
// upgrade, not ahead of it).
func TestHeadStartNone(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	for name, src := range map[string]string{
		"first run": wfYAML("fresh", "", "", task{name: "a", cmd: "true"}),
		"workdir":   "name: head\ntasks:\n  - {name: a, type: shell, config: {command: 'true', workdir: /tmp}}\n",
		"secret":    wfYAML("head", "", "env: {K: '${secret:k}'}\n", task{name: "a", cmd: "true"}),
	} {
		if name != "first run" {
			headWF(t, h)
		}
		if hs := h.engine().HeadStart(parse(t, src), nil); hs != nil {
			hs.Dismiss()
			t.Errorf("%s: a head start", name)
		}
	}
	wf := parse(t, headWF(t, h))
	noGate := h.engine(func(o *Options) {
		o.Executors = map[string]executors.Executor{"shell": &hooked{inner: o.Executors["shell"]}}
	})
	if hs := noGate.HeadStart(wf, nil); hs != nil {
		hs.Dismiss()
		t.Error("a head start for an executor that does not gate")
	}
}
