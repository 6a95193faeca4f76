//go:build linux

package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picoflow/picoflow/cli/internal/lazyfs"
)

// TestPowerLoss runs the real picoflow binary with its home on lazyfs, a
// file system that forgets every write not fsynced, and cuts the power at
// random instants: every process of the trial is killed and the file
// system falls back to what was fsynced (with a fault: clear, torn-seq or
// torn-op). Then it remounts and carries on (run, daemon restart, resolve
// where a task is in doubt) until every run has finished. Tasks append to
// a ledger outside the file system. It checks:
//
//   - no task whose success was reported (a dependent started, run
//     exited 0, or the progress line "ok TASK" was printed) runs again;
//   - no idempotent: false task runs twice without resolve --rerun;
//   - every run finishes, and succeeds (every task's upstream outputs
//     arrive: a task checks them and fails without them);
//   - after every recovery, history --json agrees with replay --json;
//   - nothing outside the home is created, and the workflow file is
//     untouched.
//
// PICOFLOW_POWERLOSS_SEED (default: the clock) and
// PICOFLOW_POWERLOSS_TRIALS (default 8) choose the trials; trial i uses
// seed+i, so PICOFLOW_POWERLOSS_SEED=S PICOFLOW_POWERLOSS_TRIALS=1 repeats
// trial S (its workflow, faults and cut points; the instant a cut lands in
// picoflow's work still depends on timing).
func TestPowerLoss(t *testing.T) {
	if why := lazyfs.Unavailable(); why != "" {
		t.Skip("power-loss test skipped: " + why)
	}
	trials, seed := powerLossTrials(t, "PICOFLOW_POWERLOSS_TRIALS", 8, uint64(time.Now().UnixNano()%1_000_000))
	bin := buildPicoflow(t)
	var sum plStats
	for i := range uint64(trials) {
		s := seed + i
		ok := t.Run(fmt.Sprintf("seed-%d", s), func(t *testing.T) {
			tr := newTrial(t, bin, s, &sum)
			tr.run()
		})
		if !ok {
			t.Logf("reproduce: PICOFLOW_POWERLOSS_SEED=%d PICOFLOW_POWERLOSS_TRIALS=1 go test ./cli -run TestPowerLoss", s)
			break
		}
	}
	t.Logf("seeds %d..%d: %d trials, %d power cuts (clear %d, torn-seq %d, torn-op %d; %d right after an fsync, %d under gc), %d runs, "+
		"%d resolves, %d daemon starts, %d gc; %d files lost %d pending bytes; %d journal repairs seen by run, "+
		"%d projection rebuilds; %d violations",
		seed, seed+uint64(trials)-1, sum.trials, sum.cuts, sum.faults[lazyfs.Clear], sum.faults[lazyfs.TornSeq],
		sum.faults[lazyfs.TornOp], sum.syncCuts, sum.gcCuts, sum.runs, sum.resolves, sum.daemons, sum.gcs,
		sum.cutFiles, sum.cutBytes, sum.repairs, sum.rebuilds, sum.violations)
}

// buildPicoflow builds the binary for one test.
func buildPicoflow(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "picoflow")
	build := exec.Command("go", "build", "-o", bin, "./cmd/picoflow")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type plStats struct {
	trials, cuts, runs, resolves, daemons, violations int
	gcs, gcCuts, syncCuts, rebuilds, repairs          int
	cutFiles, cutBytes                                int
	faults                                            [3]int
}

// plTask is one task of a trial's workflow.
type plTask struct {
	name    string
	deps    []string
	nonIdem bool // idempotent: false; writes no output
	flaky   bool // fails its first attempt, retry: 2
	noOut   bool // writes no output (its dependent may run in its successor spare)
}

type trial struct {
	t                 *testing.T
	bin               string
	seed              uint64
	rnd               *rand.Rand
	sum               *plStats
	dir, backing, mnt string
	home, file, wfdir string
	daemon            bool
	tasks             []plTask
	fs                *lazyfs.FS
	wfBytes           []byte
	runs              map[string]bool // every run id seen
	reruns            map[string]int  // "run task" → resolve --rerun count
	okAt              map[string]int  // run → ledger lines when run exited 0
	okPrinted         map[string]int  // "run task" → ledger lines once picoflow printed "ok TASK"
	lastRun           string          // the run that exited 0 last
	gcKeeps           string          // after gc: the one run it must keep
	cutsLeft          int
	heldCuts          *int // set: runs are cut with an fsync held (heldCut), counted here
	bigOutputs        bool // tasks write 30-63 KB outputs: the journal rolls segments mid-run
}

