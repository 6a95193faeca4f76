package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picoflow/picoflow/projector/projectortest"
)

// updateGolden rewrites the golden files of the projection commands
// (-update). Looked up first so that another test file may define it too.
var updateGolden = func() *bool {
	if f := flag.Lookup("update"); f != nil {
		v := f.Value.(flag.Getter).Get().(bool)
		return &v
	}
	return flag.Bool("update", false, "rewrite the golden files under testdata/")
}()

// cliOut is what one in-process command line did.
type cliOut struct {
	code           int
	stdout, stderr string
}

// scenarioHome writes the projectortest Scenario journal and its logs into
// a new home with an empty config file, fixes the clock at T0+3h (the
// Scenario's last event is at T0+2h20m5s) and returns the home.
func scenarioHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	projectortest.Scenario(t, home)
	if err := os.WriteFile(filepath.Join(home, "config.yaml"), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	fixClock(t, home, projectortest.T0.Add(3*time.Hour))
	return home
}

// tuned holds, per home, what a test set on the Main of pf's command lines
// against that home (a fixed clock, fast polls).
var tuned sync.Map // home → func(*Main)

// tune adds f to the adjustments of pf's Main for home, until t ends.
func tune(t *testing.T, home string, f func(*Main)) {
	prev, _ := tuned.Load(home)
	tuned.Store(home, func(m *Main) {
		if prev != nil {
			prev.(func(*Main))(m)
		}
		f(m)
	})
	t.Cleanup(func() { tuned.Delete(home) })
}

// fixClock makes the command lines pf runs against home see the time at.
func fixClock(t *testing.T, home string, at time.Time) {
	tune(t, home, func(m *Main) { m.Now = func() time.Time { return at } })
}

// pf runs a command line in-process against home, with TZ=UTC.
func pf(t testing.TB, home string, args ...string) cliOut {
	t.Helper()
	return pfCtx(context.Background(), t, home, args...)
}

func pfCtx(ctx context.Context, t testing.TB, home string, args ...string) cliOut {
	t.Helper()
	var out bytes.Buffer
	r := pfTo(ctx, t, home, &out, args...)
	r.stdout = out.String()
	return r
}

// pfTo is pfCtx with stdout going to w as the command writes it.
func pfTo(ctx context.Context, t testing.TB, home string, w io.Writer, args ...string) cliOut {
	t.Helper()
	var errb bytes.Buffer
	env := map[string]string{"TZ": "UTC", "PICOFLOW_HOME": home}
	m := &Main{Stdin: strings.NewReader(""), Stdout: w, Stderr: &errb,
		Getenv: func(k string) string { return env[k] },
		Exit:   func(code int) { t.Errorf("forced exit %d", code) }}
	if f, ok := tuned.Load(home); ok {
		f.(func(*Main))(m)
	}
	code := m.Run(ctx, args)
	return cliOut{code: code, stderr: errb.String()}
}

// checkGolden compares got with testdata/projector/NAME.golden, after
// replacing home by $HOME.
func checkGolden(t *testing.T, name, home, got string) {
	t.Helper()
	got = strings.ReplaceAll(got, home, "$HOME")
	path := filepath.Join("testdata", "projector", name+".golden")
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if got != string(want) {
		t.Errorf("%s: output differs from %s (go test -update rewrites it)\n--- got\n%s--- want\n%s", name, path, got, want)
	}
}

func TestHistoryGolden(t *testing.T) {
	home := scenarioHome(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"history", []string{"history"}},
		{"history-json", []string{"history", "--json"}},
		{"history-tasks", []string{"history", "--tasks"}},
		{"history-filtered", []string{"history", "backup", "--since", "2026-11-25T08:30:00Z", "--status", "failed", "--tasks"}},
		{"history-limit", []string{"history", "--limit", "1"}},
		{"history-status-interrupted", []string{"history", "--status", "interrupted", "--tasks"}},
		{"history-relative", []string{"history", "--since", "90m"}},
		{"history-until-day", []string{"history", "--since", "2026-11-24", "--until", "2026-11-24"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := pf(t, home, tc.args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			checkGolden(t, tc.name, home, r.stdout)
		})
	}
}

func TestHistoryUsage(t *testing.T) {
	home := scenarioHome(t)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"history", "--status", "sucess"}, ExitUsage, `(did you mean "success"?)`},
		{[]string{"history", "--since", "yesterday"}, ExitUsage, "is not a date"},
		{[]string{"history", "--limit", "-1"}, ExitUsage, "--limit"},
		{[]string{"history", "a", "b"}, ExitUsage, "at most one"},
		{[]string{"history", "--home", filepath.Join(home, "nope")}, ExitNotFound, "nothing has run here yet"},
	} {
		r := pf(t, home, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, r.code, r.stderr, tc.code, tc.msg)
		}
	}
	if r := pf(t, home, "history", "--help"); r.code != 0 || !strings.Contains(r.stdout, "--since") {
		t.Errorf("help: %d %s", r.code, r.stdout)
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		berlin = time.FixedZone("CET", 3600)
	}
	for _, tc := range []struct {
		in    string
		loc   *time.Location
		end   bool
		want  time.Time
		isErr bool
	}{
		{"2026-11-20", time.UTC, false, time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), false},
		{"2026-11-20", time.UTC, true, time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), false},
		{"2026-11-20", berlin, false, time.Date(2026, 11, 19, 23, 0, 0, 0, time.UTC), false},
		{"2026-11-20T10:00:00+02:00", time.UTC, false, time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC), false},
		{"7d", time.UTC, false, now.AddDate(0, 0, -7), false},
		{"12h", time.UTC, false, now.Add(-12 * time.Hour), false},
		{"30m", time.UTC, false, now.Add(-30 * time.Minute), false},
		{"1h30m", time.UTC, false, now.Add(-90 * time.Minute), false},
		{"-3d", time.UTC, false, time.Time{}, true},
		{"last week", time.UTC, false, time.Time{}, true},
		{"2026-13-01", time.UTC, false, time.Time{}, true},
	} {
		got, err := parseWhen(tc.in, now, tc.loc, tc.end)
		if (err != nil) != tc.isErr || !got.Equal(tc.want) {
			t.Errorf("parseWhen(%q): %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.isErr)
		}
	}
}

