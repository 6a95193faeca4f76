package workflow

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestExampleLoads(t *testing.T) {
	w, err := Parse("example.yaml", Example())
	if err != nil {
		t.Fatalf("example has problems:\n%v", err)
	}
	checkGraph(t, w)
	if w.Schedule == "" || w.Description == "" || len(w.Env) == 0 || w.Config.MaxParallel == 0 {
		t.Error("example leaves out a top-level field")
	}
	var retry, timeout, cof, env, deps, output, readsOutput bool
	for i, task := range w.Tasks {
		if task.Type() != TypeShell {
			t.Errorf("task %s is %s; the example must run on a bare box", task.Name, task.Type())
		}
		retry = retry || int(task.Retry) != w.Config.RetryDefault
		timeout = timeout || task.Timeout != w.Config.TimeoutDefault
		cof = cof || task.ContinueOnFailure
		env = env || len(task.Env) > 0
		deps = deps || len(w.Deps(i)) > 0
		output = output || strings.Contains(task.Shell.Command, "$PICOFLOW_OUTPUT")
		readsOutput = readsOutput || strings.Contains(task.Shell.Command, "$PICOFLOW_OUT_")
	}
	if !(retry && timeout && cof && env && deps && output && readsOutput) {
		t.Errorf("example misses a core feature: retry %v timeout %v continue_on_failure %v env %v depends_on %v output %v reads output %v",
			retry, timeout, cof, env, deps, output, readsOutput)
	}
	b := Example()
	b[0] = 'X'
	if Example()[0] == 'X' {
		t.Error("Example returned the embedded slice")
	}
}

// TestExampleReferenceTasks keeps the commented-out ssh and http tasks at
// the end of the example valid.
func TestExampleReferenceTasks(t *testing.T) {
	src := string(Example())
	_, ref, ok := strings.Cut(src, "  # Other task types")
	if !ok {
		t.Fatal("reference block not found")
	}
	head := strings.TrimSuffix(src, "  # Other task types"+ref)
	var b strings.Builder
	for _, line := range strings.Split(ref, "\n")[1:] {
		b.WriteString(strings.Replace(line, "  # ", "  ", 1) + "\n")
	}
	w, err := Parse("example-uncommented.yaml", []byte(head+b.String()))
	if err != nil {
		t.Fatalf("uncommented reference tasks have problems:\n%v\n%s", err, b.String())
	}
	var types []string
	for _, task := range w.Tasks {
		types = append(types, task.Type())
	}
	if !slices.Contains(types, TypeSSH) || !slices.Contains(types, TypeHTTP) {
		t.Errorf("task types = %v, want ssh and http among them", types)
	}
	if got := w.SecretRefs(); !slices.Equal(got, []string{"hook_token", "ssh_key_passphrase"}) {
		t.Errorf("SecretRefs = %v", got)
	}
}

// TestExampleRuns runs the example's commands with /bin/sh in dependency
// order, passing outputs the way the engine does, so the example stays
// runnable on a bare Linux box.
func TestExampleRuns(t *testing.T) {
	sh, err := exec.LookPath("/bin/sh")
	if err != nil {
		t.Skip("no /bin/sh")
	}
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("no tar")
	}
	w, err := Parse("example.yaml", Example())
	if err != nil {
		t.Fatal(err)
	}
	demo := t.TempDir()
	w.Env["DEMO_DIR"] = demo
	outputs := map[string]string{}
	for run := range 4 { // more runs than KEEP, to exercise rotate
		for _, i := range w.TopoOrder() {
			task := w.Tasks[i]
			outFile := filepath.Join(t.TempDir(), "output")
			env := os.Environ()
			for k, v := range w.Env {
				env = append(env, k+"="+v)
			}
			for _, v := range task.Env {
				env = append(env, v.Name+"="+v.Value)
			}
			for k, v := range outputs {
				env = append(env, k+"="+v)
			}
			env = append(env, "PICOFLOW_OUTPUT="+outFile)
			ctx, cancel := context.WithTimeout(t.Context(), task.Timeout)
			cmd := exec.CommandContext(ctx, sh, "-c", task.Shell.Command)
			cmd.Env, cmd.Dir = env, task.Shell.Workdir
			out, err := cmd.CombinedOutput()
			cancel()
			if err != nil {
				t.Fatalf("run %d: task %s: %v\n%s", run, task.Name, err, out)
			}
			data, err := os.ReadFile(outFile)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
				if k, v, ok := strings.Cut(line, "="); ok {
					outputs[OutputVar(task.Name, k)] = v
				}
			}
			if task.Name == "verify" && !bytes.Contains(out, []byte("verified "+demo)) {
				t.Errorf("verify printed %q", out)
			}
		}
	}
	archives, err := filepath.Glob(filepath.Join(demo, "archives", "*.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if len(archives) != 3 {
		t.Errorf("after 4 runs %d archives are left, want KEEP=3: %v", len(archives), archives)
	}
}