func newTrial(t *testing.T, bin string, seed uint64, sum *plStats) *trial {
	tr := bareTrial(t, bin, seed, sum)
	tr.daemon = tr.rnd.IntN(4) == 0
	tr.cutsLeft = 1 + tr.rnd.IntN(4)
	tr.tasks = tr.shape()
	tr.writeWorkflow()
	return tr
}

// bareTrial mounts lazyfs for a home and nothing more.
func bareTrial(t *testing.T, bin string, seed uint64, sum *plStats) *trial {
	dir := t.TempDir()
	tr := &trial{
		t: t, bin: bin, seed: seed, sum: sum, dir: dir,
		rnd:     rand.New(rand.NewPCG(seed, 0x5eed)),
		backing: filepath.Join(dir, "backing"), mnt: filepath.Join(dir, "mnt"),
		runs: map[string]bool{}, reruns: map[string]int{}, okAt: map[string]int{}, okPrinted: map[string]int{},
	}
	tr.home = filepath.Join(tr.mnt, "home")
	for _, d := range []string{tr.backing, tr.mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tr.mount()
	t.Cleanup(func() {
		if tr.fs != nil {
			tr.fs.Cut()
			tr.killAll()
			tr.fs.Unmount()
		}
	})
	return tr
}

// shape draws the trial's DAG: a chain, a wide fan-out, or random layers;
// some tasks are non-idempotent, some fail their first attempt.
func (tr *trial) shape() []plTask {
	var ts []plTask
	name := func(i int) string { return fmt.Sprintf("t%02d", i) }
	kind := tr.rnd.IntN(3)
	if tr.daemon {
		kind = 0
	}
	switch kind {
	case 0: // chain
		n := 3 + tr.rnd.IntN(6)
		if tr.daemon {
			n = 3
		}
		for i := range n {
			k := plTask{name: name(i)}
			if i > 0 {
				k.deps = []string{name(i - 1)}
			}
			ts = append(ts, k)
		}
	case 1: // wide
		n := 6 + tr.rnd.IntN(12)
		ts = append(ts, plTask{name: name(0)})
		var mid []string
		for i := 1; i <= n; i++ {
			ts = append(ts, plTask{name: name(i), deps: []string{name(0)}})
			mid = append(mid, name(i))
		}
		ts = append(ts, plTask{name: name(n + 1), deps: mid})
	default: // layers
		const layers, width = 3, 5
		for l := range layers {
			for i := range width {
				k := plTask{name: name(l*width + i)}
				if l > 0 {
					deps := map[string]bool{name((l-1)*width + tr.rnd.IntN(width)): true}
					for range tr.rnd.IntN(3) {
						deps[name(tr.rnd.IntN(l*width))] = true
					}
					for d := range deps {
						k.deps = append(k.deps, d)
					}
					slices.Sort(k.deps)
				}
				ts = append(ts, k)
			}
		}
	}
	for i := range ts {
		switch tr.rnd.IntN(6) {
		case 0:
			ts[i].nonIdem = true
		case 1:
			ts[i].flaky = true
		}
	}
	return ts
}

func outVar(task string) string { return "PICOFLOW_OUT_" + strings.ToUpper(task) + "_V" }

// writeWorkflow writes the workflow file outside the file system: into
// the daemon's workflows directory, or beside the ledger.
func (tr *trial) writeWorkflow() {
	var b strings.Builder
	fmt.Fprintf(&b, "name: pl\nenv:\n  T: %q\n", tr.dir)
	b.WriteString("config: {max_parallel: 4, backoff: {initial: 10ms}}\n")
	if tr.daemon {
		b.WriteString("schedule: \"@every 1s\"\n")
	}
	b.WriteString("tasks:\n")
	byName := map[string]plTask{}
	for _, k := range tr.tasks {
		byName[k.name] = k
	}
	for _, k := range tr.tasks {
		cmd := `echo "start $PICOFLOW_RUN_ID $PICOFLOW_TASK" >> "$T/ledger"; `
		for _, d := range k.deps {
			if dk := byName[d]; !dk.nonIdem && !dk.noOut {
				cmd += fmt.Sprintf(`[ "$%s" = %s-ok ] || { echo "no output from %s" >&2; exit 1; }; `, outVar(d), d, d)
			}
		}
		if k.flaky {
			cmd += `c="$T/count.$PICOFLOW_RUN_ID.$PICOFLOW_TASK"; n=$(cat "$c" 2>/dev/null || echo 0); ` +
				`echo $((n+1)) > "$c"; [ "$n" != 0 ] || exit 1; `
		}
		cmd += fmt.Sprintf("sleep 0.0%d; ", tr.rnd.IntN(5))
		if !k.nonIdem && !k.noOut {
			cmd += `echo "v=$PICOFLOW_TASK-ok" >> "$PICOFLOW_OUTPUT"; `
			if tr.bigOutputs {
				cmd += fmt.Sprintf(`{ printf pad=; head -c %d /dev/zero | tr '\0' x; echo; } >> "$PICOFLOW_OUTPUT"; `, 30000+tr.rnd.IntN(33000))
			}
		}
		cmd += `echo "end $PICOFLOW_RUN_ID $PICOFLOW_TASK" >> "$T/ledger"`
		q, _ := json.Marshal(cmd)
		fmt.Fprintf(&b, "  - name: %s\n    type: shell\n    config: {command: %s}\n", k.name, q)
		if len(k.deps) > 0 {
			d, _ := json.Marshal(k.deps)
			fmt.Fprintf(&b, "    depends_on: %s\n", d)
		}
		if k.nonIdem {
			b.WriteString("    idempotent: false\n")
		}
		if k.flaky {
			b.WriteString("    retry: 2\n")
		}
	}
	dir := tr.dir
	if tr.daemon {
		dir = filepath.Join(tr.dir, "workflows")
		if err := os.Mkdir(dir, 0o755); err != nil {
			tr.t.Fatal(err)
		}
		tr.wfdir = dir
	}
	tr.file = filepath.Join(dir, "pl.yaml")
	tr.wfBytes = []byte(b.String())
	if err := os.WriteFile(tr.file, tr.wfBytes, 0o644); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr *trial) mount() {
	f, err := lazyfs.Mount(tr.backing, tr.mnt)
	if err != nil {
		tr.t.Fatal(err)
	}
	tr.fs = f
}

func (tr *trial) violation(format string, args ...any) {
	tr.t.Helper()
	tr.sum.violations++
	tr.t.Errorf("seed %d: %s", tr.seed, fmt.Sprintf(format, args...))
}

func (tr *trial) run() {
	tr.sum.trials++
	switch {
	case tr.daemon:
		tr.runDaemon()
	case tr.rnd.IntN(3) == 0:
		// Two runs, then gc keeps the newest: it deletes rows and logs
		// and cuts the journal's front, and the power may go meanwhile.
		tr.runCLI()
		tr.runCLI()
		tr.gc()
	default:
		tr.runCLI()
	}
	if tr.t.Failed() {
		return
	}
	tr.finishAll()
	tr.checkLedger()
	tr.checkHome()
}

// proc is a picoflow process of the trial.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	code           int
}

