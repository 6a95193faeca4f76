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

// TestSpareTorture runs wide DAGs of short shell tasks (some retried) at
// max_parallel 1 to 3, so that a spare waits at its gate most of the
// time, and hits picoflow while one does: SIGINT once or twice, SIGTERM,
// SIGKILL, `picoflow cancel` (with the grace or --grace 0), or nothing,
// then runs it again until the run ends. Every task appends "S GEN RUN
// TASK ATTEMPT" to a ledger first and "E ..." last. Checked:
//
//   - no two START..END intervals of one picoflow's tasks overlapped
//     beyond max_parallel (the spare never runs in a slot of its own);
//   - no attempt ran twice, and every attempt that ran has its start in
//     the journal (a spare never runs unstarted: not after a stop, not
//     after a cancel marked its task canceled); no start follows a
//     journaled cancel;
//   - a task journaled as succeeded never ran again;
//   - no shell waits at its gate once its picoflow is gone, nothing of
//     the run is left at the end, and the log directory holds no file of
//     an attempt the journal never started, unless a kill -9 left it;
//   - every attempt that did not succeed still has its log (a spare that
//     outlived its freshness, dismissed, removes none but its own).
//
// PICOFLOW_SPARE_TRIALS sets the number of trials (default 8),
// PICOFLOW_SPARE_SEED the seed.
func TestSpareTorture(t *testing.T) {
	bin := testBinary(t)
	trials, seed, rnd := tortureRand(t, "PICOFLOW_SPARE", "TRIALS", 8, "TestSpareTorture", 0x2545f4914f6cdd1d)
	hits := map[string]int{}
	for trial := range trials {
		s := newSpareTrial(t, bin, trial, rnd)
		if !s.run(rnd, hits) || !s.check() {
			break
		}
	}
	t.Logf("seed %d: %d trials, hits %v", seed, trials, hits)
}

type spareTrial struct {
	t                 *testing.T
	bin               string
	trial, mp         int
	dir, home, file   string
	tasks             []string
	gens              int
	killed            bool              // a kill -9 may leave a spare's log
	succeededBy       []map[string]bool // per picoflow: "run task" journaled succeeded when it ended
	finished, success bool
}

func newSpareTrial(t *testing.T, bin string, trial int, rnd *rand.Rand) *spareTrial {
	dir := t.TempDir()
	s := &spareTrial{t: t, bin: bin, trial: trial, mp: 1 + rnd.IntN(3), dir: dir, home: filepath.Join(dir, "home")}
	var specs []spec
	n := 10 + rnd.IntN(10)
	for i := range n {
		name := fmt.Sprintf("t%02d", i)
		nap := "0.0$(($$ % 4))"
		if rnd.IntN(8) == 0 { // the spare behind it outlives its freshness (engine spareFresh)
			nap = "0.25"
		}
		body := `echo "S $SPARE_GEN $PICOFLOW_RUN_ID $PICOFLOW_TASK $PICOFLOW_ATTEMPT" >> "$T/ledger"; sleep ` + nap + `; `
		extra := ""
		if rnd.IntN(4) == 0 {
			extra = "retry: 2"
			body += `r=0; [ "$PICOFLOW_ATTEMPT" -gt 1 ] || r=3; `
		} else {
			body += `r=0; `
		}
		body += `echo "E $SPARE_GEN $PICOFLOW_RUN_ID $PICOFLOW_TASK $PICOFLOW_ATTEMPT" >> "$T/ledger"; exit $r`
		var deps []string
		if i >= n/2 && rnd.IntN(3) == 0 { // some depend on an earlier one
			deps = []string{s.tasks[rnd.IntN(n/2)]}
		}
		specs = append(specs, spec{name: name, cmd: body, deps: deps, extra: extra})
		s.tasks = append(s.tasks, name)
	}
	cfg := fmt.Sprintf("{max_parallel: %d, backoff: {initial: 1ms, max: 1ms}}", s.mp)
	s.file = writeWorkflow(t, dir, "spare", cfg, specs...)
	return s
}

