package engine

import (
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

// chainWF is a → b → c, a running aCmd; b records its pid and the output
// of a it got. Each task records that it ran.
func chainWF(t *testing.T, h *home, aCmd, aExtra string) string {
	t.Helper()
	if err := syscall.Mkfifo(filepath.Join(h.work, "go"), 0o600); err != nil {
		t.Fatal(err)
	}
	return wfYAML("chain", "max_parallel: 2", "",
		task{name: "a", cmd: aCmd, extra: aExtra},
		task{name: "b", cmd: `echo b >> "$T/ledger"; echo $$ > "$T/b.pid"; echo "[$PICOFLOW_OUT_A_K]" > "$T/b.out"; echo hello from b`, deps: []string{"a"}},
		task{name: "c", cmd: `echo c >> "$T/ledger"`, deps: []string{"b"}})
}

// waitThen is a's command: it waits for $T/go, records that it ran,
// writes out (if any) to $PICOFLOW_OUTPUT and exits with code.
func waitThen(out string, code int) string {
	cmd := `read _ < "$T/go"; echo a >> "$T/ledger"`
	if out != "" {
		cmd += `; echo '` + out + `' >> "$PICOFLOW_OUTPUT"`
	}
	return cmd + "; exit " + strconv.Itoa(code)
}

// startChain starts wf in the background and returns the pid of b's
// spare. The clock stands still (a spare stays fresh however long the test
// takes) unless late moves it; nil: the real clock (retries become due).
func startChain(t *testing.T, h *home, src string, late *atomic.Int64) (<-chan *Run, int) {
	t.Helper()
	wf := parse(t, src)
	done := make(chan *Run, 1)
	frozen := time.Now()
	go func() {
		done <- h.start(wf, func(o *Options) {
			if late != nil {
				o.Clock = func() time.Time { return frozen.Add(time.Duration(late.Load())) }
			}
		})
	}()
	return done, waitSpare(t, h, "b")
}

// TestSuccessorSpare: in a chain, while a runs, b's shell is started
// ahead and waits at its gate; b runs in it once a succeeded, once.
func TestSuccessorSpare(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	var late atomic.Int64
	done, spare := startChain(t, h, chainWF(t, h, waitThen("", 0), ""), &late)
	if got := h.lines("ledger"); len(got) != 0 {
		t.Fatalf("ledger %v before a ended", got)
	}
	openGo(t, h)
	r := <-done
	if got := strings.Join(h.lines("ledger"), " "); r.Status != RunSuccess || got != "a b c" {
		t.Fatalf("run %s, ledger %q; want success, \"a b c\"", r.Status, got)
	}
	if got := h.lines("b.pid"); len(got) != 1 || got[0] != strconv.Itoa(spare) {
		t.Errorf("b ran in shell %v, want its spare %d", got, spare)
	}
}

// TestSuccessorSpareOutputs: a's outputs are not in the environment of
// b's spare, made while a ran: b starts in a new shell that has them.
func TestSuccessorSpareOutputs(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	var late atomic.Int64
	done, spare := startChain(t, h, chainWF(t, h, waitThen("K=from-a", 0), ""), &late)
	openGo(t, h)
	r := <-done
	if got := strings.Join(h.lines("ledger"), " "); r.Status != RunSuccess || got != "a b c" {
		t.Fatalf("run %s, ledger %q; want success, \"a b c\"", r.Status, got)
	}
	if got := h.lines("b.out"); len(got) != 1 || got[0] != "[from-a]" {
		t.Errorf("b got a's output as %v, want [from-a]", got)
	}
	if got := h.lines("b.pid"); len(got) == 1 && got[0] == strconv.Itoa(spare) {
		t.Errorf("b ran in its spare %d, made before a's outputs were known", spare)
	}
	if err := syscall.Kill(spare, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("b's spare %d: %v, want it gone", spare, err)
	}
}

// TestSuccessorSpareDismissed: when a fails, b is skipped and its spare
// exits unrun; when a is retried, the spare is let go, and b runs once
// after a's second attempt.
func TestSuccessorSpareDismissed(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{"failed": "a", "retried": "a b c"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t)
			aCmd, aExtra := waitThen("", 1), ""
			if name == "retried" { // the first attempt waits and fails, the second succeeds at once
				aCmd, aExtra = `test -e "$T/again" || { read _ < "$T/go"; touch "$T/again"; exit 1; }; echo a >> "$T/ledger"`, "retry: 1"
			}
			src := chainWF(t, h, aCmd, aExtra)
			if name == "retried" {
				src = strings.Replace(src, "  max_parallel: 2\n", "  max_parallel: 2\n  backoff: {initial: 1ms, max: 1ms}\n", 1)
			}
			done, spare := startChain(t, h, src, nil)
			openGo(t, h)
			r := <-done
			if got := strings.Join(h.lines("ledger"), " "); got != want {
				t.Fatalf("run %s, ledger %q, want %q", r.Status, got, want)
			}
			if err := syscall.Kill(spare, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("b's spare %d: %v, want it gone", spare, err)
			}
			if n := len(filter(h.events(), journal.TaskStarted, "a")); name == "retried" && n != 2 {
				t.Errorf("a started %d times, want 2", n)
			}
			logs, _ := filepath.Glob(filepath.Join(h.dir, "logs", "chain", r.ID, "b.*"))
			if name == "failed" && len(logs) != 0 {
				t.Errorf("the dismissed spare left %v", logs)
			}
		})
	}
}

// TestSuccessorSpareStale: a spare older than spareFresh when a ends is
// let go and b starts in a new shell; the run makes no more successor
// spares (a chain of tasks that long gains nothing from them).
func TestSuccessorSpareStale(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	var late atomic.Int64
	done, spare := startChain(t, h, chainWF(t, h, waitThen("", 0), ""), &late)
	late.Store(int64(2 * spareFresh))
	openGo(t, h)
	r := <-done
	if got := strings.Join(h.lines("ledger"), " "); r.Status != RunSuccess || got != "a b c" {
		t.Fatalf("run %s, ledger %q; want success, \"a b c\"", r.Status, got)
	}
	if got := h.lines("b.pid"); len(got) == 1 && got[0] == strconv.Itoa(spare) {
		t.Errorf("b ran in its stale spare %d", spare)
	}
	// The new attempt's log, at the path the let-go spare's was removed
	// from first.
	if b, err := os.ReadFile(filepath.Join(h.dir, "logs", "chain", r.ID, "b.1.log")); err != nil || string(b) != "hello from b\n" {
		t.Errorf("b's log: %q, %v", b, err)
	}
}
