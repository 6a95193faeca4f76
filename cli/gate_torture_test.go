package cli

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// testGateLedger attacks the shell gate (a task's shell is started while
// its start is committed and runs the command only once it is) from
// outside: picoflow is killed with SIGKILL at random moments of chains,
// wide DAGs and retried tasks, and run again until the run ends. Every
// task appends "S GEN RUN TASK ATTEMPT" to a ledger first thing and "E ..."
// last; GEN (in picoflow's environment, so in its tasks') numbers the
// picoflow process that started its shell. After each kill the journal
// is read as the dead picoflow left it. Checked:
//
//   - every time a task's code ran, the journal of the picoflow that
//     started it held a start of that attempt when that picoflow died (no
//     code runs before its start is written, whatever moment the kill
//     came);
//   - a task journaled as succeeded before a kill never ran again;
//   - no upstream task ran after a task depending on it had started;
//   - no shell started by a killed picoflow outlives it at its gate, and
//     no process of the run is left at the end.
//
// PICOFLOW_GATE_TRIALS sets the number of trials (default 6),
// PICOFLOW_GATE_SEED the seed.
func testGateLedger(t *testing.T, bin string) {
	trials, seed, rnd := tortureRand(t, "PICOFLOW_GATE", "TRIALS", 6, "TestBinary/gate-ledger", 0x5851f42d4c957f2d)
	kills := 0
	for trial := range trials {
		g := newGateTrial(t, bin, trial, rnd)
		if !g.run(rnd, &kills) || !g.check() {
			break
		}
	}
	t.Logf("seed %d: %d trials, %d kill -9", seed, trials, kills)
}

// gateTrial is one workflow run to its end through kills.
type gateTrial struct {
	t                     *testing.T
	bin                   string
	trial                 int
	dir, home, file, jdir string
	deps                  map[string][]string
	pids                  []int             // the picoflow processes, in order
	starts                []map[string]int  // per picoflow: "run task attempt" -> starts journaled when it ended
	succeeded             []map[string]bool // per picoflow: "run task" journaled as succeeded when it ended
	won                   string            // the run that succeeded
}

// gateShape writes one of three workflows: a chain, a wide fan-out and
// join at max_parallel 4, or a DAG whose tasks fail their first attempt
// at random and are retried.
func gateShape(t *testing.T, dir string, rnd *rand.Rand) (string, map[string][]string) {
	deps := map[string][]string{}
	var specs []spec
	add := func(name, extra string, d ...string) {
		body := `echo "S $GATE_GEN $PICOFLOW_RUN_ID $PICOFLOW_TASK $PICOFLOW_ATTEMPT" >> "$T/ledger"; `
		if strings.Contains(extra, "retry") {
			body += `[ "$PICOFLOW_ATTEMPT" -gt 1 ] || exit 3; `
		}
		body += `echo "E $GATE_GEN $PICOFLOW_RUN_ID $PICOFLOW_TASK $PICOFLOW_ATTEMPT" >> "$T/ledger"`
		specs = append(specs, spec{name: name, cmd: body, deps: d, extra: extra})
		deps[name] = d
	}
	shape := rnd.IntN(3)
	switch shape {
	case 0: // chain
		prev := []string(nil)
		for i := range 24 {
			n := fmt.Sprintf("c%02d", i)
			add(n, "", prev...)
			prev = []string{n}
		}
	case 1: // fan-out and join
		add("root", "")
		var mid []string
		for i := range 16 {
			n := fmt.Sprintf("w%02d", i)
			add(n, "", "root")
			mid = append(mid, n)
		}
		add("join", "", mid...)
	default: // retried tasks in a layered DAG
		var names []string
		for l := range 4 {
			for i := range 4 {
				n := fmt.Sprintf("r%d-%d", l, i)
				var d []string
				if l > 0 {
					d = []string{names[(l-1)*4+rnd.IntN(4)]}
				}
				extra := ""
				if rnd.IntN(2) == 0 {
					extra = "retry: 2"
				}
				add(n, extra, d...)
				names = append(names, n)
			}
		}
	}
	cfg := "{max_parallel: 4, backoff: {initial: 1ms, max: 1ms}}"
	return writeWorkflow(t, dir, "gate", cfg, specs...), deps
}

