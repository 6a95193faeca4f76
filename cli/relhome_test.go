package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRelativeHome runs a workflow with a relative --home and then reads
// its log with the home's absolute path from another directory. The
// journal records each attempt's log path: made from a relative home, it
// named a file relative to whatever directory a later command ran in, and
// picoflow logs said the log was gone (exit 8) while it was there.
func TestRelativeHome(t *testing.T) {
	bin := testBinary(t)
	dir := t.TempDir()
	file := writeWorkflow(t, dir, "rel", "", spec{name: "a", cmd: "echo hello-from-a"})
	pf := func(cwd string, args ...string) (string, int) {
		t.Helper()
		c := exec.Command(bin, args...)
		c.Dir = cwd
		c.Env = append(c.Environ(), "PICOFLOW_HOME=", "PICOFLOW_CONFIG=")
		out, err := c.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	if out, code := pf(dir, "run", "--home", "home", filepath.Base(file)); code != ExitOK {
		t.Fatalf("run: exit %d\n%s", code, out)
	}
	out, code := pf(t.TempDir(), "logs", "--home", filepath.Join(dir, "home"), "rel", "a")
	if code != ExitOK || !strings.Contains(out, "hello-from-a") {
		t.Errorf("logs from another directory: exit %d\n%s", code, out)
	}
}

// TestGCCopiedHome collects a copy of a home and checks that the original
// keeps every log directory: the copy's journal names the original's log
// directories (where its runs wrote), and gc removed them along with the
// copy's own.
func TestGCCopiedHome(t *testing.T) {
	bin := testBinary(t)
	dir := t.TempDir()
	orig, copied := filepath.Join(dir, "orig"), filepath.Join(dir, "copy")
	file := writeWorkflow(t, dir, "cp", "", spec{name: "a", cmd: "echo hello-from-a"})
	for range 3 {
		c := start(t, bin, "run", "--home", orig, file)
		if code := c.wait(t); code != ExitOK {
			t.Fatalf("run: exit %d\n%s%s", code, &c.stdout, &c.stderr)
		}
	}
	before, err := os.ReadDir(filepath.Join(orig, "logs", "cp"))
	if err != nil || len(before) != 3 {
		t.Fatalf("log directories of the original: %d, %v", len(before), err)
	}
	if err := os.CopyFS(copied, os.DirFS(orig)); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("retention:\n  max_runs_per_workflow: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := start(t, bin, "gc", "--home", copied, "--config", cfg)
	if code := c.wait(t); code != ExitOK {
		t.Fatalf("gc: exit %d\n%s%s", code, &c.stdout, &c.stderr)
	}
	if after, _ := os.ReadDir(filepath.Join(copied, "logs", "cp")); len(after) != 1 {
		t.Errorf("the copy keeps %d log directories, want 1 (max_runs_per_workflow: 1)", len(after))
	}
	if after, _ := os.ReadDir(filepath.Join(orig, "logs", "cp")); len(after) != len(before) {
		t.Errorf("gc of the copy removed %d log directories of the original\n%s", len(before)-len(after), &c.stdout)
	}
}
