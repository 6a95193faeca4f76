package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picoflow/picoflow/engine"
)

// chainSpecs is a plain chain of n steps, each appending "S RUN TASK
// ATTEMPT PID" to the ledger, running mid, and appending "E ...".
func chainSpecs(n int, mid func(i int) string) []spec {
	var specs []spec
	for i := range n {
		s := spec{name: fmt.Sprintf("s%02d", i),
			cmd: `echo "S $PICOFLOW_RUN_ID $PICOFLOW_TASK $PICOFLOW_ATTEMPT $$" >> "$T/ledger"; ` + mid(i) +
				`; echo "E $PICOFLOW_RUN_ID $PICOFLOW_TASK $PICOFLOW_ATTEMPT $$" >> "$T/ledger"`}
		if i > 0 {
			s.deps = []string{fmt.Sprintf("s%02d", i-1)}
		}
		specs = append(specs, s)
	}
	return specs
}

// chainRanOnce checks that each of the n steps started once and ended,
// in chain order, and that none ran in one of the shells in not.
func chainRanOnce(t *testing.T, dir string, n int, not map[int]bool) {
	t.Helper()
	var got []string
	for _, l := range chainLedger(t, dir) {
		pid, _ := strconv.Atoi(l.pid)
		if not[pid] {
			t.Errorf("step %s ran in shell %d, which was let go", l.task, pid)
		}
		got = append(got, map[bool]string{false: "S", true: "E"}[l.end]+l.task)
	}
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("Ss%02d", i), fmt.Sprintf("Es%02d", i))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("ledger %v, want %v", got, want)
	}
}

// TestSuccessorLongSteps: chains whose steps take 300 ms, longer than a
// spare stays fresh: the spare made while the first step ran is let go
// (its shell never runs a step), the run makes no other, and no more than
// one shell besides the step's own ever waits at its gate. That holds
// whatever lets the first spare go: its staleness (quiet steps), the
// outputs of the step before it, or that step's retry. /proc is sampled
// while the run runs.
func TestSuccessorLongSteps(t *testing.T) {
	bin := testBinary(t)
	for name, mid := range map[string]string{
		"quiet":   "sleep 0.3",
		"outputs": `sleep 0.3; echo "k=$PICOFLOW_TASK" >> "$PICOFLOW_OUTPUT"`,
		"retried": `sleep 0.3; [ "$PICOFLOW_ATTEMPT" -gt 1 ] || exit 1`,
	} {
		t.Run(name, func(t *testing.T) { longSteps(t, bin, mid) })
	}
}

func longSteps(t *testing.T, bin, mid string) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	const n = 5
	specs := chainSpecs(n, func(int) string { return mid })
	for i := range specs {
		specs[i].extra = "retry: 1"
	}
	file := writeWorkflow(t, dir, "chain", "{backoff: {initial: 1ms, max: 1ms}}", specs...)
	c := start(t, bin, "run", "--home", home, file)
	gated := map[int]bool{}
	most := 0
	for i := 0; !c.exited() && i < 20000; i++ {
		g := gatedShells(dir)
		most = max(most, len(g))
		for _, p := range g {
			gated[p] = true
		}
		time.Sleep(time.Millisecond)
	}
	if code := c.wait(t); code != ExitOK {
		t.Fatalf("exit %d\n%s%s", code, &c.stdout, &c.stderr)
	}
	// Every step's own shell waits at its gate until its start is
	// committed: the shells let go are those that ran no step.
	lines := chainLedger(t, dir)
	for _, l := range lines {
		pid, _ := strconv.Atoi(l.pid)
		delete(gated, pid)
	}
	seen := map[string]bool{}
	var ends []string
	for _, l := range lines {
		if l.end {
			ends = append(ends, l.task)
		} else if k := l.task + " " + l.att; seen[k] {
			t.Errorf("%s attempt %s ran twice", l.task, l.att)
		} else {
			seen[k] = true
		}
	}
	if want := "s00 s01 s02 s03 s04"; strings.Join(ends, " ") != want {
		t.Errorf("steps ended %v, want %s", ends, want)
	}
	if most > 2 || len(gated) > 1 {
		t.Errorf("%d shells waited at their gate at once, %d let go (%v); want at most 2 and 1", most, len(gated), gated)
	}
	if left := processesWithEnv("T=" + dir); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
	t.Logf("at most %d shells at their gate at once; let go: %v", most, gated)
}

// TestSuccessorSigint: SIGINT while step s01 runs (it waits for a fifo)
// and s02's shell waits at its gate: the waiting shell exits without
// running s02, s01 finishes in its grace, picoflow exits 3, and the run
// resumes with s02, every step having run once.
func TestSuccessorSigint(t *testing.T) {
	bin := testBinary(t)
	const n = 5 // chainAtGate's steps
	dir, home, file, c, spare := chainAtGate(t, bin, `read _ < "$T/go"`)
	fifo := filepath.Join(dir, "go")
	if err := c.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	gone(t, spare, "s02's waiting shell after SIGINT")
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0) // s01 reads it: it ends in its grace
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("go\n")
	f.Close()
	if code := c.wait(t); code != ExitInterrupted {
		t.Fatalf("exit %d, want %d\n%s%s", code, ExitInterrupted, &c.stdout, &c.stderr)
	}
	if l := chainLedger(t, dir); len(l) != 4 {
		t.Fatalf("after SIGINT the ledger holds %d lines, want 4 (s00 and s01): %v", len(l), l)
	}
	if r := binCLI(t, bin, "run", "--home", home, file); r.code != ExitOK || !strings.Contains(r.stdout, "resum") {
		t.Fatalf("second run: exit %d, want a resumed run that succeeds\n%s%s", r.code, r.stdout, r.stderr)
	}
	chainRanOnce(t, dir, n, map[int]bool{spare: true})
	if left := processesWithEnv("T=" + dir); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
}

