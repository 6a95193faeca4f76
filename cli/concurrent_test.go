package cli

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// testConcurrentWorkflows starts four different workflows at once, as four
// separate `picoflow run` processes on one home, round after round, and
// kills random ones with SIGKILL when their ledger (outside the home)
// reaches a random length; a killed workflow is run again until it
// finishes (a resume). Then:
//
//   - no process was refused with exit 5 (they run different workflows)
//     and every run exited 0 in the end;
//   - every run of every workflow succeeded, and history has them all;
//   - replay of each run agrees with history on the run's and every task's
//     status.
//
// PICOFLOW_CONCURRENT_ROUNDS sets the number of rounds (default 50);
// PICOFLOW_CONCURRENT_SEED the seed (printed on failure).
func testConcurrentWorkflows(t *testing.T, bin string) {
	rounds, seed, rnd := tortureRand(t, "PICOFLOW_CONCURRENT", "ROUNDS", 50, "TestBinary/concurrent", 0x51ed27)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	const n = 4
	files := make([]string, n)
	for w := range files {
		name := fmt.Sprintf("w%d", w)
		step := func(task string) string {
			return fmt.Sprintf(`sleep 0.0%d; echo %s >> "$T/ledger-%s"`, 1+rnd.IntN(3), task, name)
		}
		files[w] = writeWorkflow(t, dir, name, "{max_parallel: 2}",
			spec{name: "a", cmd: step("a")},
			spec{name: "b", cmd: step("b"), deps: []string{"a"}},
			spec{name: "c", cmd: step("c"), deps: []string{"a"}},
			spec{name: "d", cmd: step("d"), deps: []string{"b", "c"}})
	}
	start := time.Now()
	kills, resumes, late := 0, 0, 0
	for round := range rounds {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for w := range n {
			target := -1 // no kill
			if rnd.IntN(3) == 0 {
				target = 1 + rnd.IntN(3) // ledger lines before the kill: the last task (d) has not finished
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				k, r, l := concurrentRun(t, bin, home, files[w], filepath.Join(dir, fmt.Sprintf("ledger-w%d", w)), round, target)
				mu.Lock()
				kills, resumes, late = kills+k, resumes+r, late+l
				mu.Unlock()
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
	}
	t.Logf("seed %d: %d rounds of %d workflows in %s, %d kill -9 (%d after the run had finished), %d runs resumed",
		seed, rounds, n, time.Since(start).Round(time.Millisecond), kills, late, resumes)
	if kills-late != resumes {
		t.Errorf("%d runs killed before they finished, %d resumed", kills-late, resumes)
	}
	checkHistoryReplay(t, bin, home, n*rounds+late) // a kill after the end: the next run is a new one
}

// concurrentRun runs one workflow to its end, killing the first process
// once the ledger grew by target lines (target < 0: no kill). It returns
// the kills, the resumes, and the kills that came after the run had
// finished (the test was slow to send it: the next run is a new one).
func concurrentRun(t *testing.T, bin, home, file, ledgerPath string, round, target int) (kills, resumes, late int) {
	lines := func() int {
		b, _ := os.ReadFile(ledgerPath)
		return strings.Count(string(b), "\n")
	}
	for attempt := 0; attempt < 10; attempt++ {
		base := lines()
		c := start(t, bin, "run", "--home", home, file)
		if attempt == 0 && target > 0 {
			for i := 0; !c.exited() && lines() < base+target; i++ {
				if i == 30000 {
					t.Errorf("round %d: %s hangs", round, file)
					return
				}
				time.Sleep(time.Millisecond)
			}
			if !c.exited() {
				if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Error(err)
				}
				c.wait(t)
				kills++
				if lastRunFinished(t, home, strings.TrimSuffix(filepath.Base(file), ".yaml")) {
					late++
				}
				continue
			}
		}
		code := c.wait(t)
		if strings.Contains(c.stdout.String(), "resuming run") {
			resumes++
		}
		switch code {
		case ExitOK:
			return
		case ExitLocked:
			t.Errorf("round %d: %s refused with exit 5 beside other workflows\n%s", round, file, &c.stderr)
			return
		default:
			t.Errorf("round %d: %s exited %d\n--- stdout\n%s--- stderr\n%s", round, file, code, &c.stdout, &c.stderr)
			return
		}
	}
	t.Errorf("round %d: %s never finished", round, file)
	return
}

// lastRunFinished reports whether the newest run in a workflow's journal
// has finished.
func lastRunFinished(t *testing.T, home, wf string) bool {
	finished := false
	err := journal.Scan(filepath.Join(home, "journal", wf), journal.ScanOptions{}, func(e *journal.Event) error {
		switch e.Type {
		case journal.RunStarted:
			finished = false
		case journal.RunFinished:
			finished = true
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	return finished
}

// checkHistoryReplay checks that history holds want successful runs and
// that replay of each agrees with it.
func checkHistoryReplay(t *testing.T, bin, home string, want int) {
	c := start(t, bin, "history", "--home", home, "--json", "--limit", "0")
	if code := c.wait(t); code != 0 {
		t.Fatalf("history: exit %d\n%s", code, &c.stderr)
	}
	var runs []runJSON
	if err := json.Unmarshal([]byte(c.stdout.String()), &runs); err != nil {
		t.Fatal(err)
	}
	if len(runs) != want {
		t.Errorf("history has %d runs, want %d", len(runs), want)
	}
	for _, r := range runs {
		if r.Status != "success" {
			t.Errorf("run %s of %s is %s", r.RunID, r.Workflow, r.Status)
		}
		rc := start(t, bin, "replay", "--home", home, "--json", r.RunID)
		if code := rc.wait(t); code != 0 {
			t.Fatalf("replay %s: exit %d\n%s", r.RunID, code, &rc.stderr)
		}
		out := strings.Split(strings.TrimSpace(rc.stdout.String()), "\n")
		var final replayFinal
		if err := json.Unmarshal([]byte(out[len(out)-1]), &final); err != nil {
			t.Fatal(err)
		}
		if final.Status != r.Status || final.Workflow != r.Workflow || len(final.Tasks) != len(r.Tasks) {
			t.Errorf("run %s: replay says %s of %s with %d tasks, history %s of %s with %d",
				r.RunID, final.Status, final.Workflow, len(final.Tasks), r.Status, r.Workflow, len(r.Tasks))
			continue
		}
		for i, task := range final.Tasks {
			if h := r.Tasks[i]; h.Name != task.Name || h.Status != task.Status {
				t.Errorf("run %s: replay has task %s %s, history %s %s", r.RunID, task.Name, task.Status, h.Name, h.Status)
			}
		}
	}
}

// tortureRand returns how many trials (or rounds: count names the
// variable) a randomised torture runs, PREFIX_COUNT or def, its seed,
// PREFIX_SEED or the clock's, and the random source it seeds on stream; a
// failing test logs how to run it again (`go test ./cli -run RUN`).
func tortureRand(t *testing.T, prefix, count string, def int, run string, stream uint64) (int, uint64, *rand.Rand) {
	n := envInt(t, prefix+"_"+count, def)
	seed := envSeed(t, prefix+"_SEED")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("reproduce with %s_SEED=%d %s_%s=%d go test ./cli -run %s", prefix, seed, prefix, count, n, run)
		}
	})
	return n, seed, rand.New(rand.NewPCG(seed, stream))
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q", name, v)
	}
	return n
}

// envSeed returns the seed named by the environment variable name, or the
// clock's when it is unset.
func envSeed(t *testing.T, name string) uint64 {
	v := os.Getenv(name)
	if v == "" {
		return uint64(time.Now().UnixNano())
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q", name, v)
	}
	return n
}
