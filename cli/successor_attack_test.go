package cli

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/journal"
)

// The successor spare from outside: chains of short shell tasks, where
// the engine starts the next step's shell while the step before it runs
// (engine/spare.go successor). Every task appends "S RUN TASK ATTEMPT PID"
// to a ledger when it starts and "E ..." when it ends, and writes the
// PICOFLOW_OUT_ variables it got to $T/env.TASK.ATTEMPT. Some steps pass
// outputs on, fail (with or without continue_on_failure), fail once and
// are retried (writing outputs on both attempts), or time out; the step
// after a failing one runs on all_done or one_failed.

// chainStep is one step of a chain written by chainWorkflow.
type chainStep struct {
	name string
	out  bool // writes v and w to $PICOFLOW_OUTPUT
	// nonIdem: idempotent: false, and never retried: it runs at most once.
	nonIdem bool
}

// chainWorkflow writes a chain of n steps into dir, as workflow "chain".
// nonIdem: some steps are idempotent: false.
func chainWorkflow(t *testing.T, dir string, rnd *rand.Rand, n int, nap string, nonIdem bool) (string, []chainStep) {
	var specs []spec
	var steps []chainStep
	prevFails := false
	for i := range n {
		st := chainStep{name: fmt.Sprintf("s%02d", i)}
		kind := []string{"ok", "ok", "ok", "out", "out", "fail", "flaky", "timeout"}[rnd.IntN(8)]
		st.out = kind == "out" || (kind == "flaky" && rnd.IntN(2) == 0)
		body := `echo "S $PICOFLOW_RUN_ID $PICOFLOW_TASK $PICOFLOW_ATTEMPT $$" >> "$T/ledger"; ` +
			`env | grep '^PICOFLOW_OUT_' | sort > "$T/env.$PICOFLOW_TASK.$PICOFLOW_ATTEMPT"; sleep ` + nap + `; r=0; `
		if st.out {
			body += `echo "v=$PICOFLOW_TASK-$PICOFLOW_ATTEMPT-$$" >> "$PICOFLOW_OUTPUT"; echo 'w=a b=c' >> "$PICOFLOW_OUTPUT"; `
		}
		var extra []string
		switch kind {
		case "fail":
			body += `r=1; `
			if rnd.IntN(2) == 0 {
				extra = append(extra, "continue_on_failure: true")
			}
		case "flaky":
			body += `[ "$PICOFLOW_ATTEMPT" -gt 1 ] || r=3; `
			extra = append(extra, "retry: 2")
		case "timeout":
			body += `sleep 5; `
			extra = append(extra, "timeout: 150ms")
		}
		body += `echo "E $PICOFLOW_RUN_ID $PICOFLOW_TASK $PICOFLOW_ATTEMPT $$" >> "$T/ledger"; exit $r`
		switch r := rnd.IntN(20); {
		case i == 0:
		case prevFails && r < 14, !prevFails && r < 3:
			extra = append(extra, "trigger_rule: all_done")
		case prevFails, r < 4:
			extra = append(extra, "trigger_rule: one_failed")
		}
		if nonIdem && kind != "flaky" && rnd.IntN(3) == 0 {
			st.nonIdem = true
			extra = append(extra, "idempotent: false")
		}
		s := spec{name: st.name, cmd: body, extra: strings.Join(extra, "\n")}
		if i > 0 {
			s.deps = []string{steps[i-1].name}
		}
		prevFails = kind == "fail" || kind == "timeout"
		specs = append(specs, s)
		steps = append(steps, st)
	}
	return writeWorkflow(t, dir, "chain", "{backoff: {initial: 1ms, max: 1ms}}", specs...), steps
}

// chainLine is one ledger line: "S|E RUN TASK ATTEMPT PID".
type chainLine struct {
	end                 bool
	run, task, att, pid string
}

