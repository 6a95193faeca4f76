package cli

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/picoflow/picoflow/cli/config"
	"github.com/picoflow/picoflow/journal"
)

// uiWorkflows are the workflows the UI tests run for real: one that
// succeeds with an output, one whose task fails after retries.
var uiWorkflows = map[string]string{
	"etl.yaml": `name: etl
schedule: "0 3 * * *"
tasks:
  - name: extract
    type: shell
    config: {command: "echo extracting; echo 'rows=<script>alert(1)</script>' >> $PICOFLOW_OUTPUT"}
  - name: transform
    type: shell
    depends_on: [extract]
    config: {command: "echo '<b>transforming</b>'"}
  - name: load
    type: shell
    depends_on: [transform]
    config: {command: "echo loaded"}
`,
	"flaky.yaml": `name: flaky
config:
  backoff: {initial: 50ms}
tasks:
  - name: prepare
    type: shell
    config: {command: "echo ready"}
  - name: upload
    type: shell
    depends_on: [prepare]
    retry: 2
    config: {command: "echo 'connection refused' >&2; exit 3"}
  - name: checksum
    type: shell
    depends_on: [prepare]
    config: {command: "echo 'sha256 ok'"}
  - name: notify
    type: shell
    depends_on: [upload, checksum]
    config: {command: "echo never"}
`,
}

