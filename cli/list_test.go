package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	listYearly = "name: yearly\nschedule: \"0 3 1 1 *\"\ntimezone: Europe/Berlin\ntasks:\n  - {name: a, type: shell, config: {command: \"true\"}}\n"
	listDaily  = "name: daily\nschedule: \"30 6 * * *\"\ntimezone: UTC\ntasks:\n  - {name: a, type: shell, config: {command: \"exit 4\"}}\n"
	listManual = "name: manual\ntasks:\n  - {name: a, type: shell, config: {command: \"true\"}}\n"
)

// TestList lists a workflows directory before and after runs: soonest next
// fire first, the unscheduled workflow last, each with its newest run.
func TestList(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	fixClock(t, home, time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	wfDir := filepath.Join(dir, "wf")
	write(t, filepath.Join(wfDir, "yearly.yaml"), listYearly)
	write(t, filepath.Join(wfDir, "daily.yaml"), listDaily)
	write(t, filepath.Join(wfDir, "manual.yaml"), listManual)

	before := pf(t, home, "list", "--workflows", wfDir)
	if before.code != ExitOK {
		t.Fatalf("list on a new home: %v", before)
	}
	lines := strings.Split(before.stdout, "\n")
	for i, want := range []string{"WORKFLOW", "daily     30 6 * * * (UTC)", "yearly", "manual"} {
		if !strings.HasPrefix(lines[i], want) {
			t.Errorf("line %d is %q, want it to start with %q\n%s", i, lines[i], want, before.stdout)
		}
	}
	if !strings.Contains(lines[1], "2026-12-02 06:30:00 UTC  20h30m") {
		t.Errorf("daily's next fire and time left: %q", lines[1])
	}

	if out := pf(t, home, "run", filepath.Join(wfDir, "daily.yaml")); out.code != ExitFailed {
		t.Fatalf("run daily: %v", out)
	}
	if out := pf(t, home, "run", filepath.Join(wfDir, "manual.yaml")); out.code != ExitOK {
		t.Fatalf("run manual: %v", out)
	}
	out := pf(t, home, "ls", "--workflows", wfDir, "--json")
	var got []listEntry
	if err := json.Unmarshal([]byte(out.stdout), &got); err != nil {
		t.Fatalf("ls --json: %v\n%v", err, out)
	}
	status := map[string]string{}
	for _, e := range got {
		status[e.Workflow] = "-"
		if e.LastRun != nil {
			status[e.Workflow] = e.LastRun.Status
			if e.LastRun.DurationMS == nil || e.LastRun.RunID == "" {
				t.Errorf("%s: last run without duration or id: %+v", e.Workflow, e.LastRun)
			}
		}
	}
	if want := map[string]string{"daily": "failed", "manual": "success", "yearly": "-"}; !mapsEqual(status, want) {
		t.Errorf("last run status by workflow %v, want %v", status, want)
	}
	if got[1].Workflow != "yearly" || got[1].Next == nil || got[1].Next.Format(time.RFC3339) != "2027-01-01T03:00:00+01:00" ||
		got[1].Timezone != "Europe/Berlin" {
		t.Errorf("yearly: %+v", got[1])
	}
	if bad := pf(t, home, "list", "extra"); bad.code != ExitUsage {
		t.Errorf("list with an argument: %v", bad)
	}
}

// TestListWithDaemon checks that list answers the same with a daemon
// running as without one.
func TestListWithDaemon(t *testing.T) {
	bin := testBinary(t)
	e := newDmnEnv(t, bin, map[string]string{"yearly.yaml": listYearly, "manual.yaml": listManual})
	if code, _, stderr := e.run("run", filepath.Join(e.dir, "manual.yaml")); code != ExitOK {
		t.Fatalf("run manual: exit %d\n%s", code, stderr)
	}
	list := func() string {
		code, stdout, stderr := e.run("list", "--json", "--workflows", e.dir)
		if code != ExitOK {
			t.Fatalf("list: exit %d\n%s", code, stderr)
		}
		return stdout
	}
	without := list()
	d := e.startDaemon()
	with := list()
	if with != without {
		t.Errorf("list differs with a daemon running:\n--- without\n%s--- with\n%s", without, with)
	}
	if !strings.Contains(with, `"status": "success"`) {
		t.Errorf("no last run in\n%s", with)
	}
	if code := d.stop(t); code != 0 {
		t.Errorf("daemon exit %d", code)
	}
}