func FuzzParseWhen(f *testing.F) {
	for _, s := range []string{"2026-11-25", "2026-11-25T08:00:00Z", "7d", "12h", "30m", "-1d", "99999999999d"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		if got, err := parseWhen(s, now, time.UTC, false); err == nil && got.IsZero() {
			t.Fatalf("%q: zero time without error", s)
		}
	})
}

func TestInvalidConfigStopsCommands(t *testing.T) {
	home := scenarioHome(t)
	if err := os.WriteFile(filepath.Join(home, "config.yaml"), []byte("retention:\n  history_dayz: 3\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	r := pf(t, home, "history")
	want := home + `/config.yaml:2:3: retention.history_dayz: unknown key "history_dayz" (did you mean "history_days"?)`
	if r.code != ExitUsage || !strings.Contains(r.stderr, want) {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	// validate --config reports the same problem with exit 2 but needs no home.
	r = pf(t, home, "validate", "--config", filepath.Join(home, "config.yaml"))
	if r.code != ExitUsage || !strings.Contains(r.stderr, want) {
		t.Fatalf("validate: exit %d, stderr %s", r.code, r.stderr)
	}
}

func TestConfigHome(t *testing.T) {
	home := scenarioHome(t)
	cfg := filepath.Join(t.TempDir(), "picoflow.yaml")
	if err := os.WriteFile(cfg, []byte("paths:\n  home: "+home+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	m := &Main{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return map[string]string{"TZ": "UTC", "PICOFLOW_CONFIG": cfg}[k] }}
	if code := m.Run(context.Background(), []string{"history", "--limit", "1"}); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), projectortest.ReportOK) {
		t.Fatalf("paths.home not used:\n%s", out.String())
	}
}

// BenchmarkHistoryCommand runs `picoflow history` in-process on a home
// whose journal holds 10,000 runs of 10 tasks (100,000 task attempts),
// its projection already caught up: what a user waits for.
func BenchmarkHistoryCommand(b *testing.B) {
	home := b.TempDir()
	events := projectortest.Generate(b, home, 10000, 10)
	if err := os.WriteFile(filepath.Join(home, "config.yaml"), nil, 0o640); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if r := pf(b, home, "history"); r.code != 0 { // the first query projects everything
		b.Fatal(r.stderr)
	}
	b.Logf("first history (catch-up of %d events): %s", events, time.Since(start))
	for _, bc := range []struct {
		name string
		args []string
	}{
		{"default", []string{"history"}},
		{"tasks", []string{"history", "--tasks"}},
		{"json", []string{"history", "--json"}},
		{"workflow-since-status", []string{"history", "wf03", "--since", "2026-11-30", "--status", "success", "--tasks"}},
		{"json-all", []string{"history", "--json", "--limit", "0"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if r := pf(b, home, bc.args...); r.code != 0 {
					b.Fatal(r.stderr)
				}
			}
		})
	}
}

// TestHistoryStatusRunning tells running from interrupted runs by whether a
// process holds their workflow, as the STATUS column does.
func TestHistoryStatusRunning(t *testing.T) {
	home := scenarioHome(t)
	release, err := holdWorkflow(home, "backup")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for status, want := range map[string]string{"running": projectortest.BackupLive, "interrupted": projectortest.SyncHeld} {
		r := pf(t, home, "history", "--status", status)
		if r.code != 0 || strings.Count(r.stdout, "\n") != 2 || !strings.Contains(r.stdout, want+"  ") {
			t.Errorf("--status %s: exit %d, want only %s:\n%s%s", status, r.code, want, r.stdout, r.stderr)
		}
	}
}

// TestHistoryShutdownInterruptedTask stops a run while a task runs and
// lets the grace expire: history and status show that task interrupted
// (not pending) and the task that never started pending.
func TestHistoryShutdownInterruptedTask(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file := writeWorkflow(t, dir, "stopped", "",
		spec{name: "long", cmd: `touch "$T/started"; sleep 30`},
		spec{name: "never", cmd: "true", deps: []string{"long"}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if _, err := os.Stat(filepath.Join(dir, "started")); err == nil {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	if r := pfCtx(ctx, t, home, "run", "--grace", "100ms", file); r.code != ExitInterrupted {
		t.Fatalf("run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := pf(t, home, "history", "--json")
	var runs []runJSON
	if err := json.Unmarshal([]byte(r.stdout), &runs); err != nil || len(runs) != 1 || len(runs[0].Tasks) != 2 {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if got := runs[0].Tasks; got[0].Status != "interrupted" || got[1].Status != "pending" {
		t.Errorf("history: long %s, never %s; want interrupted, pending", got[0].Status, got[1].Status)
	}
	r = pf(t, home, "status", "--json")
	var st statusJSON
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st.Live) != 1 {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if got := st.Live[0].Tasks; got[0].State != "interrupted" || got[1].State != "pending" {
		t.Errorf("status: long %s, never %s; want interrupted, pending", got[0].State, got[1].State)
	}
}
