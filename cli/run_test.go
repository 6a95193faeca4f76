package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/journal"
)

// result is what one picoflow command line did.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// picoflow runs a command line in-process, with no environment: every test
// passes --home.
func picoflow(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	m := &Main{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb,
		Getenv: func(string) string { return "" },
		Exit:   func(code int) { t.Errorf("forced exit %d", code) }}
	code := m.Run(context.Background(), args)
	return result{code, out.String(), errb.String()}
}

// spec is one shell task of a workflow written by writeWorkflow.
type spec struct {
	name, cmd string
	deps      []string
	extra     string // more YAML keys, one per line
}

// writeWorkflow writes a workflow file into dir. Its tasks see dir as $T.
func writeWorkflow(t *testing.T, dir, name, config string, tasks ...spec) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\nenv:\n  T: %q\n", name, dir)
	if config != "" {
		fmt.Fprintf(&b, "config: %s\n", config)
	}
	b.WriteString("tasks:\n")
	for _, s := range tasks {
		cmd, _ := json.Marshal(s.cmd)
		fmt.Fprintf(&b, "  - name: %s\n    type: shell\n    config: {command: %s}\n", s.name, cmd)
		if len(s.deps) > 0 {
			deps, _ := json.Marshal(s.deps)
			fmt.Fprintf(&b, "    depends_on: %s\n", deps)
		}
		for _, l := range strings.Split(s.extra, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				fmt.Fprintf(&b, "    %s\n", l)
			}
		}
	}
	path := filepath.Join(dir, name+".yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o640); err != nil {
		t.Fatal(err)
	}
	return path
}

// ledger is a task command that records that the task ran.
func ledger(name string) string { return fmt.Sprintf(`echo %s >> "$T/ledger"`, name) }