// marker is in the environment of every process of the trial (tasks
// inherit it), so a power cut can kill them all.
func (tr *trial) marker() string { return "PICOFLOW_POWERLOSS_TRIAL=" + tr.dir }

func (tr *trial) start(args ...string) *proc {
	p := &proc{cmd: exec.Command(tr.bin, append(args, "--home", tr.home)...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.Env = append(os.Environ(), "PICOFLOW_HOME=", "PICOFLOW_CONFIG=", tr.marker())
	if err := p.cmd.Start(); err != nil {
		tr.t.Fatal(err)
	}
	go func() {
		err := p.cmd.Wait()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			p.code = ee.ExitCode()
		case err != nil:
			p.code = -2
		}
		close(p.done)
	}()
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the process, at most two minutes.
func (tr *trial) wait(p *proc) int {
	select {
	case <-p.done:
		return p.code
	case <-time.After(2 * time.Minute):
		tr.t.Fatalf("seed %d: picoflow %v hangs\n--- stdout\n%s--- stderr\n%s", tr.seed, p.cmd.Args[1:], &p.stdout, &p.stderr)
		return -1
	}
}

// cmd runs a picoflow command to its end.
func (tr *trial) cmd(args ...string) (int, string, string) {
	p := tr.start(args...)
	code := tr.wait(p)
	return code, p.stdout.String(), p.stderr.String()
}

// waitCut lets p work until a random instant and reports whether the
// power was cut before p exited. The instant is drawn one of three ways:
// after a number of ledger lines (mid-run; byLedger only), right after
// the n-th fsync (an exact point of picoflow's protocol), or after a
// random time (start-up, recovery, projection, exit).
func (tr *trial) waitCut(p *proc, byLedger bool) bool {
	if tr.cutsLeft == 0 {
		return false
	}
	var fired <-chan struct{}
	switch mode := tr.rnd.IntN(3); {
	case mode == 0 && byLedger:
		target := len(tr.ledger()) + 1 + tr.rnd.IntN(10)
		for i := 0; !p.exited() && len(tr.ledger()) < target; i++ {
			if i == 60000 {
				tr.t.Fatalf("seed %d: picoflow hangs\n--- stdout\n%s--- stderr\n%s", tr.seed, &p.stdout, &p.stderr)
			}
			time.Sleep(time.Millisecond)
		}
	case mode == 1:
		fired = tr.fs.CutAfterSyncs(1 + tr.rnd.IntN(40))
		select {
		case <-p.done:
		case <-fired:
		}
	default:
		window := 400_000
		if !byLedger {
			window = 80_000 // gc is quick
		}
		select {
		case <-p.done:
		case <-time.After(time.Duration(tr.rnd.IntN(window)) * time.Microsecond):
		}
	}
	if fired != nil {
		select {
		case <-fired:
			tr.sum.syncCuts++
			tr.powerCut()
			return true
		default:
			tr.fs.CutAfterSyncs(0)
		}
	}
	if p.exited() {
		return false
	}
	tr.powerCut()
	return true
}

// powerCut: the disk stops, every process of the trial dies, the file
// system falls back to what was fsynced, and it is mounted again.
func (tr *trial) powerCut() {
	tr.fs.Cut()
	tr.killAll()
	fault := lazyfs.Fault(tr.rnd.IntN(3))
	if err := tr.fs.PowerCut(fault, tr.rnd); err != nil {
		tr.t.Fatal(err)
	}
	st := tr.fs.Stats()
	tr.sum.cutFiles += st.CutFiles
	tr.sum.cutBytes += st.CutBytes
	tr.fs = nil
	if tr.cutsLeft > 0 {
		tr.cutsLeft--
	}
	tr.sum.cuts++
	tr.sum.faults[fault]++
	tr.mount()
	if tr.cutsLeft > 0 && tr.rnd.IntN(3) == 0 {
		// Cut again while history catches the projection up (or rebuilds
		// it) from the journal: SQLite loses its unsynced pages too.
		p := tr.start("history", "--json", "--limit", "0")
		select {
		case <-p.done:
		case <-time.After(time.Duration(tr.rnd.IntN(60_000)) * time.Microsecond):
		}
		if !p.exited() {
			tr.powerCut()
			return
		}
	}
	tr.checkProjection("after a power cut")
}

// killAll SIGKILLs every process carrying the trial's marker until none
// is left.
func (tr *trial) killAll() {
	for round := 0; ; round++ {
		pids := processesWithEnv(tr.marker())
		if len(pids) == 0 {
			return
		}
		if round == 1000 {
			tr.t.Fatalf("seed %d: processes of the trial survive SIGKILL: %v", tr.seed, pids)
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// plOKRe matches a progress line "HH:MM:SS   ok     TASK  DURATION".
var plOKRe = regexp.MustCompile(`(?m)^\S+   ok     (\S+)  `)

// noteOK records the tasks picoflow printed "ok" for in run: a success it
// reports that way must be durable, so the task never starts again.
// p has exited, so every start from now on comes after the line.
func (tr *trial) noteOK(run, stdout string) {
	if run == "" {
		return
	}
	n := len(tr.ledger())
	for _, m := range plOKRe.FindAllStringSubmatch(stdout, -1) {
		if _, ok := tr.okPrinted[run+" "+m[1]]; !ok {
			tr.okPrinted[run+" "+m[1]] = n
		}
	}
}

var plRunRe = regexp.MustCompile(`(?:run (\S+) of pl started|resuming run (\S+))`)

// runCLI runs the workflow with picoflow run until a run exits 0,
// cutting the power at random instants and resolving in-doubt tasks.
func (tr *trial) runCLI() {
	for step := 0; ; step++ {
		if step == 60 {
			tr.violation("the run never finished")
			return
		}
		p := tr.start("run", tr.file)
		var cut bool
		if tr.heldCuts != nil && tr.cutsLeft > 0 {
			cut = tr.heldCut(p)
		} else {
			cut = tr.waitCut(p, true)
		}
		code := tr.wait(p)
		if strings.Contains(p.stderr.String(), "journal repaired") {
			tr.sum.repairs++ // a torn tail dropped
		}
		run := ""
		for _, m := range plRunRe.FindAllStringSubmatch(p.stdout.String(), -1) {
			run = m[1] + m[2]
			tr.runs[run] = true
		}
		tr.noteOK(run, p.stdout.String())
		if cut {
			continue
		}
		switch code {
		case ExitOK:
			if run == "" {
				tr.violation("run exited 0 naming no run\n%s", &p.stdout)
				return
			}
			tr.okAt[run] = len(tr.ledger())
			tr.lastRun = run
			return
		case ExitInDoubt:
			tr.resolveAll()
		default:
			tr.violation("picoflow run exited %d\n--- stdout\n%s--- stderr\n%s", code, &p.stdout, &p.stderr)
			return
		}
	}
}

// gc runs picoflow gc with max_runs_per_workflow: 1, cutting the power
// under it at a random instant, until one gc completes.
func (tr *trial) gc() {
	if tr.t.Failed() {
		return
	}
	cfg := filepath.Join(tr.dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("retention:\n  max_runs_per_workflow: 1\n"), 0o644); err != nil {
		tr.t.Fatal(err)
	}
	tr.gcKeeps = tr.lastRun
	tr.sum.gcs++
	tr.cutsLeft++ // one chance to cut under gc
	for {
		p := tr.start("gc", "--config", cfg)
		if tr.waitCut(p, false) {
			tr.sum.gcCuts++
			continue
		}
		if code := tr.wait(p); code != ExitOK {
			tr.violation("gc exited %d\n%s%s", code, &p.stdout, &p.stderr)
		}
		return
	}
}

// runDaemon runs a daemon with a schedule, cutting the power under it and
// starting it again.
func (tr *trial) runDaemon() {
	for tr.cutsLeft > 0 {
		p := tr.start("daemon", "--workflows", tr.wfdir, "--poll", "200ms")
		tr.sum.daemons++
		// Let it fire a few times, then cut at a random instant or right
		// after a random fsync.
		var fired <-chan struct{}
		if tr.heldCuts != nil {
			if tr.daemonHeldCut(p) {
				continue
			}
			return
		}
		if tr.rnd.IntN(2) == 0 {
			fired = tr.fs.CutAfterSyncs(1 + tr.rnd.IntN(60))
		}
		select {
		case <-p.done:
			tr.violation("daemon exited %d\n--- stderr\n%s", p.code, &p.stderr)
			return
		case <-fired:
			tr.sum.syncCuts++
		case <-time.After(time.Duration(500+tr.rnd.IntN(2500)) * time.Millisecond):
			tr.fs.CutAfterSyncs(0)
		}
		tr.powerCut()
	}
	// A last daemon, stopped gracefully once it has started a task (a
	// trial whose cuts all came early has no run yet) and a moment more.
	p := tr.start("daemon", "--workflows", tr.wfdir, "--poll", "200ms")
	tr.sum.daemons++
	for n, i := len(tr.ledger()), 0; !p.exited() && len(tr.ledger()) == n; i++ {
		if i == 10000 {
			tr.violation("the daemon started no task in 10 s\n--- stderr\n%s", &p.stderr)
			break
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case <-p.done:
	case <-time.After(time.Duration(tr.rnd.IntN(1500)) * time.Millisecond):
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := tr.wait(p); code != ExitOK {
		tr.violation("daemon exited %d after SIGTERM\n--- stderr\n%s", code, &p.stderr)
	}
}

// powerLossTrials returns how many trials a power-loss test runs (def,
// or $countVar) and its first seed (seed, or $PICOFLOW_POWERLOSS_SEED).
func powerLossTrials(t *testing.T, countVar string, def int, seed uint64) (int, uint64) {
	t.Helper()
	trials := def
	if v := os.Getenv(countVar); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q", countVar, v)
		}
		trials = n
	}
	if v := os.Getenv("PICOFLOW_POWERLOSS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("PICOFLOW_POWERLOSS_SEED=%q", v)
		}
		seed = n
	}
	return trials, seed
}