// uiHome is a home in which etl succeeded and flaky failed after its
// retries (both run for real); it returns the home and the workflows
// directory.
func uiHome(t *testing.T) (home, dir string) {
	t.Helper()
	root := t.TempDir()
	home, dir = filepath.Join(root, "home"), filepath.Join(root, "workflows")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, src := range uiWorkflows {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if r := pf(t, home, "run", filepath.Join(dir, "etl.yaml")); r.code != ExitOK {
		t.Fatalf("run etl: %d %s", r.code, r.stderr)
	}
	if r := pf(t, home, "run", filepath.Join(dir, "flaky.yaml")); r.code != ExitFailed {
		t.Fatalf("run flaky: %d %s", r.code, r.stderr)
	}
	return home, dir
}

// uiServer serves the UI of home in-process, as picoflow ui does.
func uiServer(t testing.TB, home, dir, token string) *httptest.Server {
	t.Helper()
	cfg := config.Default()
	cfg.UI.Token = token
	env := map[string]string{"TZ": "UTC"}
	m := &Main{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(k string) string { return env[k] }}
	g := &globals{home: home, cfg: cfg, log: slog.New(slog.DiscardHandler)}
	src := m.newUISource(g, dir)
	t.Cleanup(src.close)
	srv := httptest.NewServer(m.uiHandler(g, src, g.log))
	t.Cleanup(srv.Close)
	return srv
}

func httpGet(t *testing.T, url string) (int, string) {
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
	return resp.StatusCode, string(b)
}

// runIDs returns the newest run id of each workflow of the home.
func runIDs(t *testing.T, home string) map[string]string {
	t.Helper()
	ids := map[string]string{}
	scanHome(t, home, func(e *journal.Event) {
		if e.Type == journal.RunStarted {
			ids[e.Workflow] = e.Run
		}
	})
	return ids
}

// uniquePrefix returns the shortest prefix of run id that names no other
// run of the home (run ids of one second differ in their random part).
func uniquePrefix(t *testing.T, home, id string) string {
	t.Helper()
	var others []string
	scanHome(t, home, func(e *journal.Event) {
		if e.Type == journal.RunStarted && e.Run != id {
			others = append(others, e.Run)
		}
	})
	for n := 10; n < len(id); n++ {
		unique := true
		for _, o := range others {
			unique = unique && !strings.HasPrefix(o, id[:n])
		}
		if unique {
			return id[:n]
		}
	}
	return id
}

// scanHome calls fn for every entry of every journal of the home.
func scanHome(t testing.TB, h string, fn func(e *journal.Event)) {
	t.Helper()
	srcs, err := home(h).journals()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range srcs {
		err := journal.Scan(s.Dir, journal.ScanOptions{}, func(e *journal.Event) error {
			fn(e)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestUIAPIIsTheCommands: /api/runs and /api/runs/RUN_ID are byte for byte
// what history --json and replay --json print, with the same filters.
func TestUIAPIIsTheCommands(t *testing.T) {
	home, dir := uiHome(t)
	srv := uiServer(t, home, dir, "")
	ids := runIDs(t, home)
	prefix := uniquePrefix(t, home, ids["flaky"])
	for _, c := range []struct {
		path string
		args []string
	}{
		{"/api/runs", []string{"history", "--json"}},
		{"/api/runs?workflow=flaky&limit=0", []string{"history", "flaky", "--json", "--limit", "0"}},
		{"/api/runs?status=failed", []string{"history", "--json", "--status", "failed"}},
		{"/api/runs/" + ids["flaky"], []string{"replay", ids["flaky"], "--json"}},
		{"/api/runs/" + prefix, []string{"replay", prefix, "--json"}},
		{"/api/runs/" + ids["etl"], []string{"replay", ids["etl"], "--json"}},
	} {
		code, body := httpGet(t, srv.URL+c.path)
		want := pf(t, home, c.args...)
		if code != 200 || want.code != 0 || body != want.stdout {
			t.Errorf("%s: %d\n%s\nwant (picoflow %s):\n%s", c.path, code, body, strings.Join(c.args, " "), want.stdout)
		}
	}
	// Time travel: every entry of the run, as replay --until prints it.
	var seqs []string
	for _, l := range strings.Split(pf(t, home, "replay", ids["flaky"], "--json").stdout, "\n") {
		if s, ok := strings.CutPrefix(l, `{"seq":`); ok {
			seqs = append(seqs, s[:strings.IndexByte(s, ',')])
		}
	}
	if len(seqs) < 10 {
		t.Fatalf("flaky has %d entries", len(seqs))
	}
	for _, seq := range seqs {
		_, body := httpGet(t, srv.URL+"/api/runs/"+ids["flaky"]+"?seq="+seq)
		if want := pf(t, home, "replay", ids["flaky"], "--json", "--until", seq).stdout; body != want {
			t.Errorf("seq %s:\n%s\nwant:\n%s", seq, body, want)
		}
	}
	if code, _ := httpGet(t, srv.URL+"/api/runs/nope"); code != 404 {
		t.Errorf("unknown run: %d", code)
	}
	if code, _ := httpGet(t, srv.URL+"/api/runs/2"); code != 400 {
		t.Errorf("ambiguous prefix: %d, want 400", code)
	}
}

// TestUIPagesOfARealHome: each page of a real home answers, shows what it
// must and escapes what the tasks wrote.
func TestUIPagesOfARealHome(t *testing.T) {
	home, dir := uiHome(t)
	srv := uiServer(t, home, dir, "")
	ids := runIDs(t, home)
	for _, c := range []struct {
		path string
		want []string
	}{
		{"/", []string{`data-workflow="etl"`, `data-workflow="flaky"`, "0 3 * * *", `class="cell st-success"`, `class="cell st-failed"`}},
		{"/runs", []string{`data-run="` + ids["etl"] + `"`, `data-run="` + ids["flaky"] + `"`}},
		{"/runs?workflow=flaky", []string{`data-run="` + ids["flaky"] + `"`}},
		{"/runs/" + ids["etl"], []string{`data-task="extract" data-status="success"`, "rows=&lt;script&gt;alert(1)&lt;/script&gt;"}},
		{"/runs/" + ids["flaky"], []string{`data-task="upload" data-status="failed"`, `data-task="notify" data-status="skipped"`,
			`class="bar backoff"`, `data-attempt="3" data-status="failed"`}},
		{"/runs/" + ids["etl"] + "/tasks/transform/log", []string{"&lt;b&gt;transforming&lt;/b&gt;"}},
		{"/runs/" + ids["flaky"] + "/tasks/upload/log?attempt=2", []string{"connection refused", "attempt 2"}},
	} {
		code, body := httpGet(t, srv.URL+c.path)
		if code != 200 {
			t.Errorf("%s: %d\n%s", c.path, code, body)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s lacks %s", c.path, w)
			}
		}
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<b>transforming") {
			t.Errorf("%s: unescaped task output", c.path)
		}
	}
	for _, p := range []string{"/runs/nope", "/runs/" + ids["etl"] + "/tasks/nope/log", "/runs/" + ids["etl"] + "/tasks/load/log?attempt=9"} {
		if code, _ := httpGet(t, srv.URL+p); code != 404 {
			t.Errorf("%s: %d, want 404", p, code)
		}
	}
}

func TestUIListen(t *testing.T) {
	for _, c := range []struct {
		addr, token, want string
		ok                bool
	}{
		{"127.0.0.1:8080", "", "127.0.0.1:8080", true},
		{":8080", "", "127.0.0.1:8080", true},
		{"localhost:8080", "", "localhost:8080", true},
		{"[::1]:8080", "", "[::1]:8080", true},
		{"0.0.0.0:8080", "", "", false},
		{"192.168.1.5:8080", "", "", false},
		{"0.0.0.0:8080", "0123456789abcdef", "0.0.0.0:8080", true},
		{"8080", "", "", false},
	} {
		got, err := uiListen(c.addr, c.token)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("uiListen(%q, token %v) = %q, %v", c.addr, c.token != "", got, err)
		}
	}
	// The command refuses before it listens.
	home := t.TempDir()
	if r := pf(t, home, "ui", "--listen", "0.0.0.0:1"); r.code != ExitUsage || !strings.Contains(r.stderr, "ui.token") {
		t.Errorf("ui on 0.0.0.0 without a token: %d %s", r.code, r.stderr)
	}
}