func readLedger(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "ledger"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// TestRunExitCodes checks the exit code and message of each way a run
// command can end in one process.
func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		name   string
		tasks  []spec
		args   []string // before the file
		noFile bool
		code   int
		stdout string
		stderr string
	}{
		{name: "success", tasks: []spec{{name: "a", cmd: "true"}, {name: "b", cmd: "true", deps: []string{"a"}}},
			code: ExitOK, stdout: "success in"},
		{name: "failed", tasks: []spec{{name: "a", cmd: "echo broken; exit 3"}, {name: "b", cmd: "true", deps: []string{"a"}}},
			code: ExitFailed, stdout: "| broken", stderr: "failed"},
		{name: "tolerated-failure", tasks: []spec{{name: "a", cmd: "exit 3", extra: "continue_on_failure: true"}},
			code: ExitOK},
		{name: "invalid-workflow", tasks: []spec{{name: "a", cmd: "true", deps: []string{"bakup"}}},
			code: ExitUsage, stderr: `unknown task "bakup"`},
		{name: "unknown-param", tasks: []spec{{name: "a", cmd: "true"}}, args: []string{"--param", "NOPE=1"},
			code: ExitUsage, stderr: "--param NOPE"},
		{name: "missing-file", noFile: true, code: ExitUsage, stderr: "no-such.yaml"},
		{name: "bad-flag", tasks: []spec{{name: "a", cmd: "true"}}, args: []string{"--no-such-flag"},
			code: ExitUsage, stderr: "unknown flag"},
		{name: "negative-max-parallel", tasks: []spec{{name: "a", cmd: "true"}}, args: []string{"--max-parallel", "-3"},
			code: ExitUsage, stderr: "--max-parallel must be 1 or more, not -3"},
		{name: "zero-max-parallel", tasks: []spec{{name: "a", cmd: "true"}}, args: []string{"--max-parallel", "0"},
			code: ExitUsage, stderr: "--max-parallel must be 1 or more, not 0"},
		{name: "negative-grace", tasks: []spec{{name: "a", cmd: "true"}}, args: []string{"--grace", "-5s"},
			code: ExitUsage, stderr: "--grace must be more than 0, not -5s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			file := filepath.Join(dir, "no-such.yaml")
			if !tc.noFile {
				file = writeWorkflow(t, dir, "wf", "", tc.tasks...)
			}
			args := append([]string{"run", "--home", filepath.Join(dir, "home")}, tc.args...)
			res := picoflow(t, append(args, file)...)
			if res.code != tc.code || !strings.Contains(res.stdout, tc.stdout) || !strings.Contains(res.stderr, tc.stderr) {
				t.Errorf("got %s\nwant exit %d, stdout with %q, stderr with %q", res, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

// crashedRun journals the start of a run of the workflow in file and of
// the given tasks, as a picoflow killed while they ran would have left it.
func crashedRun(t *testing.T, home, file string, running ...string) string {
	t.Helper()
	wf, err := workflow.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(journalDir(home, wf.Name), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	// Unique: resume and run --fresh kill the leftover processes of a run
	// id, and tests run in parallel.
	id := engine.NewRunID(time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC))
	now := time.Now().UnixNano()
	evs := []*journal.Event{{Type: journal.RunStarted, Time: now, Run: id, Workflow: wf.Name, DefHash: wf.Hash,
		Definition: string(wf.Raw), Source: wf.Source, Trigger: "manual"}}
	for _, task := range running {
		evs = append(evs, &journal.Event{Type: journal.TaskStarted, Time: now, Run: id, Task: task, Attempt: 1})
	}
	if err := j.Append(evs...); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestInDoubtExit checks exit 4 for a run held by a non-idempotent task
// that was running when picoflow died, and that resolve lets it finish
// without running that task again.
func TestInDoubtExit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file := writeWorkflow(t, dir, "pay", "",
		spec{name: "charge", cmd: ledger("charge"), extra: "idempotent: false"},
		spec{name: "ship", cmd: ledger("ship"), deps: []string{"charge"}})
	id := crashedRun(t, home, file, "charge")

	res := picoflow(t, "run", "--home", home, file)
	if res.code != ExitInDoubt || !strings.Contains(res.stderr, "picoflow resolve "+id) || !strings.Contains(res.stderr, "charge") {
		t.Fatalf("got %s\nwant exit %d naming the task and the resolve command", res, ExitInDoubt)
	}
	if !strings.Contains(res.stdout, fmt.Sprintf("resuming run %s (0 of 2 tasks already done)", id)) {
		t.Errorf("stdout does not announce the resume:\n%s", res.stdout)
	}
	if res := picoflow(t, "run", "--home", home, file); res.code != ExitInDoubt {
		t.Errorf("a second run while held: %s", res)
	}
	if res := picoflow(t, "resolve", "--home", home, id, "ship", "--succeeded"); res.code != ExitUsage {
		t.Errorf("resolving a task that is not in doubt: %s", res)
	}
	if res := picoflow(t, "resolve", "--home", home, id, "chrage", "--succeeded"); res.code != ExitNotFound ||
		!strings.Contains(res.stderr, `no task "chrage" (did you mean "charge"?)`) {
		t.Errorf("resolving a task the run does not have: %s, want exit %d with a suggestion", res, ExitNotFound)
	}
	if res := picoflow(t, "resolve", "--home", home, id, "charge", "--succeeded"); res.code != ExitOK {
		t.Fatalf("resolve: %s", res)
	}
	if res := picoflow(t, "run", "--home", home, file); res.code != ExitOK {
		t.Fatalf("run after resolve: %s", res)
	}
	if got := readLedger(t, dir); !slices.Equal(got, []string{"ship"}) {
		t.Errorf("ledger %v: the settled task must not run again", got)
	}
}

// TestDefinitionChangedExit checks exit 6 when the file changed since its
// interrupted run began: the message names both hashes and both ways on,
// and each way works.
func TestDefinitionChangedExit(t *testing.T) {
	tests := []struct {
		name   string
		next   func(home, file, id string) []string
		ledger []string
	}{
		{name: "fresh", next: func(home, file, _ string) []string { return []string{"run", "--home", home, "--fresh", file} },
			ledger: []string{"new"}},
		{name: "resume-recorded", next: func(home, _, id string) []string {
			return []string{"resume", "--home", home, id, "--use-recorded-definition"}
		}, ledger: []string{"old"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			home := filepath.Join(dir, "home")
			file := writeWorkflow(t, dir, "wf", "", spec{name: "a", cmd: ledger("old")})
			old, err := workflow.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			id := crashedRun(t, home, file)
			writeWorkflow(t, dir, "wf", "", spec{name: "a", cmd: ledger("new")})
			changed, err := workflow.Load(file)
			if err != nil {
				t.Fatal(err)
			}

			res := picoflow(t, "run", "--home", home, file)
			if res.code != ExitChanged {
				t.Fatalf("got %s\nwant exit %d", res, ExitChanged)
			}
			for _, want := range []string{id, old.Hash[:12], changed.Hash[:12], "--fresh", "resume " + id} {
				if !strings.Contains(res.stderr, want) {
					t.Errorf("stderr does not mention %q:\n%s", want, res.stderr)
				}
			}
			if res := picoflow(t, tc.next(home, file, id)...); res.code != ExitOK {
				t.Fatalf("%s", res)
			}
			if got := readLedger(t, dir); !slices.Equal(got, tc.ledger) {
				t.Errorf("ledger %v, want %v", got, tc.ledger)
			}
			st := homeState(t, home)
			if r := st.Runs[id]; r == nil || r.Status == engine.RunRunning {
				t.Errorf("the interrupted run is still open: %+v", r)
			}
		})
	}
}

// TestHelp checks the help texts and the suggestions for mistyped names.
func TestHelp(t *testing.T) {
	type helpCase struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}
	tests := []helpCase{
		{name: "exit-codes", args: []string{"help", "exit-codes"}, code: ExitOK, stdout: exitCodeLines()},
		{name: "usage", args: []string{"help"}, code: ExitOK, stdout: commandNames()},
		{name: "no-command", args: nil, code: ExitUsage, stderr: "no command given"},
		{name: "unknown-command", args: []string{"rnu"}, code: ExitUsage, stderr: `unknown command "rnu" (did you mean "run"?)`},
		{name: "unknown-help-topic", args: []string{"help", "exit-code"}, code: ExitUsage, stderr: `did you mean "exit-codes"?`},
		{name: "help-command", args: []string{"help", "run"}, code: ExitOK, stdout: []string{"Usage: picoflow run", "--fresh"}},
		{name: "command-prefix", args: []string{"hist"}, code: ExitUsage, stderr: `unknown command "hist" (did you mean "history"?)`},
		{name: "no-far-fetched-suggestion", args: []string{"bogus"}, code: ExitUsage, stderr: `unknown command "bogus" (see picoflow help)`},
	}
	for _, c := range commandNames() {
		tests = append(tests, helpCase{name: c + "--help", args: []string{c, "--help"}, code: ExitOK, stdout: []string{"Usage: picoflow " + c, "--home"}})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := picoflow(t, tc.args...)
			if res.code != tc.code || !strings.Contains(res.stderr, tc.stderr) {
				t.Errorf("got %s\nwant exit %d, stderr with %q", res, tc.code, tc.stderr)
			}
			for _, want := range tc.stdout {
				if !strings.Contains(res.stdout, want) {
					t.Errorf("stdout does not contain %q:\n%s", want, res.stdout)
				}
			}
			if strings.Contains(res.stdout, "[=true|false]") {
				t.Errorf("a bool flag renders with [=true|false]:\n%s", res.stdout)
			}
			if own, global := strings.Index(res.stdout, "\nFlags:"), strings.Index(res.stdout, "\nGlobal flags:"); strings.Contains(tc.name, "--help") &&
				(global < 0 || own > global || strings.Index(res.stdout, "--home") < global) {
				t.Errorf("the global flags do not come last, under their own heading:\n%s", res.stdout)
			}
		})
	}
}

// exitCodeLines is what `help exit-codes` must list: every code and name.
func exitCodeLines() []string {
	var out []string
	for _, e := range exitTable {
		out = append(out, fmt.Sprintf("%3d  %s", e.code, e.name))
	}
	return out
}

// TestLimitFlags refuses a task budget below 1 and a duration that is not
// positive in every command that takes them, before doing anything.
func TestLimitFlags(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	for _, args := range [][]string{
		{"resume", "--max-parallel", "-3", "20261125-100000-eeee"},
		{"resume", "--grace", "-5s", "20261125-100000-eeee"},
		{"daemon", "--max-parallel", "0"},
		{"daemon", "--grace", "-1s"},
		{"daemon", "--poll", "0s"},
	} {
		res := picoflow(t, append(append([]string{}, args...), "--home", home)...)
		if res.code != ExitUsage || !strings.Contains(res.stderr, "must be") {
			t.Errorf("%v: %s", args, res)
		}
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Errorf("a refused command created the home: %v", err)
	}
}

// TestRunLeavesHistoryToQueries: run writes no history database (its
// SQLite writes and fsyncs cost every scheduled run); the first query
// creates it from the journal and shows the run.
func TestRunLeavesHistoryToQueries(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file := writeWorkflow(t, dir, "quiet", "", spec{name: "a", cmd: "true"})
	for range 2 {
		if r := pf(t, home, "run", file); r.code != ExitOK {
			t.Fatalf("run: %+v", r)
		}
	}
	if _, err := os.Stat(filepath.Join(home, "picoflow.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("picoflow.db after run: %v, want none", err)
	}
	r := pf(t, home, "history", "--json")
	if r.code != ExitOK {
		t.Fatalf("history: %+v", r)
	}
	var runs []struct {
		Workflow string `json:"workflow"`
		Status   string `json:"status"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &runs); err != nil {
		t.Fatalf("history --json: %v\n%s", err, r.stdout)
	}
	if len(runs) != 2 || runs[0].Workflow != "quiet" || runs[0].Status != "success" {
		t.Fatalf("history after two runs: %+v", runs)
	}
	if _, err := os.Stat(filepath.Join(home, "picoflow.db")); err != nil {
		t.Fatalf("picoflow.db after history: %v", err)
	}
}
