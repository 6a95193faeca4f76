package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// More of the head start attacked from outside (headstart_test.go): many
// warm runs, first tasks that get none, kills at random moments, and an
// interrupted run not resumed.
// TestHeadStartWarmRuns: twenty runs of a one-task workflow in a warm
// home (the first held at its head start longer than a spare stays
// fresh: its task starts as any launch, in the path the head start's log
// was linked to): each run's log is where its task_started says, with the
// task's output, `picoflow logs` prints it, the ledger has a line per
// run, and history --json has each run, succeeded at its first attempt.
func TestHeadStartWarmRuns(t *testing.T) {
	bin := testBinary(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file := writeWorkflow(t, dir, "hswarm", "",
		spec{name: "a", cmd: `echo "out $PICOFLOW_RUN_ID"; echo a >> "$T/ledger"`})
	warm := runOK(t, bin, home, file)
	if err := os.Remove(filepath.Join(dir, "ledger")); err != nil {
		t.Fatal(err)
	}
	const n = 20
	ids := []string{warm}
	for i := range n {
		if i == 0 {
			hold := holdStart(t, home)
			c := start(t, bin, "run", "--home", home, file)
			headShell(t, c, dir, "a", filepath.Join(home, "logs", "hswarm"))
			hold.release()
			if code := c.wait(t); code != ExitOK {
				t.Fatalf("held run: exit %d\n%s%s", code, &c.stdout, &c.stderr)
			}
			ids = append(ids, runIDOf(t, c.stdout.String()))
			continue
		}
		ids = append(ids, runOK(t, bin, home, file))
	}
	if got := readLedger(t, dir); len(got) != n {
		t.Errorf("ledger has %d lines after %d runs", len(got), n)
	}
	logPath := map[string]string{}
	for _, ev := range homeEvents(t, home) {
		if ev.Type == journal.TaskStarted {
			if logPath[ev.Run] != "" {
				t.Errorf("run %s: a second task_started (%s %d)", ev.Run, ev.Task, ev.Attempt)
			}
			logPath[ev.Run] = ev.LogPath
		}
	}
	for _, id := range ids {
		want := "out " + id + "\n"
		if b, err := os.ReadFile(logPath[id]); err != nil || string(b) != want {
			t.Errorf("run %s: log %q: %q %v, want %q", id, logPath[id], b, err, want)
		}
		r := binCLI(t, bin, "logs", "--home", home, "hswarm", "a", "--run", id)
		if r.code != ExitOK || r.stdout != want {
			t.Errorf("picoflow logs --run %s: exit %d, %q, want %q", id, r.code, r.stdout, want)
		}
	}
	var hist []struct {
		RunID  string `json:"run_id"`
		Status string `json:"status"`
		Tasks  []struct {
			Status   string `json:"status"`
			Attempts int    `json:"attempts"`
		} `json:"tasks"`
	}
	r := binCLI(t, bin, "history", "--home", home, "--json", "--limit", "0")
	if r.code != ExitOK {
		t.Fatalf("history: exit %d %s", r.code, r.stderr)
	}
	if err := json.Unmarshal([]byte(r.stdout), &hist); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, h := range hist {
		seen[h.RunID] = true
		if h.Status != "success" || len(h.Tasks) != 1 || h.Tasks[0].Status != "success" || h.Tasks[0].Attempts != 1 {
			t.Errorf("history: run %s: %+v", h.RunID, h)
		}
	}
	if len(hist) != len(ids) {
		t.Errorf("history has %d runs, want %d", len(hist), len(ids))
	}
	for _, id := range ids {
		if !seen[id] {
			t.Errorf("history lacks run %s", id)
		}
	}
	checkLogDir(t, home, "hswarm")
}

// binCLI runs a command line of the binary to its end.
func binCLI(t *testing.T, bin string, args ...string) result {
	t.Helper()
	c := start(t, bin, args...)
	code := c.wait(t)
	return result{code, c.stdout.String(), c.stderr.String()}
}

// holdsFile waits until process pid has path open.
func holdsFile(t *testing.T, c *child, path string) {
	t.Helper()
	fds := "/proc/" + strconv.Itoa(c.cmd.Process.Pid) + "/fd"
	c.waitFor(t, "picoflow to open "+path, func() bool {
		ents, _ := os.ReadDir(fds)
		for _, e := range ents {
			if l, _ := os.Readlink(filepath.Join(fds, e.Name())); l == path {
				return true
			}
		}
		return false
	})
}

// TestHeadStartIneligible: a first task that may have no head start (its
// fork reads what may change: workdir:, user:, a ${secret:...}; an
// executor that does not gate: http) gets none, and runs once per run; so
// does a run with --fresh after an interrupted run.
func TestHeadStartIneligible(t *testing.T) {
	bin := testBinary(t)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprintln(w, "{}")
	}))
	defer srv.Close()
	shell := func(cmd, extra string) string {
		return "  - name: a\n    type: shell\n    config: {command: " + strconv.Quote(cmd) + extra + "}\n"
	}
	led := `echo a >> "$T/ledger"`
	for _, tc := range []ineligible{
		{name: "workdir", task: shell(`pwd > "$T/wd"; `+led, ", workdir: WORK")},
		{name: "secret", task: shell(led, "") + "    env: {X: \"${secret:tok}\"}\n",
			cfg: "secrets:\n  tok: {env: PF_HS_TOK}\n", env: []string{"PF_HS_TOK=s3"}},
		{name: "user", task: shell(`id -un`, "") + "    user: nobody\n", root: true},
		{name: "http", task: "  - name: a\n    type: http\n    config: {url: " + strconv.Quote(srv.URL) + "}\n",
			ran: func(string) int { return int(hits.Load()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hits.Store(0)
			tc.test(t, bin)
		})
	}
	t.Run("fresh", func(t *testing.T) { testHeadStartFresh(t, bin) })
}

