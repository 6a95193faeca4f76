package cli

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/journal"
)

// testTorture kills picoflow with SIGKILL at random moments of a run and
// runs it again until it finishes, many times over. The moments are drawn
// from a seed (PICOFLOW_TORTURE_SEED; printed on failure): picoflow is
// killed when the ledger its tasks append to reaches a random number of
// lines. After each trial:
//
//   - every task ran at least once;
//   - a task the journal recorded as succeeded before a kill never ran
//     again after it (and those of the first kill ran exactly once);
//   - the journal says every task succeeded once and the run succeeded;
//   - no process of the run is left.
//
// PICOFLOW_TORTURE_TRIALS sets the number of trials (default 20).
func testTorture(t *testing.T, bin string) {
	trials, seed, rnd := tortureRand(t, "PICOFLOW_TORTURE", "TRIALS", 20, "TestBinary/torture", 0x9e3779b97f4a7c15)
	kills, resumes := 0, 0
	for trial := range trials {
		if !tortureTrial(t, bin, trial, rnd, &kills, &resumes) {
			break
		}
	}
	t.Logf("seed %d: %d trials, %d kill -9, %d runs resumed", seed, trials, kills, resumes)
}

// tortureWorkflow writes a DAG of 32 tasks in four layers of eight, each
// task after one to three random tasks of the layers above.
func tortureWorkflow(t *testing.T, dir string, rnd *rand.Rand) (string, []string) {
	var specs []spec
	var names []string
	const layers, width = 4, 8
	for l := range layers {
		for i := range width {
			name := fmt.Sprintf("l%d-t%d", l, i)
			s := spec{name: name, cmd: fmt.Sprintf("sleep 0.0%d; %s", 1+rnd.IntN(4), ledger(name))}
			if l > 0 {
				deps := map[string]bool{}
				for range 1 + rnd.IntN(3) {
					deps[names[rnd.IntN(l*width)]] = true
				}
				deps[names[(l-1)*width+rnd.IntN(width)]] = true // keep the layers deep
				for d := range deps {
					s.deps = append(s.deps, d)
				}
				sort.Strings(s.deps)
			}
			specs = append(specs, s)
			names = append(names, name)
		}
	}
	return writeWorkflow(t, dir, "torture", "{max_parallel: 4}", specs...), names
}

// killPoint is what the journal and the ledger held when picoflow was killed.
type killPoint struct {
	lines     int             // ledger lines then
	succeeded map[string]bool // tasks journaled as succeeded
}

// tortureRun is one trial of testTorture: a run of the workflow in file,
// with home under dir, killed and run again.
type tortureRun struct {
	t                     *testing.T
	bin                   string
	trial                 int
	dir, home, file, jdir string
	names                 []string // the workflow's tasks
}

func tortureTrial(t *testing.T, bin string, trial int, rnd *rand.Rand, kills, resumes *int) bool {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file, names := tortureWorkflow(t, dir, rnd)
	r := &tortureRun{t: t, bin: bin, trial: trial, dir: dir, home: home, file: file,
		jdir: filepath.Join(home, "journal", "torture"), names: names}
	points, ok := r.killUntilDone(rnd, kills, resumes)
	if !ok {
		return false
	}
	r.checkLedger(points)
	return r.checkJournal()
}

// fail reports a failure of the trial and returns false.
func (r *tortureRun) fail(format string, args ...any) bool {
	r.t.Errorf("trial %d: %s", r.trial, fmt.Sprintf(format, args...))
	return false
}

// killUntilDone runs picoflow, kills it with SIGKILL one to three times
// when the ledger reaches a random length, and runs it again until it
// finishes. It returns what the ledger and journal held at each kill.
func (r *tortureRun) killUntilDone(rnd *rand.Rand, kills, resumes *int) ([]killPoint, bool) {
	t, dir := r.t, r.dir
	var points []killPoint
	nkills := 1 + rnd.IntN(3)
	for attempt := 0; ; attempt++ {
		if attempt > 20 {
			return nil, r.fail("picoflow never finished")
		}
		target := -1 // run to the end
		if len(points) < nkills {
			target = len(readLedger(t, dir)) + 1 + rnd.IntN(12)
		}
		c := start(t, r.bin, "run", "--home", r.home, r.file)
		// Poll the ledger: the kill comes as soon as it has target lines.
		for i := 0; !c.exited() && (target < 0 || len(readLedger(t, dir)) < target); i++ {
			if i == 30000 {
				return nil, r.fail("picoflow hangs\n--- stdout\n%s--- stderr\n%s", &c.stdout, &c.stderr)
			}
			time.Sleep(time.Millisecond)
		}
		if c.exited() {
			if code := c.wait(t); code != ExitOK {
				return nil, r.fail("picoflow exited %d\n--- stdout\n%s--- stderr\n%s", code, &c.stdout, &c.stderr)
			}
			if strings.Contains(c.stdout.String(), "resuming run") {
				*resumes++
			}
			break
		}
		if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			return nil, r.fail("kill: %v", err)
		}
		c.wait(t)
		*kills++
		p, finished, err := r.killPoint()
		if err != nil {
			return nil, r.fail("scan the journal after kill %d: %v", len(points)+1, err)
		}
		points = append(points, p)
		if finished {
			break // killed after the run ended: a new run would start over
		}
	}
	return points, true
}

