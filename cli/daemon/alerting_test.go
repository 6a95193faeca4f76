package daemon

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const failingWF = `name: failing
tasks:
  - {name: a, type: shell, config: {command: "exit 3"}}
`

// TestAlertingMetrics runs a succeeding and a failing workflow in a
// daemon, checks the series the alerting rules use, then starts a second
// daemon on the same home: the per-workflow values survive the restart.
func TestAlertingMetrics(t *testing.T) {
	td := newTestDaemon(t, map[string]string{"manual.yaml": manualWF, "failing.yaml": failingWF})
	td.start(func(o *Options) { o.Listen = "127.0.0.1:0" })
	for _, wf := range []string{"manual", "failing"} {
		resp, err := Call(context.Background(), filepath.Join(td.home, "daemon.sock"), Request{Op: OpTrigger, Workflow: wf})
		if err != nil || !resp.OK {
			t.Fatalf("trigger %s: %+v %v", wf, resp, err)
		}
		waitFor(t, 10*time.Second, "the run of "+wf+" to finish", func() bool { return finished(td.events())[resp.Run] != "" })
	}
	want := []string{
		`picoflow_workflow_last_run_status{workflow="manual",status="success"} 1`,
		`picoflow_workflow_last_run_status{workflow="manual",status="failed"} 0`,
		`picoflow_workflow_last_run_status{workflow="manual",status="canceled"} 0`,
		`picoflow_workflow_last_run_status{workflow="failing",status="failed"} 1`,
		`picoflow_workflow_last_run_status{workflow="failing",status="success"} 0`,
	}
	// The metrics see a run's end just after its run_finished is durable.
	var first string
	waitFor(t, 10*time.Second, "both runs in /metrics", func() bool {
		first = scrape(t, td)
		return strings.Contains(first, want[0]) && strings.Contains(first, want[3])
	})
	for _, w := range append(want, `picoflow_run_duration_seconds_bucket{workflow="manual",le="+Inf"} 1`,
		`# TYPE picoflow_run_duration_seconds histogram`) {
		if !strings.Contains(first, w) {
			t.Errorf("/metrics lacks %s", w)
		}
	}
	success := regexp.MustCompile(`picoflow_workflow_last_success_timestamp_seconds\{workflow="manual"\} (\S+)`)
	m := success.FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("no last success of manual in\n%s", first)
	}
	if strings.Contains(first, `picoflow_workflow_last_success_timestamp_seconds{workflow="failing"}`) {
		t.Error("a workflow that never succeeded has a last success")
	}
	if err := td.stop(); err != nil {
		t.Fatal(err)
	}

	td.start(func(o *Options) { o.Listen = "127.0.0.1:0" })
	again := scrape(t, td)
	for _, w := range want {
		if !strings.Contains(again, w) {
			t.Errorf("after a restart /metrics lacks %s", w)
		}
	}
	if m2 := success.FindStringSubmatch(again); m2 == nil || m2[1] != m[1] {
		t.Errorf("last success of manual after a restart %v, before %s", m2, m[1])
	}
}

func scrape(t *testing.T, td *testDaemon) string {
	t.Helper()
	code, body := get(t, "http://"+td.d.HTTPAddr()+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	return string(body)
}

// TestAlertRules checks the example alerting rules with promtool: their
// syntax (check rules) and that each alert fires on the series the daemon
// exposes (test rules: examples/alerts/picoflow.rules.test.yml).
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: run scripts/deps.sh (installs the Debian package prometheus)")
	}
	dir := filepath.Join("..", "..", "examples", "alerts")
	for _, args := range [][]string{
		{"check", "rules", "picoflow.rules.yml"},
		{"test", "rules", "picoflow.rules.test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