func (s *spareTrial) fail(format string, args ...any) bool {
	s.t.Errorf("trial %d (max_parallel %d): %s", s.trial, s.mp, fmt.Sprintf(format, args...))
	return false
}

var spareActions = []string{"none", "sigint", "sigint2", "sigterm", "sigkill", "cancel", "cancel0"}

// run runs picoflow and hits it (up to three times) while a spare waits,
// then lets it finish.
func (s *spareTrial) run(rnd *rand.Rand, hits map[string]int) bool {
	for ; !s.finished; s.gens++ {
		if s.gens > 6 {
			return s.fail("the run never ended")
		}
		action := "none"
		if s.gens < 3 {
			action = spareActions[rnd.IntN(len(spareActions))]
		}
		c := startEnv(s.t, s.bin, []string{"SPARE_GEN=" + strconv.Itoa(s.gens)}, "run", "--home", s.home, s.file)
		if action != "none" && s.awaitSpare(c, rnd.IntN(8)) {
			hits[action]++
			if !s.hit(c, action) {
				return false
			}
		}
		code := c.wait(s.t)
		if !s.snapshot() {
			return false
		}
		switch {
		case code == ExitOK && s.success, code == ExitFailed && s.finished && !s.success,
			code == ExitInterrupted, code == ExitForced, code == -1 && action == "sigkill":
		default:
			return s.fail("picoflow %d (%s) exited %d\n--- stdout\n%s--- stderr\n%s", s.gens, action, code, &c.stdout, &c.stderr)
		}
		if !s.gatedGone(action) {
			return false
		}
	}
	return true
}

