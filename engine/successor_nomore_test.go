package engine

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/picoflow/picoflow/executors"
)

// earlyShells wraps the shell executor and records, for task c, each
// shell started (Execute: one fork each) before $T/b.done existed, that
// is, while b still ran.
type earlyShells struct {
	executors.Gater
	dir   string
	mu    sync.Mutex
	calls map[string]int
	early int
}

func (e *earlyShells) Execute(ctx context.Context, req *executors.Request) executors.Result {
	e.mu.Lock()
	e.calls[req.Task.Name]++
	if _, err := os.Stat(filepath.Join(e.dir, "b.done")); req.Task.Name == "c" && err != nil {
		e.early++
	}
	e.mu.Unlock()
	return e.Gater.Execute(ctx, req)
}

// TestSuccessorSpareNoMore: once the task a successor spare was made
// behind ran longer than spareFresh, the run makes no more successor
// spares, whatever let that spare go: a's outputs (its dependent b needs
// a new shell) or a's retry. So c's shell is not started while b runs.
func TestSuccessorSpareNoMore(t *testing.T) {
	t.Parallel()
	for name, aCmd := range map[string]string{
		// a runs "long" on the clock the test moves, and passes an output on.
		"outputs": waitThen("K=from-a", 0),
		// a's first attempt runs 250 ms and fails; its retry succeeds at once.
		"retried": `test -e "$T/again" || { touch "$T/again"; sleep 0.25; exit 1; }; echo a >> "$T/ledger"`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t)
			if err := syscall.Mkfifo(filepath.Join(h.work, "go2"), 0o600); err != nil {
				t.Fatal(err)
			}
			if name == "outputs" {
				if err := syscall.Mkfifo(filepath.Join(h.work, "go"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			wf := parse(t, wfYAML("chain", "max_parallel: 2\nbackoff: {initial: 1ms, max: 1ms}", "",
				task{name: "a", cmd: aCmd, extra: "retry: 1"},
				task{name: "b", cmd: `echo b >> "$T/ledger"; read _ < "$T/go2"; touch "$T/b.done"`, deps: []string{"a"}},
				task{name: "c", cmd: `echo c >> "$T/ledger"`, deps: []string{"b"}}))
			var late atomic.Int64
			frozen := time.Now()
			var shells *earlyShells
			done := make(chan *Run, 1)
			go func() {
				done <- h.start(wf, func(o *Options) {
					o.Executors = maps.Clone(o.Executors)
					shells = &earlyShells{Gater: o.Executors["shell"].(executors.Gater), dir: h.work, calls: map[string]int{}}
					o.Executors["shell"] = shells
					if name == "outputs" {
						o.Clock = func() time.Time { return frozen.Add(time.Duration(late.Load())) }
					}
				})
			}()
			if name == "outputs" {
				waitSpare(t, h, "b")
				late.Store(int64(2 * spareFresh))
				openGo(t, h)
			}
			waitLine(t, h, "b")
			f, err := os.OpenFile(filepath.Join(h.work, "go2"), os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
			r := <-done
			if got := strings.Join(h.lines("ledger"), " "); r.Status != RunSuccess || got != "a b c" {
				t.Fatalf("run %s, ledger %q; want success, \"a b c\"", r.Status, got)
			}
			shells.mu.Lock()
			defer shells.mu.Unlock()
			if shells.early > 0 || shells.calls["c"] != 1 {
				t.Errorf("c's shells: %d started while b ran, %d in all; want 0 and 1 (shells per task %v)",
					shells.early, shells.calls["c"], shells.calls)
			}
		})
	}
}

// waitLine waits until the ledger holds line.
func waitLine(t *testing.T, h *home, line string) {
	t.Helper()
	for range 10000 {
		for _, l := range h.lines("ledger") {
			if l == line {
				return
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("the ledger never held %q", line)
}
