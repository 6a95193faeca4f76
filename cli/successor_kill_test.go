package cli

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/journal"
)

// TestSuccessorChainKill9 kills picoflow with SIGKILL at random moments
// of chains (chainWorkflow, some steps idempotent: false), resolves an
// in-doubt step as failed, and runs it again until the run ends. Checked,
// beside chainCheck (killed: a kill -9 may leave a spare's empty log):
// a task journaled as succeeded before a kill never ran after it; a
// non-idempotent step ran at most once; no shell waits at its gate once
// its picoflow is gone; history --json agrees with a replay.
// PICOFLOW_CHAINKILL_TRIALS sets the number of trials (default 6).
func TestSuccessorChainKill9(t *testing.T) {
	bin := testBinary(t)
	trials, seed, rnd := tortureRand(t, "PICOFLOW_CHAINKILL", "TRIALS", 6, "TestSuccessorChainKill9", 0x94d049bb133111eb)
	kills, doubts := 0, 0
	for trial := range trials {
		dir := t.TempDir()
		home := filepath.Join(dir, "home")
		file, steps := chainWorkflow(t, dir, rnd, 20+rnd.IntN(21), "0.0$(($$ % 3))", true)
		k, d := chainKillUntilDone(t, bin, dir, home, file, steps, rnd)
		kills, doubts = kills+k, doubts+d
		chainCheck(t, dir, home, steps, true)
		st, err := engine.Replay(filepath.Join(home, "journal", "chain"), engine.AllRuns)
		if err != nil {
			t.Fatal(err)
		}
		for id := range st.Runs {
			sameTaskStatuses(t, home, id)
		}
		if t.Failed() {
			t.Fatalf("trial %d (seed %d) failed; workflow %s", trial, seed, file)
		}
	}
	t.Logf("seed %d: %d trials, %d kill -9, %d in-doubt steps resolved", seed, trials, kills, doubts)
}

// chainKillUntilDone runs the chain, kills picoflow one to three times
// when the ledger has grown by a random number of starts, and runs it
// again (resolving in-doubt steps as failed) until the run ends.
func chainKillUntilDone(t *testing.T, bin, dir, home, file string, steps []chainStep, rnd *rand.Rand) (kills, doubts int) {
	t.Helper()
	jdir := filepath.Join(home, "journal", "chain")
	var before []map[string]bool // per kill: tasks journaled succeeded
	var at []int                 // per kill: ledger lines
	nkills := 1 + rnd.IntN(3)
	for gen := 0; ; gen++ {
		if gen > 20 {
			t.Fatal("the run never ended")
		}
		target := -1
		if kills < nkills {
			target = len(chainLedger(t, dir)) + 1 + rnd.IntN(16)
		}
		c := start(t, bin, "run", "--home", home, file)
		for i := 0; !c.exited() && (target < 0 || len(chainLedger(t, dir)) < target); i++ {
			if i == 30000 {
				t.Fatalf("picoflow hangs\n%s%s", &c.stdout, &c.stderr)
			}
			time.Sleep(time.Millisecond)
		}
		if !c.exited() {
			c.cmd.Process.Signal(syscall.SIGKILL)
			c.wait(t)
			kills++
			before = append(before, chainSucceeded(t, jdir))
			at = append(at, len(chainLedger(t, dir)))
			chainGatedGone(t, dir)
			if chainFinished(t, jdir) {
				break // killed after the run ended: a new run would start over
			}
			continue
		}
		code := c.wait(t)
		if code == ExitInDoubt {
			doubts += chainResolve(t, bin, home, jdir)
			continue
		}
		if code != ExitOK && code != ExitFailed {
			t.Fatalf("exit %d\n%s%s", code, &c.stdout, &c.stderr)
		}
		break
	}
	chainCheckKills(t, dir, steps, before, at)
	return kills, doubts
}

// chainCheckKills: no task journaled succeeded before a kill ran after
// it, and no non-idempotent step ran twice.
func chainCheckKills(t *testing.T, dir string, steps []chainStep, before []map[string]bool, at []int) {
	t.Helper()
	lines := chainLedger(t, dir)
	for k, succ := range before {
		for _, l := range lines[min(at[k], len(lines)):] {
			if !l.end && succ[l.task] {
				t.Errorf("task %s was journaled succeeded before kill %d and ran after it (attempt %s)", l.task, k+1, l.att)
			}
		}
	}
	starts := map[string]int{}
	for _, l := range lines {
		if !l.end {
			starts[l.task]++
		}
	}
	for _, s := range steps {
		if s.nonIdem && starts[s.name] > 1 {
			t.Errorf("non-idempotent step %s ran %d times", s.name, starts[s.name])
		}
	}
}

func chainSucceeded(t *testing.T, jdir string) map[string]bool {
	t.Helper()
	m := map[string]bool{}
	if err := journal.Scan(jdir, journal.ScanOptions{}, func(e *journal.Event) error {
		if e.Type == journal.TaskFinished && e.Status == journal.StatusSuccess {
			m[e.Task] = true
		}
		return nil
	}); err != nil {
		t.Fatalf("scan: %v", err)
	}
	return m
}

func chainFinished(t *testing.T, jdir string) bool {
	t.Helper()
	done := false
	if err := journal.Scan(jdir, journal.ScanOptions{}, func(e *journal.Event) error {
		done = done || e.Type == journal.RunFinished
		return nil
	}); err != nil {
		t.Fatalf("scan: %v", err)
	}
	return done
}

// chainGatedGone waits until no shell of the trial waits at its gate: a
// spare's shell reads end of file once its picoflow is gone.
func chainGatedGone(t *testing.T, dir string) {
	t.Helper()
	for range 1000 {
		if len(gatedShells(dir)) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("shells wait at their gate after picoflow was killed: %v", gatedShells(dir))
}

// chainResolve resolves every in-doubt step as failed and returns how
// many there were.
func chainResolve(t *testing.T, bin, home, jdir string) int {
	t.Helper()
	st, err := engine.Replay(jdir, engine.AllRuns)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for id, r := range st.Runs {
		for name, ts := range r.Tasks {
			if ts.Status != engine.InDoubt {
				continue
			}
			n++
			if res := binCLI(t, bin, "resolve", "--home", home, id, name, "--failed"); res.code != ExitOK {
				t.Fatalf("resolve %s %s: exit %d\n%s%s", id, name, res.code, res.stdout, res.stderr)
			}
		}
	}
	if n == 0 {
		t.Fatal(fmt.Sprintf("exit %d but no step in doubt", ExitInDoubt))
	}
	return n
}