func chainLedger(t *testing.T, dir string) []chainLine {
	b, err := os.ReadFile(filepath.Join(dir, "ledger"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []chainLine
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		if len(f) != 5 {
			if l != "" {
				t.Errorf("torn ledger line %q", l)
			}
			continue
		}
		out = append(out, chainLine{f[0] == "E", f[1], f[2], f[3], f[4]})
	}
	return out
}

// chainCheck checks a finished chain against its journal: every attempt
// journaled started ran exactly once and no other ran; skipped tasks never
// ran; each task's last attempt got exactly its upstream's outputs;
// nothing of the run is left and every log file is of a journaled start
// (killed: a kill -9 may leave an empty log of a spare).
func chainCheck(t *testing.T, dir, home string, steps []chainStep, killed bool) {
	t.Helper()
	jdir := filepath.Join(home, "journal", "chain")
	started := map[string]bool{}
	logs := map[string]bool{}
	if err := journal.Scan(jdir, journal.ScanOptions{Strict: true}, func(e *journal.Event) error {
		if e.Type == journal.TaskStarted {
			started[fmt.Sprintf("%s %s %d", e.Run, e.Task, e.Attempt)] = true
			logs[filepath.Join(e.Run, filepath.Base(e.LogPath))] = true
		}
		return nil
	}); err != nil {
		t.Fatalf("scan: %v", err)
	}
	st, err := engine.Replay(jdir, engine.AllRuns)
	if err != nil || len(st.Runs) != 1 {
		t.Fatalf("replay: %v, %d runs", err, len(st.Runs))
	}
	var run *engine.Run
	for _, r := range st.Runs {
		run = r
	}
	ran := map[string]int{}
	pids := map[string]string{} // "task attempt" -> pid
	for _, l := range chainLedger(t, dir) {
		key := l.run + " " + l.task + " " + l.att
		if l.end {
			continue
		}
		ran[key]++
		pids[l.task+" "+l.att] = l.pid
		if ran[key] > 1 {
			t.Errorf("attempt %q ran twice", key)
		}
		if !started[key] {
			t.Errorf("attempt %q ran but the journal never started it", key)
		}
		if s := run.Tasks[l.task]; s != nil && s.Status == engine.Skipped {
			t.Errorf("task %s ran (attempt %s) but is journaled skipped", l.task, l.att)
		}
	}
	for key := range started {
		if ran[key] == 0 && !killed {
			t.Errorf("attempt %q journaled started but never ran", key)
		}
	}
	chainCheckOutputs(t, dir, run, steps, pids)
	chainCheckLeft(t, dir, home, run.ID, logs, killed)
}

// chainCheckOutputs: the last attempt of every task that ran got exactly
// the outputs of its upstream's successful attempt, in its environment.
func chainCheckOutputs(t *testing.T, dir string, run *engine.Run, steps []chainStep, pids map[string]string) {
	t.Helper()
	for i, s := range steps {
		ts := run.Tasks[s.name]
		if ts == nil || ts.Attempt == 0 || ts.Status == engine.Skipped {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("env.%s.%d", s.name, ts.Attempt)))
		if err != nil {
			continue // killed before it wrote it, or timed out first: nothing to compare
		}
		var want []string
		if i > 0 {
			up := steps[i-1]
			us := run.Tasks[up.name]
			if up.out && us != nil && us.Status == engine.Success {
				a := fmt.Sprint(us.Attempt)
				want = []string{
					workflow.OutputVar(up.name, "v") + "=" + up.name + "-" + a + "-" + pids[up.name+" "+a],
					workflow.OutputVar(up.name, "w") + "=a b=c",
				}
				if j := us.Outputs(); j["v"] != up.name+"-"+a+"-"+pids[up.name+" "+a] {
					t.Errorf("journal says %s passed v=%q, its attempt %s wrote pid %s", up.name, j["v"], a, pids[up.name+" "+a])
				}
			}
		}
		sort.Strings(want)
		got := strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(b)), " ", "\x00"))
		for k := range got {
			got[k] = strings.ReplaceAll(got[k], "\x00", " ")
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("task %s attempt %d got outputs %q, want %q", s.name, ts.Attempt, got, want)
		}
	}
}

// chainCheckLeft: no process of the trial left, no shell at its gate, and
// every log file is of an attempt the journal started.
func chainCheckLeft(t *testing.T, dir, home, run string, logs map[string]bool, killed bool) {
	t.Helper()
	var left []int
	for range 500 {
		if left = append(processesWithEnv("T="+dir), gatedShells(dir)...); len(left) == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("processes of run %s left: %v", run, left)
	}
	m, _ := filepath.Glob(filepath.Join(home, "logs", "chain", "*", "*.log"))
	for _, p := range m {
		rel := filepath.Join(filepath.Base(filepath.Dir(p)), filepath.Base(p))
		if logs[rel] {
			continue
		}
		if fi, err := os.Stat(p); err == nil && killed && fi.Size() == 0 {
			continue
		}
		t.Errorf("the log directory holds %s, of no attempt the journal started", rel)
	}
}

// sampleGated polls the trial's shells waiting at their gate until c
// exits: the most seen at once, and in how many samples any waited.
func sampleGated(c *child, dir string) (most, seen int) {
	for i := 0; !c.exited() && i < 60000; i++ {
		n := len(gatedShells(dir))
		most = max(most, n)
		if n > 0 {
			seen++
		}
		time.Sleep(2 * time.Millisecond)
	}
	return most, seen
}

// TestSuccessorChainLedger runs chains of 20 to 50 short steps with mixed
// features and checks each against its journal (chainCheck).
// PICOFLOW_CHAIN_TRIALS sets the number of
// trials (default 4), PICOFLOW_CHAIN_SEED the seed.
func TestSuccessorChainLedger(t *testing.T) {
	bin := testBinary(t)
	trials, seed, rnd := tortureRand(t, "PICOFLOW_CHAIN", "TRIALS", 4, "TestSuccessorChainLedger", 0x5bd1e9955bd1e995)
	spares := 0
	for trial := range trials {
		dir := t.TempDir()
		home := filepath.Join(dir, "home")
		file, steps := chainWorkflow(t, dir, rnd, 20+rnd.IntN(31), "0.0$(($$ % 3))", false)
		c := start(t, bin, "run", "--home", home, file)
		_, seen := sampleGated(c, dir)
		spares += seen
		if code := c.wait(t); code != ExitOK && code != ExitFailed {
			t.Fatalf("trial %d: exit %d\n%s%s", trial, code, &c.stdout, &c.stderr)
		}
		chainCheck(t, dir, home, steps, false)
		if t.Failed() {
			t.Fatalf("trial %d (seed %d) failed; workflow %s", trial, seed, file)
		}
	}
	if spares == 0 {
		t.Errorf("no shell was ever seen waiting at its gate: the chains had no successor spare")
	}
	t.Logf("seed %d: %d trials, samples with a shell at its gate: %d", seed, trials, spares)
}