// ineligible is a case of TestHeadStartIneligible: the YAML of its task
// a (WORK: a directory that exists), the home's config, picoflow's added
// environment, whether it needs root, and how many times a ran (nil: the
// ledger's lines).
type ineligible struct {
	name, task, cfg string
	env             []string
	root            bool
	ran             func(dir string) int
}

// test runs the case's workflow three times, the second held before the
// journal: no shell may wait at its gate then.
func (tc ineligible) test(t *testing.T, bin string) {
	if tc.root && os.Getuid() != 0 {
		t.Skip("user: needs root")
	}
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	task := strings.ReplaceAll(tc.task, "WORK", strconv.Quote(filepath.Join(dir, "work")))
	file := filepath.Join(dir, "hsnot.yaml")
	for p, s := range map[string]string{
		filepath.Join(dir, "work", "x"):    "",
		filepath.Join(home, "config.yaml"): tc.cfg,
		file:                               "name: hsnot\nenv: {T: " + strconv.Quote(dir) + "}\ntasks:\n" + task,
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ran := tc.ran
	switch {
	case tc.root: // nobody cannot write the ledger: its log says it ran
		ran = func(string) int { return countType(home, "hsnot", journal.TaskFinished) }
	case ran == nil:
		ran = func(dir string) int { return len(readLedger(t, dir)) }
	}
	for i, held := range []bool{false, true, false} {
		var hold *startHold
		if held {
			hold = holdStart(t, home)
		}
		c := startEnv(t, bin, tc.env, "run", "--home", home, file)
		if hold != nil {
			holdsFile(t, c, filepath.Join(home, "upgrade.lock"))
			if g := gatedShells(dir); len(g) != 0 {
				t.Errorf("shells %v wait at their gate before the journal: a head start of an ineligible task", g)
			}
			hold.release()
		}
		if code := c.wait(t); code != ExitOK {
			t.Fatalf("exit %d\n%s%s", code, &c.stdout, &c.stderr)
		}
		if got := ran(dir); got != i+1 {
			t.Errorf("after %d runs the task ran %d times", i+1, got)
		}
	}
	if tc.root {
		if b, err := os.ReadFile(lastLog(t, home)); err != nil || string(b) != "nobody\n" {
			t.Errorf("user task's log: %q %v", b, err)
		}
	}
	checkLogDir(t, home, "hsnot")
}

// testHeadStartFresh: `run --fresh` after an interrupted run makes no
// head start, cancels the run and runs a new one, a once.
func testHeadStartFresh(t *testing.T, bin string) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file := writeWorkflow(t, dir, "hsfresh", "",
		spec{name: "a", cmd: ledger("a")},
		spec{name: "b", deps: []string{"a"}, cmd: `echo $$ > "$T/pgid"; [ -e "$T/again" ] && exit 0; exec sleep 120`})
	id := killedRun(t, bin, home, file, filepath.Join(dir, "pgid"))
	if err := os.WriteFile(filepath.Join(dir, "again"), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	hold := holdStart(t, home)
	c := start(t, bin, "run", "--home", home, "--fresh", file)
	holdsFile(t, c, filepath.Join(home, "upgrade.lock"))
	if g := gatedShells(dir); len(g) != 0 {
		t.Errorf("shells %v wait at their gate before the journal: a head start with --fresh", g)
	}
	hold.release()
	if code := c.wait(t); code != ExitOK {
		t.Fatalf("--fresh: exit %d\n%s%s", code, &c.stdout, &c.stderr)
	}
	if !strings.Contains(c.stdout.String(), "interrupted run "+id+" marked canceled") {
		t.Errorf("--fresh did not cancel %s:\n%s", id, &c.stdout)
	}
	if got := readLedger(t, dir); len(got) != 2 {
		t.Errorf("ledger %v, want 2 lines (the killed run's a, the fresh run's)", got)
	}
	noneLeft(t, dir, "after --fresh")
	checkLogDir(t, home, "hsfresh")
}

// lastLog is the log path of the journal's last task_started.
func lastLog(t *testing.T, home string) string {
	t.Helper()
	p := ""
	for _, ev := range homeEvents(t, home) {
		if ev.Type == journal.TaskStarted {
			p = ev.LogPath
		}
	}
	return p
}

// TestHeadStartKillAnywhere: picoflow killed with -9 (or, one trial in
// three, SIGINT) at a random moment of a warm run's first milliseconds,
// where the head start waits while the journal opens, then run again.
// After each kill: no shell of it stays at its gate and nothing of it
// runs on; HOME/logs/WF holds only directories of runs the journal holds;
// every ledger line (the task's run id) names a run the journal holds,
// and no run's task ran more often than the journal started it. The
// delays are the attack's aim, not a wait for anything.
// PICOFLOW_HEADSTART_TRIALS sets the number of trials (default 30).
func TestHeadStartKillAnywhere(t *testing.T) {
	bin := testBinary(t)
	trials, _, rnd := tortureRand(t, "PICOFLOW_HEADSTART", "TRIALS", 30, "TestHeadStartKillAnywhere", 0x6a09e667f3bcc908)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file := writeWorkflow(t, dir, "hsany", "",
		spec{name: "a", cmd: `echo "$PICOFLOW_RUN_ID" >> "$T/ledger"`},
		spec{name: "b", deps: []string{"a"}, cmd: `true`})
	t0 := time.Now()
	runOK(t, bin, home, file)
	span := time.Since(t0) // a whole run: the kills land all over it
	kills := map[string]int{}
	runs := checkAnywhere(t, home, dir, "hsany", -1)
	for trial := range trials {
		c := start(t, bin, "run", "--home", home, file)
		time.Sleep(time.Duration(rnd.Int64N(int64(span))))
		sig, what := os.Signal(syscall.SIGKILL), "kill-9"
		if rnd.IntN(3) == 0 {
			sig, what = syscall.SIGINT, "sigint"
		}
		if c.cmd.Process.Signal(sig) != nil {
			what = "missed"
		}
		code := c.wait(t)
		if sig == syscall.SIGINT && code != ExitOK && code != ExitInterrupted && code != -1 { // -1: before its handler
			t.Fatalf("trial %d: SIGINT: exit %d\n%s%s", trial, code, &c.stdout, &c.stderr)
		}
		noneLeft(t, dir, fmt.Sprintf("trial %d, after %s", trial, what))
		n := checkAnywhere(t, home, dir, "hsany", trial)
		when := map[bool]string{false: " before run_started", true: " after"}[n > runs]
		kills[what+when]++
		runs = n
	}
	runOK(t, bin, home, file) // resumes what the last kill left, if anything
	checkAnywhere(t, home, dir, "hsany", trials)
	t.Logf("%d trials: %v", trials, kills)
}

// checkAnywhere checks the home after a trial and returns how many runs
// the journal holds.
func checkAnywhere(t *testing.T, home, dir, wf string, trial int) int {
	t.Helper()
	runs := map[string]bool{}
	starts := map[string]int{}
	for _, ev := range homeEvents(t, home) {
		if ev.Workflow != "" && ev.Workflow != wf {
			continue
		}
		switch {
		case ev.Type == journal.RunStarted:
			runs[ev.Run] = true
		case ev.Type == journal.TaskStarted && ev.Task == "a":
			starts[ev.Run]++
		}
	}
	for id, n := range count(readLedger(t, dir)) {
		if n > starts[id] {
			t.Errorf("trial %d: a of run %s ran %d time(s); the journal started it %d time(s) (run journaled: %v)",
				trial, id, n, starts[id], runs[id])
		}
	}
	ents, err := os.ReadDir(filepath.Join(home, "logs", wf))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.IsDir() || !runs[e.Name()] {
			t.Errorf("trial %d: HOME/logs/%s holds %s, no run the journal holds", trial, wf, e.Name())
		}
	}
	return len(runs)
}

