package engine

import (
	"testing"

	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/executors"
)

// TestReadsAtFork: which tasks get no spare, because their fork reads
// what an earlier task may change (a workdir, a secret).
func TestReadsAtFork(t *testing.T) {
	sh := func(cmd, dir string, env ...executors.EnvVar) *workflow.Task {
		return &workflow.Task{Task: executors.Task{Name: "t", Env: env,
			Shell: &executors.ShellConfig{Command: cmd, Workdir: dir}}}
	}
	tests := []struct {
		name   string
		task   *workflow.Task
		wfEnv  map[string]string
		params map[string]string
		want   bool
	}{
		{"plain", sh(`echo "${HOME}"`, ""), nil, nil, false},
		{"env-ref", sh(`echo ${env:HOME}`, ""), nil, nil, false},
		{"workdir", sh("true", "/srv/build"), nil, nil, true},
		{"secret-in-command", sh("curl -u ${secret:tok} x", ""), nil, nil, true},
		{"secret-in-task-env", sh("true", "", executors.EnvVar{Name: "TOK", Value: "${secret:tok}"}), nil, nil, true},
		{"secret-in-workflow-env", sh("true", ""), map[string]string{"TOK": "${secret:tok}"}, nil, true},
		{"workflow-env-replaced-by-param", sh("true", ""), map[string]string{"TOK": "${secret:tok}"}, map[string]string{"TOK": "x"}, false},
		{"user", &workflow.Task{Task: executors.Task{Name: "t", User: "backup", Shell: &executors.ShellConfig{Command: "true"}}}, nil, nil, true},
		{"http-url", &workflow.Task{Task: executors.Task{Name: "t", HTTP: &executors.HTTPConfig{URL: "https://x/${secret:tok}"}}}, nil, nil, true},
	}
	for _, tc := range tests {
		if tc.name == "plain" { // the common case costs a spare nothing
			if n := testing.AllocsPerRun(10, func() { readsAtFork(tc.task, tc.wfEnv, tc.params) }); n > 0 {
				t.Errorf("%s: %v allocations", tc.name, n)
			}
		}
		if got := readsAtFork(tc.task, tc.wfEnv, tc.params); got != tc.want {
			t.Errorf("%s: readsAtFork = %v, want %v", tc.name, got, tc.want)
		}
	}
}