// killPoint reads the ledger and the journal after a kill; finished says
// the journal holds the run's successful end.
func (r *tortureRun) killPoint() (p killPoint, finished bool, err error) {
	p = killPoint{lines: len(readLedger(r.t, r.dir)), succeeded: map[string]bool{}}
	err = journal.Scan(r.jdir, journal.ScanOptions{}, func(e *journal.Event) error {
		switch {
		case e.Type == journal.TaskFinished && e.Status == journal.StatusSuccess:
			p.succeeded[e.Task] = true
		case e.Type == journal.RunFinished:
			finished = e.Status == journal.StatusSuccess
		}
		return nil
	})
	return p, finished, err
}

// checkLedger checks that every task ran, and that none journaled as
// succeeded before a kill ran again after it.
func (r *tortureRun) checkLedger(points []killPoint) {
	lines := readLedger(r.t, r.dir)
	ran := count(lines)
	for _, n := range r.names {
		if ran[n] < 1 {
			r.fail("task %s never ran", n)
		}
	}
	for k, p := range points {
		again := count(lines[p.lines:])
		for n := range p.succeeded {
			if again[n] > 0 {
				r.fail("task %s succeeded before kill %d and ran %d more time(s) after it", n, k+1, again[n])
			}
			if k == 0 && ran[n] != 1 {
				r.fail("task %s succeeded before the first kill and ran %d times", n, ran[n])
			}
		}
	}
}

// checkJournal checks that the journal holds one successful run, every
// task journaled as succeeded once, and that no process of it is left. It
// returns whether the trial (so far) passed.
func (r *tortureRun) checkJournal() bool {
	st, err := engine.Replay(r.jdir, engine.AllRuns)
	if err != nil {
		return r.fail("replay: %v", err)
	}
	if len(st.Runs) != 1 {
		return r.fail("%d runs in the journal, want 1", len(st.Runs))
	}
	succeeded := map[string]int{}
	if err := journal.Scan(r.jdir, journal.ScanOptions{Strict: true}, func(e *journal.Event) error {
		if e.Type == journal.TaskFinished && e.Status == journal.StatusSuccess {
			succeeded[e.Task]++
		}
		return nil
	}); err != nil {
		return r.fail("scan: %v", err)
	}
	for _, run := range st.Runs {
		if run.Status != engine.RunSuccess {
			r.fail("run %s is %s", run.ID, run.Status)
		}
		for _, n := range r.names {
			if ts := run.Tasks[n]; ts == nil || ts.Status != engine.Success || succeeded[n] != 1 {
				r.fail("task %s: %v, journaled as succeeded %d times", n, ts, succeeded[n])
			}
		}
		if pids := processesOf(run.ID); len(pids) > 0 {
			r.fail("processes of run %s left: %v", run.ID, pids)
		}
	}
	return !r.t.Failed()
}

func count(words []string) map[string]int {
	m := map[string]int{}
	for _, w := range words {
		m[w]++
	}
	return m
}

// processesOf returns the live processes whose environment carries the run
// id (a zombie's environment is empty: it is not counted).
func processesOf(run string) []int { return processesWithEnv("PICOFLOW_RUN_ID=" + run) }

// processesWithEnv returns the live processes with the environment
// variable kv ("KEY=VALUE").
func processesWithEnv(kv string) []int {
	ents, _ := os.ReadDir("/proc")
	marker := []byte(kv + "\x00")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err == nil && bytes.Contains(env, marker) {
			pids = append(pids, pid)
		}
	}
	return pids
}