// TestHeadStartNotResumed: an interrupted run waits, and the next
// `picoflow run` neither resumes it nor starts a new run: the definition
// changed (exit 6), or a SIGINT came while the head start waited (exit
// 3). The head start is dismissed unrun, only the interrupted run's
// leftover task lives on, nothing new is in HOME/logs, and the run is
// resumed afterwards with a ran once.
func TestHeadStartNotResumed(t *testing.T) {
	bin := testBinary(t)
	for _, tc := range []struct {
		name string
		want int
	}{{"changed", ExitChanged}, {"sigint", ExitInterrupted}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			home := filepath.Join(dir, "home")
			b := spec{name: "b", deps: []string{"a"}, cmd: `echo $$ > "$T/pgid"; [ -e "$T/again" ] && exit 0; exec sleep 120`}
			file := writeWorkflow(t, dir, "hsnotres", "", spec{name: "a", cmd: ledger("a")}, b)
			def, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			id := killedRun(t, bin, home, file, filepath.Join(dir, "pgid"))
			if tc.name == "changed" {
				writeWorkflow(t, dir, "hsnotres", "", spec{name: "a", cmd: ledger("a") + " # changed"}, b)
			}
			tree := logTree(t, home)
			hold := holdStart(t, home)
			c := start(t, bin, "run", "--home", home, file)
			pid, hsID := headShell(t, c, dir, "a", filepath.Join(home, "logs", "hsnotres"))
			if tc.name == "sigint" {
				if err := c.cmd.Process.Signal(syscall.SIGINT); err != nil {
					t.Fatal(err)
				}
				c.waitFor(t, "the graceful stop notice", func() bool { return strings.Contains(c.stderrText(), "stopping gracefully") })
			}
			hold.release()
			if code := c.wait(t); code != tc.want {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.want, &c.stdout, &c.stderr)
			}
			gone(t, pid, "the head start's shell to exit")
			for _, p := range processesWithEnv("T=" + dir) {
				if r := procEnv(p)["PICOFLOW_RUN_ID"]; r != "" && r != id {
					t.Errorf("process %d of run %s is alive; only the interrupted run's leftover may be", p, r)
				}
			}
			leftNothing(t, home, dir, hsID, tree, 1)
			if err := os.WriteFile(file, def, 0o640); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "again"), nil, 0o640); err != nil {
				t.Fatal(err)
			}
			r := start(t, bin, "run", "--home", home, file)
			if code := r.wait(t); code != ExitOK || !strings.Contains(r.stdout.String(), "resuming run "+id) {
				t.Fatalf("resume: exit %d\n%s%s", code, &r.stdout, &r.stderr)
			}
			if got := readLedger(t, dir); len(got) != 1 {
				t.Errorf("ledger %v after the resume, want 1 line", got)
			}
			noneLeft(t, dir, "after the resume")
			checkLogDir(t, home, "hsnotres")
		})
	}
}

