package engine

import (
	"bytes"
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

	"github.com/picoflow/picoflow/journal"
)

// spareWF is a run at max_parallel 1 whose first task, a, waits until the
// test opens the FIFO $T/go for writing, so that b, next in line, is the
// spare meanwhile; b and c append to $T/ledger, and b writes the pid of
// the shell that ran it to $T/b.pid.
func spareWF(t *testing.T, h *home) string {
	t.Helper()
	if err := syscall.Mkfifo(filepath.Join(h.work, "go"), 0o600); err != nil {
		t.Fatal(err)
	}
	return wfYAML("spare", "max_parallel: 1", "",
		task{name: "a", cmd: `read _ < "$T/go"; echo a >> "$T/ledger"`},
		task{name: "b", cmd: `echo b >> "$T/ledger"; echo $$ > "$T/b.pid"`},
		task{name: "c", cmd: `echo c >> "$T/ledger"`})
}

// waitSpare returns the pid of task's shell, started ahead of its turn, once
// it waits at its gate. It reads /proc: the spare is found by the test's $T
// in its environment.
func waitSpare(t *testing.T, h *home, task string) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if pid := taskShell(h, task); pid > 0 {
			wchan, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/wchan")
			if string(wchan) == "pipe_read" || string(wchan) == "anon_pipe_read" {
				return pid
			}
		}
		time.Sleep(2 * time.Millisecond) // polling /proc: no event says when a process blocks
	}
	t.Fatalf("no shell of %s waits at its gate", task)
	return 0
}

// taskShell returns the pid of a process of the test's task, or 0.
func taskShell(h *home, task string) int {
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, p := range procs {
		env, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		vars := bytes.Split(env, []byte{0})
		var mine, is bool
		for _, v := range vars {
			mine = mine || string(v) == "T="+h.work
			is = is || string(v) == "PICOFLOW_TASK="+task
		}
		if mine && is {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			return pid
		}
	}
	return 0
}

// openGo lets a run: opens $T/go for writing, which a's read waits for.
func openGo(t *testing.T, h *home) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(h.work, "go"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestSpareRunsOnceItsStartIsCommitted: while every slot is taken, the next
// task's shell is started ahead and waits at its gate, with nothing of its
// command run and nothing of it journaled; once a slot frees, its start is
// committed and it runs, once.
func TestSpareRunsOnceItsStartIsCommitted(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	wf := parse(t, spareWF(t, h))
	done := make(chan *Run, 1)
	// The clock stands still: however long the test takes to find the
	// spare, it stays fresh (TestSpareStale is the other case).
	frozen := time.Now()
	go func() { done <- h.start(wf, func(o *Options) { o.Clock = func() time.Time { return frozen } }) }()
	spare := waitSpare(t, h, "b")
	if got := h.lines("ledger"); len(got) != 0 {
		t.Fatalf("ledger %v before a ended: the spare ran its command", got)
	}
	openGo(t, h)
	r := <-done
	if got := h.lines("b.pid"); len(got) != 1 || got[0] != strconv.Itoa(spare) {
		t.Errorf("b ran in shell %v, want the spare %d", got, spare)
	}
	if r.Status != RunSuccess {
		t.Fatalf("run %s, want success", r.Status)
	}
	if got := strings.Join(h.lines("ledger"), " "); got != "a b c" {
		t.Fatalf("ledger %q, want \"a b c\": each task once, in order", got)
	}
	evs := h.events()
	for _, name := range []string{"b", "c"} {
		if s := filter(evs, journal.TaskStarted, name); len(s) != 1 || s[0].Attempt != 1 {
			t.Errorf("%s: started %+v, want attempt 1 once", name, s)
		}
	}
	if pid := taskShell(h, "b"); pid > 0 {
		t.Errorf("b's shell (pid %d) is still there after the run", pid)
	}
}

// TestSpareDismissed: a run stopped, or canceled, while its spare waits
// starts nothing of it: the spare's shell ends without running its
// command, no journal entry names it, its log file is gone, and the loop
// returns only once its shell is reaped. A resume runs b once. (A user:
// task gets no spare: TestReadsAtFork, cli's TestUserTaskNoSpare.)
func TestSpareDismissed(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"stop", "cancel"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			h := newHome(t)
			wf := parse(t, spareWF(t, h))
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			c := NewCancels()
			eng := h.engine(func(o *Options) { o.Cancels, o.Grace = c, 100*time.Millisecond })
			type started struct {
				r   *Run
				err error
			}
			done := make(chan started, 1)
			go func() {
				r, err := eng.Start(ctx, wf, nil, "manual")
				done <- started{r, err}
			}()
			pid := waitSpare(t, h, "b")
			if how == "stop" {
				stop()
			} else if live := c.Live(); len(live) != 1 || !c.Cancel(live[0], CancelRequest{By: "test"}) {
				t.Fatalf("cancel: live runs %v", live)
			}
			res := <-done
			if res.err != nil {
				t.Fatalf("Start: %v", res.err)
			}
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("b's spare shell %d: %v, want it gone once the loop returned", pid, err)
			}
			if got := h.lines("ledger"); len(got) != 0 {
				t.Fatalf("ledger %v: a stopped run ran something", got)
			}
			evs := h.events()
			if s := filter(evs, journal.TaskStarted, "b"); len(s) != 0 {
				t.Fatalf("b started %+v: a dismissed spare is journaled", s)
			}
			logs, _ := filepath.Glob(filepath.Join(h.dir, "logs", "spare", res.r.ID, "b.*"))
			if len(logs) != 0 {
				t.Errorf("dismissed spare left %v", logs)
			}
			if how != "stop" {
				return
			}
			h.reopen()
			got := h.replay(res.r.ID)
			go func() { // a runs again: let it through
				if f, err := os.OpenFile(filepath.Join(h.work, "go"), os.O_WRONLY, 0); err == nil {
					f.Close()
				}
			}()
			if err := h.engine().Resume(context.Background(), wf, got); err != nil {
				t.Fatalf("Resume: %v", err)
			}
			if l := strings.Join(h.lines("ledger"), " "); got.Status != RunSuccess || l != "a b c" {
				t.Fatalf("resumed: %s, ledger %q; want success, \"a b c\"", got.Status, l)
			}
		})
	}
}

// TestSpareStale: a spare that waited longer than spareFresh is not the
// attempt that starts (what its executor resolved may be stale): it ends
// unrun and the task runs in a shell started when its turn came.
func TestSpareStale(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	wf := parse(t, spareWF(t, h))
	var skew atomic.Int64 // the test's clock runs ahead by this
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	done := make(chan *Run, 1)
	go func() { done <- h.start(wf, func(o *Options) { o.Clock = clock }) }()
	spare := waitSpare(t, h, "b")
	skew.Store(int64(2 * spareFresh))
	openGo(t, h)
	r := <-done
	if got := strings.Join(h.lines("ledger"), " "); r.Status != RunSuccess || got != "a b c" {
		t.Fatalf("run %s, ledger %q; want success, \"a b c\"", r.Status, got)
	}
	if got := h.lines("b.pid"); len(got) != 1 || got[0] == strconv.Itoa(spare) {
		t.Errorf("b ran in shell %v: the stale spare %d ran it", got, spare)
	}
	if err := syscall.Kill(spare, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("stale spare %d: %v, want it gone", spare, err)
	}
	if s := filter(h.events(), journal.TaskStarted, "b"); len(s) != 1 {
		t.Errorf("b started %d times, want once", len(s))
	}
}
