package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/cli/config"
	"github.com/picoflow/picoflow/engine/workflow"
)

func TestWorkflowBase(t *testing.T) {
	builtin := workflow.BuiltinConfig()
	tests := []struct {
		name string
		cfg  *config.Config
		want workflow.Config
	}{
		{name: "no config", cfg: nil, want: builtin},
		{name: "no defaults", cfg: config.Default(), want: builtin},
		{name: "every default", cfg: &config.Config{Defaults: config.Defaults{
			MaxParallel: 2, Retry: 1, Timeout: 10 * time.Minute, ShutdownGrace: time.Minute,
			Backoff: config.Backoff{Initial: 5 * time.Second, Multiplier: 3, Max: time.Hour},
		}}, want: workflow.Config{
			MaxParallel: 2, RetryDefault: 1, TimeoutDefault: 10 * time.Minute, ShutdownGrace: time.Minute,
			Backoff: workflow.Backoff{Initial: 5 * time.Second, Multiplier: 3, Max: time.Hour},
		}},
		{name: "zero fields keep the built-ins", cfg: &config.Config{Defaults: config.Defaults{
			Retry: 2, Backoff: config.Backoff{Max: 10 * time.Minute},
		}}, want: func() workflow.Config {
			c := builtin
			c.RetryDefault, c.Backoff.Max = 2, 10*time.Minute
			return c
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := workflowBase(tt.cfg); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// cliRun runs a command line in-process through New, with its output
// captured.
func cliRun(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	m := New()
	m.Stdin, m.Stdout, m.Stderr = strings.NewReader(""), &out, &errb
	code := m.Run(context.Background(), args)
	return result{code, out.String(), errb.String()}
}

// attempts returns the attempts of every task of run id, from picoflow
// replay --json.
func attempts(t *testing.T, home, id string) map[string]int {
	t.Helper()
	res := cliRun(t, "replay", "--home", home, "--json", id)
	if res.code != ExitOK {
		t.Fatalf("replay: %s", res)
	}
	var final replayFinal
	sc := bufio.NewScanner(strings.NewReader(res.stdout))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"event":"final_state"`) {
			if err := json.Unmarshal(sc.Bytes(), &final); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := map[string]int{}
	for _, task := range final.Tasks {
		got[task.Name] = task.Attempts
	}
	return got
}

// lastRun returns the id of the newest run of workflow name in home.
func lastRun(t *testing.T, home, name string) string {
	t.Helper()
	st := homeState(t, home)
	var id string
	for _, r := range st.Runs {
		if r.Workflow == name && r.ID > id {
			id = r.ID
		}
	}
	if id == "" {
		t.Fatalf("no run of %s in the journal", name)
	}
	return id
}

// TestGlobalDefaultsApply checks that the global config's defaults reach
// the runs of workflows that do not set the value, and that a workflow's
// config and a task's own key win over them.
func TestGlobalDefaultsApply(t *testing.T) {
	t.Setenv("PICOFLOW_CONFIG", "")
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	cfg := filepath.Join(dir, "config.yaml")
	const defaults = "defaults:\n  retry: 2\n  backoff: {initial: 10ms, multiplier: 1, max: 10ms}\n"
	if err := os.WriteFile(cfg, []byte(defaults), 0o640); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		config string // the workflow's config:
		extra  string // the task's keys
		want   int    // attempts
	}{
		{name: "global", want: 3},
		{name: "task-retry-zero", extra: "retry: 0", want: 1},
		{name: "workflow-retry-default", config: "{retry_default: 1}", want: 2},
		{name: "task-over-workflow", config: "{retry_default: 0}", extra: "retry: 3", want: 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := writeWorkflow(t, dir, tc.name, tc.config, spec{name: "a", cmd: "exit 1", extra: tc.extra})
			if res := cliRun(t, "run", "--home", home, "--config", cfg, file); res.code != ExitFailed {
				t.Fatalf("run: %s", res)
			}
			if got := attempts(t, home, lastRun(t, home, tc.name))["a"]; got != tc.want {
				t.Errorf("task a ran %d attempts, want %d", got, tc.want)
			}
		})
	}

	// A resumed run's recorded definition is loaded over the same defaults.
	t.Run("resume", func(t *testing.T) {
		file := writeWorkflow(t, dir, "resumed", "", spec{name: "a", cmd: "exit 1"})
		id := crashedRun(t, home, file)
		if res := cliRun(t, "resume", "--home", home, "--config", cfg, id); res.code != ExitFailed {
			t.Fatalf("resume: %s", res)
		}
		if got := attempts(t, home, id)["a"]; got != 3 {
			t.Errorf("task a ran %d attempts, want 3", got)
		}
	})
}

// TestValidateGlobalDefaults checks that validate loads workflows over the
// global defaults: a backoff that conflicts with them is a problem of the
// workflow file, and the same file is valid over the built-ins.
func TestValidateGlobalDefaults(t *testing.T) {
	t.Setenv("PICOFLOW_CONFIG", "")
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("defaults:\n  backoff: {max: 1m}\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	file := writeWorkflow(t, dir, "wf", "{backoff: {initial: 2m}}", spec{name: "a", cmd: "true"})

	if res := cliRun(t, "validate", "--home", home, file); res.code != ExitOK {
		t.Fatalf("over the built-in defaults: %s", res)
	}
	res := cliRun(t, "validate", "--home", home, "--config", cfg, file)
	want := file + ":4:19: config.backoff.max: the global default max 1m0s is less than initial 2m0s"
	if res.code != ExitUsage || !strings.Contains(res.stderr, want) {
		t.Fatalf("got %s\nwant exit %d, stderr with %q", res, ExitUsage, want)
	}
	// HOME/config.yaml is found as every other command finds it.
	if err := os.MkdirAll(home, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "config.yaml"), []byte("defaults:\n  backoff: {max: 1m}\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if res := cliRun(t, "validate", "--home", home, file); res.code != ExitUsage || !strings.Contains(res.stderr, "global default max") {
		t.Fatalf("with HOME/config.yaml: %s", res)
	}
}

// TestWorkflowMemoryLimit checks the soft heap limit and GOGC of the
// commands that load workflows and of the queries: the defaults without a setting, the
// environment's and the config's resources: over them.
func TestWorkflowMemoryLimit(t *testing.T) {
	t.Setenv("PICOFLOW_CONFIG", "")
	before, gogc := debug.SetMemoryLimit(-1), debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetMemoryLimit(before); debug.SetGCPercent(gogc) })
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file := writeWorkflow(t, dir, "wf", "", spec{name: "a", cmd: "true"})

	debug.SetMemoryLimit(math.MaxInt64)
	if res := cliRun(t, "validate", "--home", home, file); res.code != ExitOK {
		t.Fatalf("validate: %s", res)
	}
	if got := debug.SetMemoryLimit(-1); got != workflowMemoryLimit {
		t.Errorf("validate: memory limit %d, want the default %d", got, workflowMemoryLimit)
	}
	if got := debug.SetGCPercent(100); got != validateGOGC {
		t.Errorf("validate: GOGC %d, want the default %d", got, validateGOGC)
	}
	if res := cliRun(t, "run", "--home", home, file); res.code != ExitOK {
		t.Fatalf("run: %s", res)
	}
	if got := debug.SetGCPercent(100); got != smallRunGOGC {
		t.Errorf("run of 1 task: GOGC %d, want the small runs' %d", got, smallRunGOGC)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	if res := cliRun(t, "history", "--home", home); res.code != ExitOK {
		t.Fatalf("history: %s", res)
	}
	if got := debug.SetGCPercent(100); got != queryGOGC {
		t.Errorf("history: GOGC %d, want the default %d", got, queryGOGC)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("history: memory limit %d, want none", got)
	}

	debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOMEMLIMIT", "100MiB") // read by the runtime at start; here they only have to be left alone
	t.Setenv("GOGC", "100")
	if res := cliRun(t, "validate", "--home", home, file); res.code != ExitOK {
		t.Fatalf("validate: %s", res)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("with $GOMEMLIMIT: memory limit %d, want it untouched", got)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with $GOGC: GOGC %d, want it untouched", got)
	}
	if res := cliRun(t, "run", "--home", home, file); res.code != ExitOK {
		t.Fatalf("run: %s", res)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("run with $GOGC: GOGC %d, want it untouched", got)
	}
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("GOGC", "")

	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("resources:\n  memory_limit: 100MiB\n  gogc: 80\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if res := cliRun(t, "run", "--home", home, "--config", cfg, file); res.code != ExitOK {
		t.Fatalf("run: %s", res)
	}
	if got := debug.SetMemoryLimit(-1); got != 100<<20 {
		t.Errorf("run with resources.memory_limit: memory limit %d, want %d", got, 100<<20)
	}
	if got := debug.SetGCPercent(100); got != 80 {
		t.Errorf("run with resources.gogc: GOGC %d, want 80", got)
	}
}

// TestBigRunGOGC: a run of more than smallRunTasks tasks keeps the
// workflow commands' GOGC (TestWorkflowMemoryLimit checks a small run's).
func TestBigRunGOGC(t *testing.T) {
	t.Setenv("PICOFLOW_CONFIG", "")
	gogc := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(gogc) })
	dir := t.TempDir()
	big := make([]spec, smallRunTasks+1)
	for i := range big {
		big[i] = spec{name: fmt.Sprintf("t%d", i), cmd: "true"}
	}
	file := writeWorkflow(t, dir, "big", "", big...)
	if res := cliRun(t, "run", "--home", filepath.Join(dir, "home"), file); res.code != ExitOK {
		t.Fatalf("run: %s", res)
	}
	if got := debug.SetGCPercent(100); got != workflowGOGC {
		t.Errorf("run of %d tasks: GOGC %d, want the default %d", len(big), got, workflowGOGC)
	}
}