// awaitSpare waits until the ledger has grown by at least k lines and a
// shell waits at its gate; false if picoflow ended first.
func (s *spareTrial) awaitSpare(c *child, k int) bool {
	target := len(readLedger(s.t, s.dir))/5 + k
	for i := 0; !c.exited(); i++ {
		if i == 20000 {
			s.fail("no spare seen in 20 s")
			return false
		}
		if len(readLedger(s.t, s.dir))/5 >= target && len(gatedShells(s.dir)) > 0 {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return false
}

func (s *spareTrial) hit(c *child, action string) bool {
	p := c.cmd.Process
	sig := func(ss ...syscall.Signal) bool {
		for _, x := range ss {
			if err := p.Signal(x); err != nil && !errors.Is(err, os.ErrProcessDone) {
				return s.fail("signal: %v", err)
			}
		}
		return true
	}
	switch action {
	case "sigint":
		return sig(syscall.SIGINT)
	case "sigint2":
		return sig(syscall.SIGINT, syscall.SIGINT)
	case "sigterm":
		return sig(syscall.SIGTERM)
	case "sigkill":
		s.killed = true
		return sig(syscall.SIGKILL)
	}
	runs, _ := os.ReadDir(filepath.Join(s.home, "logs", "spare"))
	if len(runs) == 0 {
		return s.fail("no run directory to cancel")
	}
	args := []string{"cancel", "--home", s.home, runs[len(runs)-1].Name()}
	if action == "cancel0" {
		args = append(args, "--grace", "0")
	}
	cc := start(s.t, s.bin, args...)
	if code := cc.wait(s.t); code != ExitOK && code != 10 { // 10: it finished meanwhile
		return s.fail("cancel exited %d: %s", code, &cc.stderr)
	}
	return true
}

// gatedGone waits (ten seconds at most) until no shell waits at its gate,
// and, unless picoflow was killed (its running tasks go on), until no
// process of the trial is left.
func (s *spareTrial) gatedGone(action string) bool {
	for range 1000 {
		left := gatedShells(s.dir)
		if action != "sigkill" {
			left = append(left, processesWithEnv("T="+s.dir)...)
		}
		if len(left) == 0 {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s.fail("processes outlive picoflow %d (%s): gated %v, all %v", s.gens, action, gatedShells(s.dir), processesWithEnv("T="+s.dir))
}

// snapshot records what the journal holds now.
func (s *spareTrial) snapshot() bool {
	succ := map[string]bool{}
	err := journal.Scan(filepath.Join(s.home, "journal", "spare"), journal.ScanOptions{}, func(e *journal.Event) error {
		switch {
		case e.Type == journal.TaskFinished && e.Status == journal.StatusSuccess:
			succ[e.Run+" "+e.Task] = true
		case e.Type == journal.RunFinished:
			s.finished, s.success = true, e.Status == journal.StatusSuccess
		}
		return nil
	})
	if err != nil {
		return s.fail("scan the journal: %v", err)
	}
	s.succeededBy = append(s.succeededBy, succ)
	return true
}

// check reads the ledger against the journal and the log directory.
func (s *spareTrial) check() bool {
	started := map[string]bool{} // "run task attempt"
	logs := map[string]bool{}    // "run/file"
	kept := map[string]string{}  // "run task attempt" -> log path, of attempts that did not succeed
	canceled := map[string]bool{}
	err := journal.Scan(filepath.Join(s.home, "journal", "spare"), journal.ScanOptions{}, func(e *journal.Event) error {
		key := fmt.Sprintf("%s %s %d", e.Run, e.Task, e.Attempt)
		switch {
		case e.Type == journal.RunCanceled:
			canceled[e.Run] = true
		case e.Type == journal.TaskStarted && canceled[e.Run]: // no handlers here
			s.fail("attempt %q started after its run's cancel was journaled", key)
		}
		switch {
		case e.Type == journal.TaskStarted:
			started[key] = true
			logs[filepath.Join(e.Run, filepath.Base(e.LogPath))] = true
			kept[key] = e.LogPath
		case e.Type == journal.TaskFinished && e.Status == journal.StatusSuccess:
			delete(kept, key)
		}
		return nil
	})
	if err != nil {
		return s.fail("scan the journal: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(s.dir, "ledger"))
	if err != nil && !os.IsNotExist(err) {
		s.t.Fatal(err)
	}
	open := map[int]int{}
	peak := map[int]int{}
	ran := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		if len(f) != 5 {
			if l != "" {
				s.fail("torn ledger line %q", l)
			}
			continue
		}
		gen, _ := strconv.Atoi(f[1])
		key := strings.Join(f[2:], " ")
		if f[0] == "E" {
			open[gen]--
			continue
		}
		open[gen]++
		peak[gen] = max(peak[gen], open[gen])
		if open[gen] > s.mp {
			s.fail("picoflow %d ran %d tasks at once (at %q), max_parallel %d", gen, open[gen], l, s.mp)
		}
		if ran[key] {
			s.fail("attempt %q ran twice", key)
		}
		ran[key] = true
		if !started[key] {
			s.fail("attempt %q ran, picoflow %d, but the journal never started it", key, gen)
		}
		for k := range gen {
			if s.succeededBy[k][f[2]+" "+f[3]] {
				s.fail("%s ran (picoflow %d) after picoflow %d had journaled it succeeded", f[3], gen, k)
			}
		}
	}
	s.checkLogs(logs)
	for key, p := range kept { // a failed or interrupted attempt keeps its log
		if _, err := os.Stat(p); err != nil && !s.killed {
			s.fail("attempt %q did not succeed and its log is gone: %v", key, err)
		}
	}
	return !s.t.Failed()
}

// checkLogs: every file of the log directories belongs to a journaled
// start, but the log of a spare a kill -9 left.
func (s *spareTrial) checkLogs(logs map[string]bool) {
	m, _ := filepath.Glob(filepath.Join(s.home, "logs", "spare", "*", "*"))
	for _, p := range m {
		rel := filepath.Join(filepath.Base(filepath.Dir(p)), filepath.Base(p))
		if logs[rel] {
			continue
		}
		if fi, err := os.Stat(p); err == nil && s.killed && fi.Size() == 0 && strings.HasSuffix(p, ".log") {
			continue
		}
		s.fail("the log directory holds %s, of no attempt the journal started", rel)
	}
	if left := processesWithEnv("T=" + s.dir); len(left) > 0 && !s.killed {
		s.fail("processes of the trial left: %v", left)
	}
}
