package cli

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// TestLogReuseAttack attacks the reuse of free logs (engine/logfile.go)
// from outside, under a fork storm: wide DAGs of hundreds of short shell
// tasks at max_parallel 3 to 8, every one tagging its output lines "L
// TASK ATTEMPT". Some print nothing (their empty logs are reused), some
// fail (quietly or not), some fail once and are retried, some sleep
// (printing nothing) while `picoflow logs --follow` readers attach to
// them at random, and some leave a `setsid` daemon behind that keeps the
// task's stdout and writes "D TASK ATTEMPT" to it only once the run has
// ended (when the test creates $T/go). Checked:
//
//   - every log file is of an attempt the journal started and holds only
//     lines of that attempt: never another task's, never a daemon's line
//     in a later attempt's log;
//   - every attempt that did not succeed, and every one that printed or
//     left a daemon, has its log with its lines; only silent successes
//     may have none (and some had none: logs were reused);
//   - a follower printed only lines of the attempt it named, and ended;
//   - `picoflow logs` prints what the files hold; `history --json` agrees
//     with the journal; nothing of the trial is left.
//
// PICOFLOW_LOGREUSE_TRIALS sets the number of trials (default 3),
// PICOFLOW_LOGREUSE_SEED the seed.
func TestLogReuseAttack(t *testing.T) {
	bin := testBinary(t)
	trials, seed, rnd := tortureRand(t, "PICOFLOW_LOGREUSE", "TRIALS", 3, "TestLogReuseAttack", 0x9e3779b97f4a7c15)
	reused, follows := 0, 0
	for trial := range trials {
		r := newReuseTrial(t, bin, trial, rnd)
		follows += r.run(rnd)
		reused += r.check()
		if t.Failed() {
			break
		}
	}
	if !t.Failed() && reused == 0 {
		t.Error("no log was ever reused: the attack attacked nothing")
	}
	t.Logf("seed %d: %d trials, %d silent successes without a log, %d followers", seed, trials, reused, follows)
}

// reuseKinds: what a task of the trial does; weights by repetition.
var reuseKinds = []string{"quiet", "quiet", "quiet", "quiet", "talk", "talk", "fail", "failq",
	"flaky", "flaky", "slow", "slow", "daemon"}

type reuseTrial struct {
	t                    *testing.T
	bin                  string
	trial, mp, n         int
	dir, home, file, wf  string
	kind                 map[string]string // task -> kind
	follow               []*child
	followOf             []string // task of follow[i]
	code                 int
	killed               bool // a kill -9 may leave logs of attempts never journaled, and interrupted ones without
	stdoutRun, stderrRun string
}

func newReuseTrial(t *testing.T, bin string, trial int, rnd *rand.Rand) *reuseTrial {
	dir := t.TempDir()
	r := &reuseTrial{t: t, bin: bin, trial: trial, mp: 3 + rnd.IntN(6), n: 150 + rnd.IntN(150), dir: dir,
		home: filepath.Join(dir, "home"), wf: "reuse", kind: map[string]string{}}
	var specs []spec
	var okNames []string
	for i := range r.n {
		name := fmt.Sprintf("t%03d", i)
		k := reuseKinds[rnd.IntN(len(reuseKinds))]
		r.kind[name] = k
		body := `echo "S $PICOFLOW_TASK $PICOFLOW_ATTEMPT" >> "$T/ledger"; `
		extra := ""
		switch k {
		case "quiet":
		case "talk":
			body += `echo "L $PICOFLOW_TASK $PICOFLOW_ATTEMPT out"; echo "L $PICOFLOW_TASK $PICOFLOW_ATTEMPT err" >&2; `
		case "fail":
			body += `echo "L $PICOFLOW_TASK $PICOFLOW_ATTEMPT out"; echo "E $PICOFLOW_TASK $PICOFLOW_ATTEMPT" >> "$T/ledger"; exit 1; `
		case "failq":
			body += `echo "E $PICOFLOW_TASK $PICOFLOW_ATTEMPT" >> "$T/ledger"; exit 2; `
		case "flaky": // the first attempt fails, printing or not; the second succeeds silently
			extra = "retry: 2"
			say := ""
			if rnd.IntN(2) == 0 {
				say = `echo "L $PICOFLOW_TASK $PICOFLOW_ATTEMPT out"; `
			}
			body += `if [ "$PICOFLOW_ATTEMPT" = 1 ]; then ` + say + `echo "E $PICOFLOW_TASK $PICOFLOW_ATTEMPT" >> "$T/ledger"; exit 3; fi; `
		case "slow":
			body += `sleep 0.1$(($$ % 5)); `
		case "daemon":
			// The daemon is in its own session before the task ends (its
			// process group dies with the shell), keeps the task's stdout, and
			// writes to it once the run has ended.
			body += `setsid sh -c 'touch "$T/up.$PICOFLOW_TASK.$PICOFLOW_ATTEMPT"; i=0; ` +
				`while [ ! -e "$T/go" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; ` +
				`echo "D $PICOFLOW_TASK $PICOFLOW_ATTEMPT"; echo "D $PICOFLOW_TASK $PICOFLOW_ATTEMPT" >> "$T/dledger"' & ` +
				`i=0; while [ ! -e "$T/up.$PICOFLOW_TASK.$PICOFLOW_ATTEMPT" ] && [ $i -lt 2000 ]; do sleep 0.005; i=$((i+1)); done; `
		}
		body += `echo "E $PICOFLOW_TASK $PICOFLOW_ATTEMPT" >> "$T/ledger"`
		var deps []string
		if len(okNames) > 0 && rnd.IntN(5) == 0 {
			deps = []string{okNames[rnd.IntN(len(okNames))]}
		}
		if k != "fail" && k != "failq" {
			okNames = append(okNames, name)
		}
		specs = append(specs, spec{name: name, cmd: body, deps: deps, extra: extra})
	}
	cfg := fmt.Sprintf("{max_parallel: %d, backoff: {initial: 1ms, max: 1ms}}", r.mp)
	r.file = writeWorkflow(t, dir, r.wf, cfg, specs...)
	return r
}

