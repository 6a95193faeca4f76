package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/picoflow/picoflow/projector/projectortest"
)

// TestRunIDPrefix gives every command that takes a RUN_ID a unique prefix
// of one, and an ambiguous one.
func TestRunIDPrefix(t *testing.T) {
	home := scenarioHome(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // in stdout+stderr
	}{
		{"logs", []string{"logs", "report", "fetch", "--run", "20261125-0830"}, 0, "run " + projectortest.ReportFailed},
		{"logs ambiguous", []string{"logs", "report", "fetch", "--run", "20261125-0"}, ExitUsage, `run id prefix "20261125-0" is ambiguous`},
		{"replay", []string{"replay", "20261125-0830"}, 0, "run " + projectortest.ReportFailed},
		{"resolve", []string{"resolve", "20261125-1010", "apply", "--failed"}, 0, "task apply of run " + projectortest.SyncHeld + " resolved"},
		{"resolve unknown", []string{"resolve", "20261199", "apply", "--failed"}, ExitNotFound, "no run 20261199"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := pf(t, home, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stdout+r.stderr, tc.want) {
				t.Errorf("exit %d, want %d with %q\n%s%s", r.code, tc.code, tc.want, r.stdout, r.stderr)
			}
		})
	}
}

// TestResumeRunIDPrefix resumes an interrupted run by a prefix of its id,
// with the old --use-recorded-definition flag, which says it is not needed.
func TestResumeRunIDPrefix(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file := writeWorkflow(t, dir, "wf", "", spec{name: "a", cmd: ledger("a")})
	id := crashedRun(t, home, file)
	res := picoflow(t, "resume", "--home", home, id[:12], "--use-recorded-definition")
	if res.code != ExitOK || !strings.Contains(res.stdout, "resuming run "+id) {
		t.Fatalf("resume by prefix: %s", res)
	}
	if !strings.Contains(res.stderr, "--use-recorded-definition is not needed") {
		t.Errorf("the flag that does nothing does not say so: %s", res)
	}
	if h := picoflow(t, "resume", "--help"); strings.Contains(h.stdout, "use-recorded-definition") {
		t.Errorf("resume --help still offers --use-recorded-definition:\n%s", h.stdout)
	}
}
