package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

var (
	builtOnce sync.Once
	builtBin  string
	builtErr  string
)

// testBinary builds cmd/picoflow once per test process, for the tests of
// this file and the ones after it that need the real binary on PATH.
func testBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	builtOnce.Do(func() {
		dir, err := os.MkdirTemp("", "picoflow-bin-")
		if err != nil {
			builtErr = err.Error()
			return
		}
		builtBin = filepath.Join(dir, "picoflow")
		build := exec.Command("go", "build", "-o", builtBin, "./cmd/picoflow")
		build.Dir = ".."
		if out, err := build.CombinedOutput(); err != nil {
			builtErr = err.Error() + "\n" + string(out)
		}
	})
	if builtErr != "" {
		t.Fatalf("go build: %s", builtErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// TestCompletion sources the script of `picoflow completion SHELL` in a real
// bash, zsh and fish (those installed; scripts/deps.sh installs all three)
// and completes command lines as the shell would on TAB, against a home
// with a run in its history and a workflows directory named by the global
// config. bash calls its completion function with COMP_WORDS and
// COMP_CWORD set; zsh calls _picoflow with words and CURRENT set and
// compadd and _files replaced by functions that print; fish runs
// `complete -C LINE`.
func TestCompletion(t *testing.T) {
	bin := testBinary(t)
	dir := t.TempDir()
	home, wfDir := filepath.Join(dir, "home"), filepath.Join(dir, "workflows")
	write(t, filepath.Join(wfDir, "nightly.yaml"), "name: nightly\ntasks:\n  - {name: a, type: shell, config: {command: 'true'}}\n")
	write(t, filepath.Join(dir, "config.yaml"), "paths:\n  workflows_dir: "+wfDir+"\n")
	write(t, filepath.Join(dir, "hello.yaml"), "name: hello\ntasks:\n  - {name: build, type: shell, config: {command: 'echo hi'}}\n")
	t.Setenv("PICOFLOW_CONFIG", filepath.Join(dir, "config.yaml"))
	if r := pf(t, home, "run", filepath.Join(dir, "hello.yaml")); r.code != 0 {
		t.Fatalf("run: %d %s", r.code, r.stderr)
	}
	runID := lastRun(t, home, "hello")

	cases := []struct {
		name  string
		words []string // after "picoflow"; the last is the word under the cursor
		want  []string
		not   []string
	}{
		{"commands", []string{""}, []string{"completion", "help", "run", "validate", "version"}, nil},
		{"command-prefix", []string{"va"}, []string{"validate"}, []string{"version", "run"}},
		{"flags", []string{"run", "--f"}, []string{"--fresh"}, []string{"--follow", "--home"}},
		{"global-flags", []string{"history", "--h"}, []string{"--home", "--help"}, nil},
		{"flag-values", []string{"history", "--status", "f"}, []string{"failed"}, []string{"success"}},
		{"workflows-dir-and-history", []string{"trigger", ""}, []string{"nightly", "hello"}, nil},
		{"workflow-prefix", []string{"history", "n"}, []string{"nightly"}, []string{"hello"}},
		{"run-ids", []string{"resume", ""}, []string{runID}, nil},
		{"run-flag", []string{"logs", "hello", "build", "--run", ""}, []string{runID}, nil},
		{"rerun-from-tasks", []string{"rerun", runID, "--from", ""}, []string{"build"}, nil},
		{"graph-formats", []string{"graph", "--format", "m"}, []string{"mermaid"}, []string{"dot"}},
		{"list-alias", []string{"l"}, []string{"list", "ls", "logs"}, nil},
		{"files", []string{"validate", filepath.Join(dir, "hel")}, []string{filepath.Join(dir, "hello.yaml")}, nil},
		{"shells", []string{"completion", "z"}, []string{"zsh"}, []string{"bash"}},
		{"help-topics", []string{"help", "ex"}, []string{"exit-codes"}, nil},
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		t.Run(sh, func(t *testing.T) {
			path, err := exec.LookPath(sh)
			if err != nil {
				t.Skipf("no %s (scripts/deps.sh installs it)", sh)
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					got := shellComplete(t, sh, path, bin, home, tc.words)
					for _, w := range tc.want {
						if !slices.Contains(got, w) {
							t.Errorf("completing %q: want %q among %q", tc.words, w, got)
						}
					}
					for _, w := range tc.not {
						if slices.Contains(got, w) {
							t.Errorf("completing %q: %q offered: %q", tc.words, w, got)
						}
					}
				})
			}
		})
	}
}

// completionDrivers run the completion of one shell for the command line
// in the positional parameters ("picoflow" "va"), printing a candidate per
// line.
var completionDrivers = map[string]string{
	"bash": `set -e
source <(picoflow completion bash)
COMP_WORDS=("$@")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
_picoflow
printf '%s\n' "${COMPREPLY[@]}"`,
	"zsh": `compadd() { [[ $1 == -- ]] && shift; print -l -- "$@" }
_files() { print -l -- "${words[CURRENT]}"*(N) }
compdef() { : }
source <(picoflow completion zsh)
words=("$@")
CURRENT=$#
_picoflow`,
	"fish": `picoflow completion fish | source
complete -C (string join ' ' -- $argv)`,
}

func shellComplete(t *testing.T, sh, path, bin, home string, words []string) []string {
	t.Helper()
	args := map[string][]string{
		"bash": {"--norc", "--noprofile", "-c", completionDrivers["bash"], "bash"},
		"zsh":  {"-f", "-c", completionDrivers["zsh"], "zsh"},
		"fish": {"--no-config", "-c", completionDrivers["fish"]},
	}[sh]
	cmd := exec.Command(path, append(append(args, "picoflow"), words...)...)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"), "PICOFLOW_HOME="+home)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", sh, err, out)
	}
	var got []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			got = append(got, f[0]) // fish adds a tab and a description
		}
	}
	return got
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCompletionScriptsParse checks each script's syntax with its shell,
// where the shell is installed (bash always is; zsh and fish may not be).
func TestCompletionScriptsParse(t *testing.T) {
	for sh, script := range completionScripts {
		t.Run(sh, func(t *testing.T) {
			bin, err := exec.LookPath(sh)
			if err != nil {
				t.Skipf("no %s", sh)
			}
			f := filepath.Join(t.TempDir(), "picoflow."+sh)
			write(t, f, script)
			if out, err := exec.Command(bin, "-n", f).CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", sh, err, out)
			}
		})
	}
	if r := pf(t, t.TempDir(), "completion", "tcsh"); r.code != ExitUsage {
		t.Errorf("completion tcsh: exit %d, want %d", r.code, ExitUsage)
	}
}