func (r *reuseTrial) fail(format string, args ...any) {
	r.t.Helper()
	r.t.Errorf("trial %d (%d tasks, max_parallel %d, killed %v): %s", r.trial, r.n, r.mp, r.killed, fmt.Sprintf(format, args...))
}

// running returns the tasks whose ledger has a start and no end.
func (r *reuseTrial) running() []string {
	b, _ := os.ReadFile(filepath.Join(r.dir, "ledger"))
	open := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		key := f[1] + " " + f[2]
		if f[0] == "S" {
			open[key] = true
		} else {
			delete(open, key)
		}
	}
	var out []string
	for k := range open {
		out = append(out, strings.Fields(k)[0])
	}
	return out
}

// run runs the workflow while followers attach to running tasks (up to
// three at a time); one trial in two, the first picoflow is killed (kill
// -9) at a random ledger line and the run resumed. It returns how many
// followers attached.
func (r *reuseTrial) run(rnd *rand.Rand) int {
	killAt := -1
	if rnd.IntN(2) == 0 {
		killAt = 20 + rnd.IntN(2*r.n)
	}
	for gen := 0; ; gen++ {
		if gen == 4 {
			r.fail("the run never ended")
			return len(r.follow)
		}
		c := start(r.t, r.bin, "run", "--home", r.home, r.file)
		r.watch(c, rnd, killAt)
		killAt = -1
		r.code = c.wait(r.t)
		r.stdoutRun, r.stderrRun = c.stdout.String(), c.stderr.String()
		switch r.code {
		case ExitOK, ExitFailed:
			return len(r.follow)
		case -1:
			r.killed = true
		default:
			r.fail("picoflow exited %d\n%s%s", r.code, r.stdoutRun, r.stderrRun)
			return len(r.follow)
		}
	}
}

// watch attaches followers while c runs, and kills it once the ledger
// has killAt lines (-1: never).
func (r *reuseTrial) watch(c *child, rnd *rand.Rand, killAt int) {
	for i := 0; !c.exited(); i++ {
		if i == 60000 {
			r.fail("the run never ended")
			return
		}
		if killAt >= 0 && len(readLedgerFile(r.dir, "ledger")) >= killAt {
			c.cmd.Process.Signal(syscall.SIGKILL)
			return
		}
		live := 0
		for _, f := range r.follow {
			if !f.exited() {
				live++
			}
		}
		if live < 3 && len(r.follow) < 60 && rnd.IntN(4) == 0 {
			if run := r.running(); len(run) > 0 {
				task := run[rnd.IntN(len(run))]
				r.follow = append(r.follow, start(r.t, r.bin, "logs", "--follow", "--home", r.home, r.wf, task))
				r.followOf = append(r.followOf, task)
			}
		}
		time.Sleep(time.Millisecond)
	}
}

var tagLine = regexp.MustCompile(`^([LD]) (t\d{3}) (\d+)`)