// TestSuccessorSigintTwice: SIGINT while step s01 runs and s02's shell
// waits at its gate, then SIGINT again: the first lets the waiting shell
// go, the second exits 130 and kills s01's group; the next run resumes,
// runs s01 again (it was interrupted) and every later step once, none in
// the shell that waited.
func TestSuccessorSigintTwice(t *testing.T) {
	bin := testBinary(t)
	// s01's first attempt waits for a fifo nobody opens.
	dir, home, file, c, spare := chainAtGate(t, bin, `[ -e "$T/once" ] || { touch "$T/once"; read _ < "$T/go"; }`)
	if err := c.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	// Two signals sent at once may reach picoflow as one (the kernel
	// keeps one pending SIGINT): the second follows the first's notice.
	c.waitFor(t, "the first SIGINT's notice", func() bool { return strings.Contains(c.stderrText(), "interrupt received") })
	gone(t, spare, "s02's waiting shell after the first SIGINT")
	if err := c.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t); code != ExitForced {
		t.Fatalf("exit %d, want %d\n%s%s", code, ExitForced, &c.stdout, &c.stderr)
	}
	if want := "killed 1 task process group(s)"; !strings.Contains(c.stderrText(), want) {
		t.Errorf("stderr does not say %q:\n%s", want, c.stderrText())
	}
	if r := binCLI(t, bin, "run", "--home", home, file); r.code != ExitOK || !strings.Contains(r.stdout, "resum") {
		t.Fatalf("second run: exit %d, want a resumed run that succeeds\n%s%s", r.code, r.stdout, r.stderr)
	}
	var got []string
	for _, l := range chainLedger(t, dir) {
		if pid, _ := strconv.Atoi(l.pid); pid == spare {
			t.Errorf("step %s ran in the shell that waited at its gate", l.task)
		}
		if !l.end {
			got = append(got, l.task+"."+l.att)
		}
	}
	if want := "s00.1 s01.1 s01.2 s02.1 s03.1 s04.1"; strings.Join(got, " ") != want {
		t.Errorf("steps started %v, want %s", got, want)
	}
	if left := processesWithEnv("T=" + dir); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
}

// TestSuccessorCancel: picoflow cancel while step s01 runs and s02's
// shell waits at its gate: the waiting shell exits unrun, s01 finishes in
// its grace, picoflow exits 1 with the run canceled, and no later step
// ever ran or was journaled started.
func TestSuccessorCancel(t *testing.T) {
	bin := testBinary(t)
	dir, home, _, c, spare := chainAtGate(t, bin, `read _ < "$T/go"`)
	fifo := filepath.Join(dir, "go")
	run := procEnv(spare)["PICOFLOW_RUN_ID"]
	if r := binCLI(t, bin, "cancel", "--home", home, run); r.code != ExitOK {
		t.Fatalf("cancel: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	gone(t, spare, "s02's waiting shell after the cancel")
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0) // s01 ends in its grace
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if code := c.wait(t); code != ExitFailed {
		t.Fatalf("exit %d, want %d\n%s%s", code, ExitFailed, &c.stdout, &c.stderr)
	}
	if l := chainLedger(t, dir); len(l) != 4 {
		t.Errorf("the ledger holds %v, want s00 and s01 only", l)
	}
	st := runOf(t, home, run)
	if st.Status != engine.RunCanceled {
		t.Errorf("run %s is %s, want canceled", run, st.Status)
	}
	for _, name := range []string{"s02", "s03", "s04"} {
		if ts := st.Tasks[name]; ts != nil && ts.Attempt > 0 {
			t.Errorf("%s was journaled started (%d attempts) after the cancel", name, ts.Attempt)
		}
	}
	if left := processesWithEnv("T=" + dir); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
}

// chainAtGate starts a run of a 5-step chain whose step s01 runs s01Cmd
// and returns once s02's shell waits at its gate while s01 runs (s00
// done, s01 started): the test's directory, the home, the workflow file,
// the running picoflow and the pid of s02's waiting shell. $T/go is a
// fifo s01Cmd may wait at.
func chainAtGate(t *testing.T, bin, s01Cmd string) (dir, home, file string, c *child, spare int) {
	t.Helper()
	dir = t.TempDir()
	home = filepath.Join(dir, "home")
	if err := syscall.Mkfifo(filepath.Join(dir, "go"), 0o600); err != nil {
		t.Fatal(err)
	}
	file = writeWorkflow(t, dir, "chain", "", chainSpecs(5, func(i int) string {
		if i == 1 {
			return s01Cmd
		}
		return "true"
	})...)
	c = start(t, bin, "run", "--home", home, file)
	c.waitFor(t, "s02's shell at its gate while s01 runs", func() bool {
		shells := gatedShells(dir)
		if len(shells) != 1 || len(chainLedger(t, dir)) != 3 || procEnv(shells[0])["PICOFLOW_TASK"] != "s02" {
			return false // S s00, E s00, S s01 in the ledger
		}
		spare = shells[0]
		return true
	})
	return dir, home, file, c, spare
}
