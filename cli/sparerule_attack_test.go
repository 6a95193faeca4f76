package cli

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// TestSpareRuleAttack attacks the spare rule (engine/spare.go coreUse: a
// full run makes its spare only while the running tasks leave half a core
// free, judged from the CPU time the shells report) from outside: mixed
// workflows of CPU-bound busy loops and sleepers at max_parallel 1 to 4,
// so that the rule flips while the run goes, some tasks idempotent: false
// and some retried, hit once or twice at random moments with kill -9,
// SIGINT or two SIGINTs, and run again (in-doubt tasks resolved as
// failed) until the run ends. Every task appends "S GEN TASK ATTEMPT" to
// a ledger first and "E GEN TASK ATTEMPT" last. Checked:
//
//   - no task the journal reported succeeded when a picoflow ended ran
//     after that; no non-idempotent task ran twice; no attempt ran twice,
//     and every attempt that ran was journaled started;
//   - no picoflow ran more than max_parallel tasks at once;
//   - no shell waits at its gate once its picoflow is gone, and after a
//     graceful stop nothing of the trial is left.
//
// PICOFLOW_SPARERULE_TRIALS sets the number of trials (default 6),
// PICOFLOW_SPARERULE_SEED the seed.
func TestSpareRuleAttack(t *testing.T) {
	bin := testBinary(t)
	trials, seed, rnd := tortureRand(t, "PICOFLOW_SPARERULE", "TRIALS", 6, "TestSpareRuleAttack", 0xd1b54a32d192ed03)
	hits := map[string]int{}
	for trial := range trials {
		s := newRuleTrial(t, bin, trial, rnd)
		s.run(rnd, hits)
		s.check()
		if t.Failed() {
			break
		}
	}
	t.Logf("seed %d: %d trials, hits %v", seed, trials, hits)
}

type ruleTrial struct {
	t                *testing.T
	bin              string
	trial, mp        int
	dir, home, file  string
	jdir             string
	nonIdem          map[string]bool
	succeeded        []map[string]bool // per hit picoflow: tasks journaled succeeded when it ended
	at               []int             // per hit picoflow: ledger lines when it ended
	gens, inDoubt    int
	finished, killed bool
}

func newRuleTrial(t *testing.T, bin string, trial int, rnd *rand.Rand) *ruleTrial {
	dir := t.TempDir()
	s := &ruleTrial{t: t, bin: bin, trial: trial, mp: 1 + rnd.IntN(4), dir: dir, home: filepath.Join(dir, "home"),
		nonIdem: map[string]bool{}}
	s.jdir = filepath.Join(s.home, "journal", "rule")
	var specs []spec
	var names []string
	n := 10 + rnd.IntN(10)
	for i := range n {
		name := fmt.Sprintf("r%02d", i)
		work := "sleep 0.0" + strconv.Itoa(1+rnd.IntN(6))
		if rnd.IntN(2) == 0 { // a busy loop of 15 to 120 ms
			work = fmt.Sprintf(`i=0; while [ $i -lt %d ]; do i=$((i+1)); done`, 2500*(1+rnd.IntN(8)))
		}
		body := `echo "S $RULE_GEN $PICOFLOW_TASK $PICOFLOW_ATTEMPT" >> "$T/ledger"; ` + work + `; r=0; `
		var extra []string
		switch rnd.IntN(5) {
		case 0:
			extra = append(extra, "idempotent: false")
			s.nonIdem[name] = true
		case 1:
			extra = append(extra, "retry: 2")
			body += `[ "$PICOFLOW_ATTEMPT" -gt 1 ] || r=3; `
		}
		body += `echo "E $RULE_GEN $PICOFLOW_TASK $PICOFLOW_ATTEMPT" >> "$T/ledger"; exit $r`
		var deps []string
		if i > 2 && rnd.IntN(3) == 0 {
			deps = []string{names[rnd.IntN(i)]}
		}
		specs = append(specs, spec{name: name, cmd: body, deps: deps, extra: strings.Join(extra, "\n")})
		names = append(names, name)
	}
	cfg := fmt.Sprintf("{max_parallel: %d, backoff: {initial: 1ms, max: 1ms}}", s.mp)
	s.file = writeWorkflow(t, dir, "rule", cfg, specs...)
	return s
}

func (s *ruleTrial) fail(format string, args ...any) {
	s.t.Helper()
	s.t.Errorf("trial %d (max_parallel %d): %s", s.trial, s.mp, fmt.Sprintf(format, args...))
}

var ruleActions = []string{"sigkill", "sigkill", "sigint", "sigint2"}