// attemptOf is what the journal says of one attempt.
type attemptOf struct {
	task    string
	attempt int
	log     string
	status  string // its TaskFinished or TaskRetrying status; "" if none
}

// check waits for the daemons, then checks the files, the followers,
// `logs` and `history`; it returns the number of silent successes that
// have no log file.
func (r *reuseTrial) check() int {
	atts, runID := r.journal()
	ups, _ := filepath.Glob(filepath.Join(r.dir, "up.*"))
	if err := os.WriteFile(filepath.Join(r.dir, "go"), nil, 0o600); err != nil {
		r.t.Fatal(err)
	}
	for i := 0; ; i++ { // the daemons write and go
		left := processesWithEnv("T=" + r.dir)
		if len(left) == 0 {
			break
		}
		if i == 1000 {
			r.fail("processes of the trial left: %v", left)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	wrote := readLedgerFile(r.dir, "dledger")
	if len(wrote) != len(ups) && !r.killed { // a resume may kill a killed picoflow's leftovers
		r.fail("%d daemons started, %d wrote", len(ups), len(wrote))
	}
	byLog := map[string]*attemptOf{}
	for _, a := range atts {
		byLog[a.log] = a
	}
	missing := r.checkFiles(atts, byLog)
	r.checkDaemons(atts, wrote)
	r.checkFollowers()
	r.checkLogsCmd(atts)
	r.checkHistory(atts, runID)
	return missing
}

// checkDaemons: every line a daemon wrote is in the log of the attempt
// that started it.
func (r *reuseTrial) checkDaemons(atts map[string]*attemptOf, wrote []string) {
	for _, l := range wrote {
		a := atts[strings.TrimPrefix(l, "D ")]
		if a == nil {
			r.fail("daemon line %q of no journaled attempt", l)
			continue
		}
		if b, err := os.ReadFile(a.log); err != nil || !strings.Contains(string(b), l+"\n") {
			r.fail("the log of %s attempt %d lacks its daemon's %q (%v): %q", a.task, a.attempt, l, err, b)
		}
	}
}

func readLedgerFile(dir, name string) []string {
	b, _ := os.ReadFile(filepath.Join(dir, name))
	return strings.FieldsFunc(string(b), func(c rune) bool { return c == '\n' })
}

// journal returns the trial's attempts, "task attempt" -> what the
// journal says, and its run's id.
func (r *reuseTrial) journal() (map[string]*attemptOf, string) {
	atts := map[string]*attemptOf{}
	runID := ""
	err := journal.Scan(filepath.Join(r.home, "journal", r.wf), journal.ScanOptions{Strict: true}, func(e *journal.Event) error {
		key := fmt.Sprintf("%s %d", e.Task, e.Attempt)
		switch e.Type {
		case journal.RunStarted:
			runID = e.Run
		case journal.TaskStarted:
			atts[key] = &attemptOf{task: e.Task, attempt: int(e.Attempt), log: e.LogPath}
		case journal.TaskFinished, journal.TaskRetrying:
			if a := atts[key]; a != nil {
				a.status = e.Status
			}
		}
		return nil
	})
	if err != nil {
		r.t.Fatalf("scan the journal: %v", err)
	}
	return atts, runID
}

// checkFiles checks every log file against the journal and what its task
// printed; it returns the number of silent successes without a file.
func (r *reuseTrial) checkFiles(atts map[string]*attemptOf, byLog map[string]*attemptOf) int {
	files, _ := filepath.Glob(filepath.Join(r.home, "logs", r.wf, "*", "*.log"))
	for _, p := range files {
		if fi, err := os.Stat(p); byLog[p] == nil && (!r.killed || err != nil || fi.Size() > 0) {
			r.fail("log %s is of no attempt the journal started (killed %v)", p, r.killed)
		}
	}
	missing := 0
	for _, a := range atts {
		b, err := os.ReadFile(a.log)
		k := r.kind[a.task]
		if err != nil {
			silent := k == "quiet" || k == "slow" || (k == "flaky" && a.attempt > 1)
			// A kill -9 between an attempt's start and its log's open
			// leaves it without one. (A free log is renamed only while
			// its lease says nobody else holds it, engine/logfile.go
			// claim: a daemon's log never moves.)
			cut := r.killed && (a.status == journal.StatusInterrupted || a.status == "")
			if !os.IsNotExist(err) || !cut && (a.status != journal.StatusSuccess || !silent) {
				r.fail("%s attempt %d (%s, %s): its log: %v", a.task, a.attempt, k, a.status, err)
			}
			missing++
			continue
		}
		got := map[string]bool{}
		for _, l := range strings.Split(string(b), "\n") {
			m := tagLine.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			if m[2] != a.task || m[3] != strconv.Itoa(a.attempt) {
				r.fail("log %s of %s attempt %d (%s) holds %q", a.log, a.task, a.attempt, k, l)
			}
			got[l] = true
		}
		var want []string
		tag := fmt.Sprintf("%s %d", a.task, a.attempt)
		switch {
		case k == "talk":
			want = []string{"L " + tag + " out", "L " + tag + " err"}
		case k == "fail":
			want = []string{"L " + tag + " out"}
		}
		if a.status == journal.StatusInterrupted {
			want = nil // a resume may have killed it before it printed
		}
		for _, w := range want {
			if !got[w] {
				r.fail("log %s (%s, %s) lacks %q; holds %q", a.log, k, a.status, w, b)
			}
		}
	}
	return missing
}

var followAttempt = regexp.MustCompile(`, (t\d{3}) attempt (\d+) \(`)

// checkFollowers: every follower ended by itself and printed only lines
// of the attempt it named.
func (r *reuseTrial) checkFollowers() {
	for i, c := range r.follow {
		code := c.wait(r.t)
		out, errs := c.stdout.String(), c.stderr.String()
		m := followAttempt.FindStringSubmatch(errs)
		if code != ExitOK || m == nil || m[1] != r.followOf[i] {
			r.fail("logs --follow %s: exit %d, stderr %q", r.followOf[i], code, errs)
			continue
		}
		for _, l := range strings.Split(out, "\n") {
			if t := tagLine.FindStringSubmatch(l); t != nil && (t[2] != m[1] || t[3] != m[2]) {
				r.fail("logs --follow of %s attempt %s printed %q", m[1], m[2], l)
			}
		}
	}
}

// checkLogsCmd: `picoflow logs` prints what the files hold, for some
// attempts, and says when a silent success has no file.
func (r *reuseTrial) checkLogsCmd(atts map[string]*attemptOf) {
	i := 0
	for _, a := range atts { // map order: a random sample
		if i++; i > 12 {
			return
		}
		res := binCLI(r.t, r.bin, "logs", "--home", r.home, "--attempt", strconv.Itoa(a.attempt), r.wf, a.task)
		b, err := os.ReadFile(a.log)
		switch {
		case err != nil && res.code == ExitNotFound && r.killed && (a.status == journal.StatusInterrupted || a.status == ""):
			// picoflow was killed before it kept the log: logs says so
		case err != nil && res.code != ExitOK:
			r.fail("logs %s --attempt %d of a log not kept: exit %d %s", a.task, a.attempt, res.code, res.stderr)
		case err == nil && (res.code != ExitOK || res.stdout != string(b)):
			r.fail("logs %s --attempt %d: exit %d, printed %q, the file holds %q", a.task, a.attempt, res.code, res.stdout, b)
		}
	}
}

// checkHistory: `history --json --tasks` has the run's status, and each
// task's status and attempts, as the journal does.
func (r *reuseTrial) checkHistory(atts map[string]*attemptOf, runID string) {
	res := binCLI(r.t, r.bin, "history", "--home", r.home, "--json", "--tasks", r.wf)
	var runs []struct {
		ID    string `json:"run_id"`
		St    string `json:"status"`
		Tasks []struct {
			Name     string `json:"name"`
			Status   string `json:"status"`
			Attempts int    `json:"attempts"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &runs); err != nil || len(runs) != 1 {
		r.fail("history --json: %v, %d runs\n%s%s", err, len(runs), res.stdout, res.stderr)
		return
	}
	want := map[bool]string{true: "success", false: "failed"}[r.code == ExitOK]
	if runs[0].ID != runID || runs[0].St != want {
		r.fail("history says run %s %s, want %s %s", runs[0].ID, runs[0].St, runID, want)
	}
	last := map[string]*attemptOf{}
	for _, a := range atts {
		if l := last[a.task]; l == nil || a.attempt > l.attempt {
			last[a.task] = a
		}
	}
	for _, ts := range runs[0].Tasks {
		a := last[ts.Name]
		switch {
		case a == nil && ts.Attempts != 0:
			r.fail("history: %s had %d attempts, the journal started none", ts.Name, ts.Attempts)
		case a != nil && (ts.Attempts != a.attempt || ts.Status != a.status):
			r.fail("history: %s %s after %d attempts, the journal %s after %d", ts.Name, ts.Status, ts.Attempts, a.status, a.attempt)
		}
	}
}