func newGateTrial(t *testing.T, bin string, trial int, rnd *rand.Rand) *gateTrial {
	dir := t.TempDir()
	file, deps := gateShape(t, dir, rnd)
	home := filepath.Join(dir, "home")
	if rnd.IntN(2) == 0 { // every batch fsynced: a longer commit, shells longer at their gate
		if err := os.MkdirAll(home, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, "config.yaml"), []byte("resources: {sync_window: 0}\n"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return &gateTrial{t: t, bin: bin, trial: trial, dir: dir, home: home, file: file,
		jdir: filepath.Join(home, "journal", "gate"), deps: deps}
}

func (g *gateTrial) fail(format string, args ...any) bool {
	g.t.Errorf("trial %d: %s", g.trial, fmt.Sprintf(format, args...))
	return false
}

// run runs picoflow, kills it one to four times when the ledger reaches a
// random length (plus a random few hundred µs), and runs it again until
// it ends. After each kill it records what the journal holds.
func (g *gateTrial) run(rnd *rand.Rand, kills *int) bool {
	t := g.t
	nkills := 1 + rnd.IntN(4)
	for round := 0; ; round++ {
		if round > 20 {
			return g.fail("picoflow never finished")
		}
		target := -1
		if len(g.pids) < nkills {
			target = len(readLedger(t, g.dir)) + rnd.IntN(10)
		}
		c := startEnv(t, g.bin, []string{"GATE_GEN=" + strconv.Itoa(len(g.pids))}, "run", "--home", g.home, g.file)
		g.pids = append(g.pids, c.cmd.Process.Pid)
		for i := 0; !c.exited() && (target < 0 || len(readLedger(t, g.dir)) < target); i++ {
			if i == 30000 {
				return g.fail("picoflow hangs\n--- stdout\n%s--- stderr\n%s", &c.stdout, &c.stderr)
			}
			time.Sleep(100 * time.Microsecond)
		}
		if !c.exited() {
			time.Sleep(time.Duration(rnd.IntN(400)) * time.Microsecond) // a random moment, not a wait for anything
			err := c.cmd.Process.Signal(syscall.SIGKILL)
			if errors.Is(err, os.ErrProcessDone) { // it ended meanwhile
				if code := c.wait(t); code != ExitOK {
					return g.fail("picoflow exited %d\n--- stdout\n%s--- stderr\n%s", code, &c.stdout, &c.stderr)
				}
				_, ok := g.snapshot()
				return ok
			}
			if err != nil {
				return g.fail("kill: %v", err)
			}
			c.wait(t)
			*kills++
			finished, ok := g.snapshot()
			if !ok {
				return false
			}
			g.gatedGone(c.cmd.Process.Pid)
			if finished {
				return true
			}
			continue
		}
		if code := c.wait(t); code != ExitOK {
			return g.fail("picoflow exited %d\n--- stdout\n%s--- stderr\n%s", code, &c.stdout, &c.stderr)
		}
		_, ok := g.snapshot()
		return ok
	}
}

// snapshot records the starts and successes the journal holds now.
func (g *gateTrial) snapshot() (finished, ok bool) {
	starts, succ := map[string]int{}, map[string]bool{}
	err := journal.Scan(g.jdir, journal.ScanOptions{}, func(e *journal.Event) error {
		switch {
		case e.Type == journal.TaskStarted:
			starts[fmt.Sprintf("%s %s %d", e.Run, e.Task, e.Attempt)]++
		case e.Type == journal.TaskFinished && e.Status == journal.StatusSuccess:
			succ[e.Run+" "+e.Task] = true
		case e.Type == journal.RunFinished:
			finished = true
			if e.Status == journal.StatusSuccess {
				g.won = e.Run
			}
		}
		return nil
	})
	if err != nil {
		return false, g.fail("scan the journal after picoflow %d: %v", len(g.pids), err)
	}
	g.starts = append(g.starts, starts)
	g.succeeded = append(g.succeeded, succ)
	return finished, true
}

// gatedGone waits (ten seconds at most) until no shell of the trial that
// the killed picoflow left is still at its gate: it reads end of file the
// moment its owner is gone.
func (g *gateTrial) gatedGone(pid int) {
	var left []int
	for range 1000 {
		if left = gatedShells(g.dir); len(left) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	g.fail("shells at their gate outlive picoflow %d (killed): %v", pid, left)
}

// gatedShells returns the live shells of the tasks that see dir as $T and
// still hold their gate (fd 3, a pipe): a shell past it has closed it.
func gatedShells(dir string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !strings.Contains("\x00"+string(env), "\x00T="+dir+"\x00") {
			continue
		}
		if l, err := os.Readlink("/proc/" + e.Name() + "/fd/3"); err == nil && strings.HasPrefix(l, "pipe:") {
			out = append(out, p)
		}
	}
	return out
}

// check reads the ledger against what the journal held when each
// picoflow ended.
func (g *gateTrial) check() bool {
	lines := g.ledger()
	ran := make([]map[string]int, len(g.pids)) // per picoflow: "task attempt" -> times run
	for i := range ran {
		ran[i] = map[string]int{}
	}
	startedAt := map[string]int{} // "run task" -> ledger index of its first S
	dependents := map[string][]string{}
	for d, ups := range g.deps {
		for _, u := range ups {
			dependents[u] = append(dependents[u], d)
		}
	}
	for li, l := range lines {
		k := l.gen
		if k < 0 || k >= len(g.pids) {
			return g.fail("ledger line %d %q: started by picoflow %d of %d", li, l.raw, k, len(g.pids))
		}
		if l.kind != "S" {
			continue
		}
		ran[k][l.run+" "+l.task+" "+strconv.Itoa(l.attempt)]++
		for j := range k {
			if g.succeeded[j][l.run+" "+l.task] {
				g.fail("%s ran (attempt %d, picoflow %d) after picoflow %d had journaled it as succeeded", l.task, l.attempt, k+1, j+1)
			}
		}
		if _, ok := startedAt[l.run+" "+l.task]; !ok {
			startedAt[l.run+" "+l.task] = li
		}
		for _, d := range dependents[l.task] {
			if at, ok := startedAt[l.run+" "+d]; ok {
				g.fail("upstream %s ran (ledger line %d) after its dependent %s had started (line %d)", l.task, li, d, at)
			}
		}
	}
	// Every run of an attempt needs a start of it journaled by then: the
	// picoflow that started its shell had written at least as many starts
	// of that attempt, over all picoflows so far, as there were runs of it.
	total := map[string]int{}
	for k := range g.pids {
		for key, n := range ran[k] {
			total[key] += n
			if total[key] > g.starts[k][key] {
				g.fail("%s ran %d time(s) up to picoflow %d (pid %d), whose journal held %d start(s) of it when it ended",
					key, total[key], k+1, g.pids[k], g.starts[k][key])
			}
		}
	}
	g.checkEnd()
	return !g.t.Failed()
}

// checkEnd checks the run's end: every task succeeded and nothing of the
// trial is left running.
func (g *gateTrial) checkEnd() {
	last := g.succeeded[len(g.succeeded)-1]
	if g.won == "" {
		g.fail("no run succeeded")
	}
	for task := range g.deps {
		if !last[g.won+" "+task] {
			g.fail("task %s never succeeded in run %s", task, g.won)
		}
	}
	if left := processesWithEnv("T=" + g.dir); len(left) > 0 {
		g.fail("processes of the trial left: %v", left)
	}
}

type gateLine struct {
	raw, kind, run, task string
	gen, attempt         int
}

func (g *gateTrial) ledger() []gateLine {
	b, err := os.ReadFile(filepath.Join(g.dir, "ledger"))
	if err != nil && !os.IsNotExist(err) {
		g.t.Fatal(err)
	}
	var out []gateLine
	for _, raw := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(raw)
		if len(f) != 5 {
			if raw != "" {
				g.fail("torn ledger line %q", raw)
			}
			continue
		}
		gen, err := strconv.Atoi(f[1])
		if err != nil {
			gen = -1
		}
		att, _ := strconv.Atoi(f[4])
		out = append(out, gateLine{raw: raw, kind: f[0], run: f[2], task: f[3], gen: gen, attempt: att})
	}
	return out
}