// run runs picoflow, hits the first one or two at a random ledger line,
// and runs it again until the run ends.
func (s *ruleTrial) run(rnd *rand.Rand, hits map[string]int) {
	nhits := 1 + rnd.IntN(2)
	for ; s.gens < 12; s.gens++ {
		action := "none"
		target := 0
		if s.gens < nhits {
			action = ruleActions[rnd.IntN(len(ruleActions))]
			target = 1 + rnd.IntN(12)
		}
		c := startEnv(s.t, s.bin, []string{"RULE_GEN=" + strconv.Itoa(s.gens)}, "run", "--home", s.home, s.file)
		if action != "none" && s.awaitLines(c, target) {
			hits[action]++
			s.hit(c, action)
		}
		code := c.wait(s.t)
		s.snapshot()
		chainGatedGone(s.t, s.dir)
		if action != "sigkill" || code != -1 {
			s.noneLeft()
		}
		switch {
		case code == ExitInDoubt:
			s.inDoubt += chainResolve(s.t, s.bin, s.home, s.jdir)
		case code == ExitOK, code == ExitFailed:
			return
		case code == -1 && s.finished: // killed after the run ended
			return
		case code == ExitInterrupted, code == ExitForced, code == -1 && action == "sigkill":
		default:
			s.fail("picoflow %d (%s) exited %d\n%s%s", s.gens, action, code, &c.stdout, &c.stderr)
			return
		}
	}
	s.fail("the run never ended")
}

// awaitLines waits until the ledger has target lines of this picoflow's
// tasks; false if picoflow ended first. A task an earlier picoflow's kill
// -9 left running still writes to the ledger: its lines do not say that
// this one is running its tasks, and a SIGINT before its signal handling
// is set up would kill it.
func (s *ruleTrial) awaitLines(c *child, target int) bool {
	gen := strconv.Itoa(s.gens)
	for i := 0; !c.exited(); i++ {
		if i == 30000 {
			s.fail("the ledger never reached %d lines of picoflow %s", target, gen)
			return false
		}
		n := 0
		for _, l := range chainLedgerLines(s.dir) {
			if f := strings.Fields(l); len(f) > 1 && f[1] == gen {
				n++
			}
		}
		if n >= target {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return false
}

func chainLedgerLines(dir string) []string { return readLedgerFile(dir, "ledger") }

func (s *ruleTrial) hit(c *child, action string) {
	p := c.cmd.Process
	switch action {
	case "sigkill":
		s.killed = true
		p.Signal(syscall.SIGKILL)
	case "sigint":
		p.Signal(syscall.SIGINT)
	case "sigint2":
		p.Signal(syscall.SIGINT)
		p.Signal(syscall.SIGINT)
	}
}

// noneLeft waits (ten seconds at most) until no process of the trial is
// left: a picoflow that stopped by itself leaves none.
func (s *ruleTrial) noneLeft() {
	for range 1000 {
		if len(processesWithEnv("T="+s.dir)) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.fail("processes outlive picoflow %d: %v", s.gens, processesWithEnv("T="+s.dir))
}

// snapshot records which tasks the journal holds succeeded, and the
// ledger's length, as a picoflow ended.
func (s *ruleTrial) snapshot() {
	// A task killed with its picoflow may still be running: its E comes
	// later, but its S is already there.
	s.at = append(s.at, len(chainLedgerLines(s.dir)))
	succ := map[string]bool{}
	err := journal.Scan(s.jdir, journal.ScanOptions{}, func(e *journal.Event) error {
		switch {
		case e.Type == journal.TaskFinished && e.Status == journal.StatusSuccess:
			succ[e.Task] = true
		case e.Type == journal.RunFinished:
			s.finished = true
		}
		return nil
	})
	if err != nil {
		s.fail("scan the journal: %v", err)
	}
	s.succeeded = append(s.succeeded, succ)
}

// check reads the ledger against the journal.
func (s *ruleTrial) check() {
	started := map[string]bool{} // "task attempt"
	err := journal.Scan(s.jdir, journal.ScanOptions{Strict: true}, func(e *journal.Event) error {
		if e.Type == journal.TaskStarted {
			started[fmt.Sprintf("%s %d", e.Task, e.Attempt)] = true
		}
		return nil
	})
	if err != nil {
		s.fail("scan the journal: %v", err)
	}
	lines := chainLedgerLines(s.dir)
	open, ran, runs := map[string]int{}, map[string]bool{}, map[string]int{}
	for li, l := range lines {
		f := strings.Fields(l)
		if len(f) != 4 {
			s.fail("torn ledger line %q", l)
			continue
		}
		gen, key := f[1], f[2]+" "+f[3]
		if f[0] == "E" {
			open[gen]--
			continue
		}
		if open[gen]++; open[gen] > s.mp {
			s.fail("picoflow %s ran %d tasks at once (at %q)", gen, open[gen], l)
		}
		if ran[key] {
			s.fail("attempt %q ran twice", key)
		}
		ran[key] = true
		if runs[f[2]]++; s.nonIdem[f[2]] && runs[f[2]] > 1 {
			s.fail("non-idempotent task %s ran %d times", f[2], runs[f[2]])
		}
		if !started[key] {
			s.fail("attempt %q ran but the journal never started it", key)
		}
		for k, succ := range s.succeeded {
			if li >= s.at[k] && succ[f[2]] {
				s.fail("%s ran (%q) after picoflow %d ended with it succeeded", f[2], l, k)
			}
		}
	}
}
