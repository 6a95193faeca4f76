package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// TestEndpoints checks /healthz, /readyz and /metrics, and lints the
// metrics with promtool (Debian package prometheus; scripts/deps.sh
// installs it): no error and no warning, the Go and process metrics
// included. A manual trigger is not a schedule fire.
func TestEndpoints(t *testing.T) {
	td := newTestDaemon(t, map[string]string{"manual.yaml": manualWF})
	td.start(func(o *Options) { o.Listen = "127.0.0.1:0" })
	base := "http://" + td.d.HTTPAddr()
	resp, err := Call(context.Background(), filepath.Join(td.home, "daemon.sock"), Request{Op: OpTrigger, Workflow: "manual"})
	if err != nil || !resp.OK {
		t.Fatalf("trigger: %+v %v", resp, err)
	}
	waitFor(t, 10*time.Second, "the run to finish", func() bool { return finished(td.events())[resp.Run] != "" })

	code, body := get(t, base+"/healthz")
	var health struct {
		Status string  `json:"status"`
		Age    float64 `json:"age_seconds"`
	}
	if err := json.Unmarshal(body, &health); code != 200 || err != nil || health.Status != "ok" {
		t.Errorf("/healthz: %d %s", code, body)
	}
	code, body = get(t, base+"/readyz")
	var ready struct {
		Ready       bool `json:"ready"`
		JournalOpen bool `json:"journal_open"`
		Workflows   int  `json:"workflows"`
	}
	if err := json.Unmarshal(body, &ready); code != 200 || err != nil || !ready.Ready || !ready.JournalOpen || ready.Workflows != 1 {
		t.Errorf("/readyz: %d %s", code, body)
	}

	// The metrics follow the run's events once they are durable (up to the
	// journal's sync window after run_finished is written): wait for the run.
	var text string
	waitFor(t, 10*time.Second, "/metrics to count the run", func() bool {
		code, body = get(t, base+"/metrics")
		if code != 200 {
			t.Fatalf("/metrics: %d", code)
		}
		text = string(body)
		return strings.Contains(text, `picoflow_task_duration_seconds_bucket{workflow="manual",le="+Inf"} 1`)
	})
	for _, want := range []string{
		`picoflow_runs_total{workflow="manual",status="success"} 1`,
		`picoflow_task_attempts_total{workflow="manual",status="success"} 1`,
		`picoflow_task_duration_seconds_bucket{workflow="manual",le="+Inf"} 1`,
		`picoflow_runs_started_total{workflow="manual",trigger="manual"} 1`,
		`picoflow_running_tasks 0`,
		`picoflow_queued_runs 0`,
		`picoflow_schedule_lag_seconds_count`,
		`picoflow_journal_fsync_duration_seconds_bucket{le="0.001"}`,
		`picoflow_journal_bytes_written_total`,
		`picoflow_journal_fsyncs_total`,
		`picoflow_scheduler_last_tick_timestamp_seconds`,
		`process_resident_memory_bytes`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if !strings.Contains(text, "# TYPE picoflow_runs_total counter") || !strings.Contains(text, "# TYPE picoflow_task_duration_seconds histogram") {
		t.Error("/metrics lacks TYPE lines")
	}
	if strings.Contains(text, "vmrange") {
		t.Error("/metrics has vmrange buckets; want Prometheus le buckets")
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: run scripts/deps.sh (installs the Debian package prometheus) to lint /metrics")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil { // exit 3: warnings (no help text, a counter without _total)
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	if strings.Contains(text, "picoflow_schedule_fires_total") {
		t.Errorf("a manual trigger counted as a schedule fire:\n%s", text)
	}
}

// TestUIMount: the UI serves every path but the daemon's own, and Guard
// wraps /metrics only (probes stay open).
func TestUIMount(t *testing.T) {
	td := newTestDaemon(t, map[string]string{"manual.yaml": manualWF})
	td.start(func(o *Options) {
		o.Listen = "127.0.0.1:0"
		o.UI = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ui "+r.URL.Path) })
		o.Guard = func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer t" {
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				h.ServeHTTP(w, r)
			})
		}
	})
	base := "http://" + td.d.HTTPAddr()
	for path, want := range map[string]string{"/": "ui /", "/runs/x": "ui /runs/x", "/api/runs": "ui /api/runs"} {
		if code, body := get(t, base+path); code != 200 || string(body) != want {
			t.Errorf("%s: %d %q, want the UI", path, code, body)
		}
	}
	if code, _ := get(t, base+"/metrics"); code != http.StatusUnauthorized {
		t.Errorf("/metrics without the token: %d", code)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
}
