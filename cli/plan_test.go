package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/picoflow/picoflow/engine/workflow"
)

// planUpdate reports whether -update (registered by another test file of
// the package, if any) asks to rewrite golden files.
func planUpdate() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// TestPlanGolden: workflows in, plan out, at a fixed now across the 2026
// spring-forward in Berlin: the missed fire in the DST gap is collapsed to
// 03:00 CEST and caught up (policy latest).
func TestPlanGolden(t *testing.T) {
	srcs := []string{
		"name: backup\nschedule: \"30 2 * * *\"\ntimezone: Europe/Berlin\ncatchup: {policy: latest, window: 48h}\n" +
			"tasks:\n  - {name: a, type: shell, config: {command: \"true\"}}\n",
		"name: tick\nschedule: \"CRON_TZ=America/New_York @every 10m\"\noverlap: allow\n" +
			"tasks:\n  - {name: a, type: shell, config: {command: \"true\"}}\n",
		"name: nightly\nschedule: \"0 1 * * *\"\ntimezone: UTC\ncatchup: {policy: all}\noverlap: queue\n" +
			"tasks:\n  - {name: a, type: shell, config: {command: \"true\"}}\n",
		"name: manual\ntasks:\n  - {name: a, type: shell, config: {command: \"true\"}}\n",
	}
	now := time.Date(2026, 3, 29, 12, 0, 0, 0, time.UTC)
	last := map[string]time.Time{
		"backup":  time.Date(2026, 3, 27, 1, 30, 0, 0, time.UTC), // 02:30 CET
		"tick":    now.Add(-7 * time.Minute),
		"nightly": time.Date(2026, 3, 26, 1, 0, 0, 0, time.UTC),
	}
	var plans []plan
	for _, src := range srcs {
		wf, err := workflow.Parse("wf.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		p, err := makePlan(wf, last[wf.Name], now, 3)
		if err != nil {
			t.Fatal(err)
		}
		plans = append(plans, p)
	}
	var text bytes.Buffer
	printPlans(&text, plans)
	js, err := json.MarshalIndent(plans, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]byte{"plan.golden": text.Bytes(), "plan.json.golden": append(js, '\n')} {
		path := filepath.Join("testdata", "plan", name)
		if planUpdate() {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (go test -run TestPlanGolden -update creates it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs (go test -run TestPlanGolden -update rewrites it)\n--- got\n%s--- want\n%s", path, got, want)
		}
	}
}

func TestFmtWindow(t *testing.T) {
	for d, want := range map[time.Duration]string{48 * time.Hour: "48h", 90 * time.Minute: "1h30m", 10 * time.Minute: "10m", 30 * time.Second: "30s", 61 * time.Second: "1m1s"} {
		if got := fmtWindow(d); got != want {
			t.Errorf("fmtWindow(%s) = %q, want %q", d, got, want)
		}
	}
}