// TestHeadStartRace: two `picoflow run` of one workflow at once, ten
// times: each exits 0, or 5 when the other held the workflow longer than
// it waits; every run of the task is a run the journal holds, once; no
// process or stray log directory stays.
func TestHeadStartRace(t *testing.T) {
	bin := testBinary(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file := writeWorkflow(t, dir, "hsrace", "", spec{name: "a", cmd: `echo "$PICOFLOW_RUN_ID" >> "$T/ledger"`})
	runOK(t, bin, home, file)
	codes := map[int]int{}
	for round := range 10 {
		c1 := start(t, bin, "run", "--home", home, file)
		c2 := start(t, bin, "run", "--home", home, file)
		for _, c := range []*child{c1, c2} {
			code := c.wait(t)
			codes[code]++
			if code != ExitOK && code != ExitLocked {
				t.Fatalf("round %d: exit %d\n%s%s", round, code, &c.stdout, &c.stderr)
			}
		}
		noneLeft(t, dir, fmt.Sprintf("round %d", round))
		runs := checkAnywhere(t, home, dir, "hsrace", round)
		if got := len(readLedger(t, dir)); got != runs {
			t.Errorf("round %d: the ledger has %d lines, the journal %d runs", round, got, runs)
		}
	}
	t.Logf("exit codes: %v", codes)
}
