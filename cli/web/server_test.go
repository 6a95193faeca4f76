package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/journal"
	"github.com/picoflow/picoflow/projector"
)

// fakeSource serves one run folded from events with the engine's reducer,
// as package cli's source does from a journal. Its task names, params,
// outputs and errors carry markup that must render as text.
type fakeSource struct {
	events []*journal.Event
	def    *workflow.Workflow
	logs   string // directory of the attempt logs
	status string // status of every attempt
}

var _ Source = (*fakeSource)(nil)

const (
	evil    = `<script>alert("x")</script>`
	fakeRun = "20261125-020000-a1b2"
)

func newFake(t *testing.T) *fakeSource {
	t.Helper()
	def, err := workflow.Parse("", []byte(`name: nightly
tasks:
  - {name: fetch, type: shell, config: {command: "true"}}
  - {name: build, type: shell, depends_on: [fetch], retry: 1, config: {command: make}}
  - {name: publish, type: shell, depends_on: [build], config: {command: publish}}
`))
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)
	at := func(ms int) int64 { return base.Add(time.Duration(ms) * time.Millisecond).UnixNano() }
	f := &fakeSource{def: def, logs: t.TempDir(), status: "success"}
	f.events = []*journal.Event{
		{Seq: 10, Type: journal.RunStarted, Time: at(0), Run: fakeRun, Workflow: "nightly", Definition: string(def.Raw),
			Trigger: "manual", Params: map[string]string{"who": evil}, RerunOf: "20261124-020000-0badc0de"},
		{Seq: 11, Type: journal.TaskStarted, Time: at(10), Run: fakeRun, Task: "fetch", Attempt: 1},
		{Seq: 12, Type: journal.TaskFinished, Time: at(500), Run: fakeRun, Task: "fetch", Attempt: 1, Status: "success",
			Outputs: map[string]string{"rows": evil}},
		{Seq: 13, Type: journal.TaskStarted, Time: at(510), Run: fakeRun, Task: "build", Attempt: 1},
		{Seq: 14, Type: journal.TaskRetrying, Time: at(900), Run: fakeRun, Task: "build", Attempt: 1, Status: "failed",
			ExitCode: 2, Error: evil, BackoffMS: 300, RetryAt: at(1200)},
		{Seq: 15, Type: journal.TaskStarted, Time: at(1200), Run: fakeRun, Task: "build", Attempt: 2},
		{Seq: 16, Type: journal.TaskFinished, Time: at(1700), Run: fakeRun, Task: "build", Attempt: 2, Status: "success"},
		{Seq: 17, Type: journal.TaskStarted, Time: at(1710), Run: fakeRun, Task: evil, Attempt: 1},
		{Seq: 18, Type: journal.TaskFinished, Time: at(1800), Run: fakeRun, Task: evil, Attempt: 1, Status: "failed", ExitCode: 1},
		{Seq: 19, Type: journal.RunFinished, Time: at(1810), Run: fakeRun, Status: "failed"},
	}
	return f
}

func (f *fakeSource) Workflows(context.Context) ([]Workflow, error) {
	return []Workflow{{Name: "nightly", Schedule: "0 2 * * *", Next: time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)},
		{Name: evil, Problem: evil}}, nil
}

func (f *fakeSource) runs() []projector.Run {
	return []projector.Run{{ID: fakeRun, Workflow: "nightly", Status: "failed", Trigger: evil,
		Started: f.events[0].At(), Finished: f.events[len(f.events)-1].At(), DurationMS: 1810}}
}

func (f *fakeSource) History(_ context.Context, p projector.Filter) ([]projector.Run, error) {
	if p.Workflow != "" && p.Workflow != "nightly" {
		return nil, nil
	}
	return f.runs(), nil
}

func (f *fakeSource) HistoryJSON(_ context.Context, w io.Writer, p projector.Filter) error {
	return json.NewEncoder(w).Encode(map[string]any{"limit": p.Limit, "tasks": p.Tasks})
}

func (f *fakeSource) Run(_ context.Context, id string, seq uint64) (*Run, error) {
	if !strings.HasPrefix(fakeRun, id) {
		return nil, fmt.Errorf("%w: no run %q", ErrNotFound, id)
	}
	st := engine.NewState()
	st.Detail = engine.AllRuns
	r := &Run{Events: f.events, Names: []string{"fetch", "build", "publish", evil}, Def: f.def}
	for _, e := range f.events {
		if seq > 0 && e.Seq > seq {
			break
		}
		if err := st.Apply(e); err != nil {
			return nil, err
		}
		r.Shown++
	}
	if r.Shown == 0 {
		return nil, fmt.Errorf("%w: run %s had not started by then", ErrNotFound, id)
	}
	r.State = st.Runs[fakeRun]
	return r, nil
}

func (f *fakeSource) RunJSON(_ context.Context, w io.Writer, id string, seq uint64) error {
	if id != fakeRun {
		return fmt.Errorf("%w: no run %q", ErrNotFound, id)
	}
	_, err := fmt.Fprintf(w, "{\"run\":%q,\"seq\":%d}\n", id, seq)
	return err
}

func (f *fakeSource) Attempt(_ context.Context, run, task string, attempt int) (*projector.Attempt, error) {
	if run != fakeRun || (task != "build" && task != evil) {
		return nil, fmt.Errorf("%w: no attempt", ErrNotFound)
	}
	if attempt == 0 {
		attempt = 2
	}
	return &projector.Attempt{Run: run, Workflow: "nightly", Task: task, Attempt: attempt, Status: f.status,
		LogPath: filepath.Join(f.logs, fmt.Sprintf("build.%d.log", attempt))}, nil
}

func newTestServer(t *testing.T, f *fakeSource, token string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(New(Options{Source: f, Token: token, Zone: time.UTC,
		Now: func() time.Time { return time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC) }}))
	t.Cleanup(srv.Close)
	return srv
}

type reply struct {
	code int
	body string
	h    http.Header
}

func get(t *testing.T, c *http.Client, url string, hdr ...string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, string(b), resp.Header}
}

func TestRoutes(t *testing.T) {
	f := newFake(t)
	if err := os.WriteFile(filepath.Join(f.logs, "build.1.log"), []byte("compiling\n"+evil+"\nerror: boom\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.logs, "build.3.log"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := newTestServer(t, f, "")
	run := "/runs/" + fakeRun
	for _, c := range []struct {
		name, path string
		code       int
		ctype      string
		want       []string // substrings of the body
	}{
		{"workflows", "/", 200, "text/html", []string{`data-workflow="nightly"`, "0 2 * * *", "2026-11-26 02:00:00", `class="cell st-failed"`}},
		{"runs", "/runs", 200, "text/html", []string{`data-run="` + fakeRun + `"`, "1.8s"}},
		{"runs filtered", "/runs?workflow=other&status=success&limit=5", 200, "text/html", []string{"No runs match."}},
		{"runs bad status", "/runs?status=bogus", 400, "text/html", []string{"status must be"}},
		{"runs bad limit", "/runs?limit=-1", 400, "text/html", []string{"limit must be"}},
		{"runs bad since", "/runs?since=yesterday", 400, "text/html", []string{"RFC 3339"}},
		{"run", run, 200, "text/html", []string{`<svg class="dag"`, `data-task="fetch" data-status="success"`,
			`data-task="build" data-status="success"`, `data-task="publish" data-status="pending"`, `class="bar backoff"`,
			`data-attempt="1" data-status="failed"`, "latest: event 10 of 10",
			`<dt>Rerun of</dt><dd><a href="/runs/20261124-020000-0badc0de"><code>20261124-020000-0badc0de</code></a></dd>`}},
		{"run prefix", "/runs/20261125-02", 200, "text/html", []string{"Run <code>" + fakeRun}},
		{"run as of seq 14", run + "?seq=14", 200, "text/html", []string{`data-task="build" data-status="retrying"`,
			`href="?seq=13"`, `href="?seq=15"`, "as of entry 14", `value="14"`}},
		{"run before it started", run + "?seq=9", 404, "text/html", []string{"had not started"}},
		{"run bad seq", run + "?seq=x", 400, "text/html", []string{"seq must be"}},
		{"run unknown", "/runs/nope", 404, "text/html", []string{"no run"}},
		{"log", run + "/tasks/build/log?attempt=1", 200, "text/html", []string{"compiling", "error: boom", "whole file"}},
		{"log of a success without output", run + "/tasks/build/log", 200, "text/html", []string{"no output: the attempt succeeded without writing anything"}},
		{"log of a success with an empty file", run + "/tasks/build/log?attempt=3", 200, "text/html", []string{"no output: the attempt succeeded without writing anything"}},
		{"raw log of a success without output", run + "/tasks/build/log/raw", 200, "text/plain", nil},
		{"log unknown task", run + "/tasks/nope/log", 404, "text/html", nil},
		{"log bad attempt", run + "/tasks/build/log?attempt=0", 400, "text/html", []string{"attempt must be"}},
		{"raw log", run + "/tasks/build/log/raw?attempt=1", 200, "text/plain", []string{"compiling\n" + evil}},
		{"raw log from offset", run + "/tasks/build/log/raw?attempt=1&offset=10", 200, "text/plain", []string{evil + "\nerror: boom\n"}},
		{"raw log bad offset", run + "/tasks/build/log/raw?attempt=1&offset=-3", 400, "text/html", []string{"offset must be"}},
		{"api runs", "/api/runs", 200, "application/json", []string{`"limit":10`, `"tasks":true`}},
		{"api runs limit", "/api/runs?limit=0", 200, "application/json", []string{`"limit":0`}},
		{"api runs bad", "/api/runs?status=nope", 400, "application/json", []string{`"error":`}},
		{"api run", "/api/runs/" + fakeRun, 200, "application/json", []string{`"seq":0`}},
		{"api run seq", "/api/runs/" + fakeRun + "?seq=12", 200, "application/json", []string{`"seq":12`}},
		{"api run unknown", "/api/runs/nope", 404, "application/json", []string{`"error":`}},
		{"static css", "/static/style.css", 200, "text/css; charset=utf-8", []string{".st-failed"}},
		{"static js", "/static/ui.js", 200, "text/javascript; charset=utf-8", []string{"addEventListener"}},
		{"static svg", "/static/favicon.svg", 200, "image/svg+xml", []string{"<svg"}},
		{"static directory", "/static/", 404, "text/plain", nil},
		{"static source", "/static/../server.go", 404, "text/html", nil},
		{"unknown page", "/nope", 404, "text/html", []string{"no such page"}},
		{"unknown static", "/static/nope.js", 404, "text/plain", nil},
		{"login without token configured", "/login", 200, "text/html", []string{"Workflows"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := get(t, nil, srv.URL+c.path)
			if r.code != c.code {
				t.Fatalf("status %d, want %d: %s", r.code, c.code, r.body)
			}
			if ct := r.h.Get("Content-Type"); !strings.HasPrefix(ct, c.ctype) {
				t.Errorf("Content-Type %q, want %s", ct, c.ctype)
			}
			for _, w := range c.want {
				if !strings.Contains(r.body, w) {
					t.Errorf("body lacks %q:\n%s", w, r.body)
				}
			}
			checkHeaders(t, r.h)
			if strings.HasPrefix(c.ctype, "text/html") {
				checkEscaped(t, r.body)
			}
		})
	}
}

// checkHeaders: every answer has the CSP without inline scripts and nosniff.
func checkHeaders(t *testing.T, h http.Header) {
	t.Helper()
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("X-Content-Type-Options %q", h.Get("X-Content-Type-Options"))
	}
}

// checkEscaped: the markup in names, params, outputs and errors is text.
func checkEscaped(t *testing.T, body string) {
	t.Helper()
	if strings.Contains(body, "<script>alert") {
		t.Errorf("unescaped <script> in the page:\n%s", body)
	}
	if n := strings.Count(body, "<script"); n > 1 {
		t.Errorf("%d script elements, want the one of ui.js", n)
	}
}

func TestEscapingShowsMarkupAsText(t *testing.T) {
	f := newFake(t)
	srv := newTestServer(t, f, "")
	r := get(t, nil, srv.URL+"/runs/"+fakeRun)
	esc := `&lt;script&gt;alert(`
	if n := strings.Count(r.body, esc); n < 5 {
		t.Errorf("the markup shows as text %d times, want it in the task name (DAG, Gantt, table), param, output, error:\n%s", n, r.body)
	}
	r = get(t, nil, srv.URL+"/")
	if !strings.Contains(r.body, esc) {
		t.Errorf("workflow name not shown as text:\n%s", r.body)
	}
	r = get(t, nil, srv.URL+"/runs/"+fakeRun+"/tasks/"+url.PathEscape(evil)+"/log")
	if r.code != 200 || !strings.Contains(r.body, esc) {
		t.Errorf("log page of a task named with markup: %d\n%s", r.code, r.body)
	}
	checkEscaped(t, r.body)
}

func TestReadOnly(t *testing.T) {
	srv := newTestServer(t, newFake(t), "")
	for _, p := range []string{"/", "/runs", "/runs/" + fakeRun, "/api/runs", "/login"} {
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
			req, _ := http.NewRequest(m, srv.URL+p, strings.NewReader("x"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %d, want 405", m, p, resp.StatusCode)
			}
		}
	}
}

func TestToken(t *testing.T) {
	const token = "0123456789abcdef-secret"
	srv := newTestServer(t, newFake(t), token)
	for _, p := range []string{"/", "/runs", "/runs/" + fakeRun, "/api/runs", "/api/runs/" + fakeRun, "/static/ui.js", "/nope"} {
		r := get(t, nil, srv.URL+p)
		if r.code != http.StatusUnauthorized || !strings.Contains(r.h.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s without a token: %d %q", p, r.code, r.h.Get("WWW-Authenticate"))
		}
		checkHeaders(t, r.h)
		if r := get(t, nil, srv.URL+p, "Authorization", "Bearer wrong-token-wrong-token"); r.code != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token: %d", p, r.code)
		}
	}
	if r := get(t, nil, srv.URL+"/runs", "Authorization", "Bearer "+token); r.code != 200 {
		t.Errorf("bearer token: %d", r.code)
	}
	// A browser: /login?token= sets a cookie that opens every page.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if r := get(t, noRedirect, srv.URL+"/login?token=nope"); r.code != http.StatusUnauthorized {
		t.Errorf("login with a wrong token: %d", r.code)
	}
	r := get(t, noRedirect, srv.URL+"/login?token="+token)
	if r.code != http.StatusSeeOther || r.h.Get("Location") != "/" {
		t.Fatalf("login: %d to %q", r.code, r.h.Get("Location"))
	}
	setCookie := r.h.Get("Set-Cookie")
	if !strings.Contains(setCookie, "HttpOnly") || !strings.Contains(setCookie, "SameSite=Strict") || strings.Contains(setCookie, token) {
		t.Errorf("cookie %q: want HttpOnly, SameSite=Strict, and not the token itself", setCookie)
	}
	cookie := strings.SplitN(setCookie, ";", 2)[0]
	if r := get(t, nil, srv.URL+"/runs/"+fakeRun, "Cookie", cookie); r.code != 200 {
		t.Errorf("with the login cookie: %d", r.code)
	}
	if r := get(t, nil, srv.URL+"/", "Cookie", "picoflow_ui="+token); r.code != http.StatusUnauthorized {
		t.Errorf("a cookie holding the raw token: %d, want 401", r.code)
	}
	// Guard puts another handler (the daemon's /metrics) behind the token.
	s := New(Options{Source: newFake(t), Token: token})
	g := httptest.NewServer(s.Guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "metrics") })))
	defer g.Close()
	if r := get(t, nil, g.URL+"/metrics"); r.code != http.StatusUnauthorized {
		t.Errorf("guarded without a token: %d", r.code)
	}
	if r := get(t, nil, g.URL+"/metrics", "Authorization", "Bearer "+token); r.code != 200 || r.body != "metrics" {
		t.Errorf("guarded with the token: %d %q", r.code, r.body)
	}
}

func TestLiveLog(t *testing.T) {
	f := newFake(t)
	f.status = "running"
	log := filepath.Join(f.logs, "build.2.log")
	if err := os.WriteFile(log, []byte("line 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := newTestServer(t, f, "")
	base := srv.URL + "/runs/" + fakeRun + "/tasks/build/log"
	r := get(t, nil, base)
	if !strings.Contains(r.body, `data-follow="/runs/`+fakeRun+`/tasks/build/log/raw?attempt=2"`) || !strings.Contains(r.body, `data-offset="7"`) {
		t.Fatalf("a running attempt's page does not follow from byte 7:\n%s", r.body)
	}
	fh, err := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString("line 2\n")
	fh.Close()
	r = get(t, nil, base+"/raw?attempt=2&offset=7")
	if r.body != "line 2\n" || r.h.Get("X-Log-Offset") != "14" || r.h.Get("X-Attempt-Status") != "running" {
		t.Errorf("follow: %q offset %q status %q", r.body, r.h.Get("X-Log-Offset"), r.h.Get("X-Attempt-Status"))
	}
	r = get(t, nil, base+"/raw?attempt=2&offset=99")
	if r.body != "" || r.h.Get("X-Log-Offset") != "14" {
		t.Errorf("past the end: %q offset %q", r.body, r.h.Get("X-Log-Offset"))
	}
	f.status = "success"
	if r := get(t, nil, base); strings.Contains(r.body, "data-follow") {
		t.Errorf("a finished attempt's page follows")
	}
}

func TestLogTail(t *testing.T) {
	f := newFake(t)
	big := strings.Repeat("x", logTail) + "the end\n"
	if err := os.WriteFile(filepath.Join(f.logs, "build.1.log"), []byte("the start\n"+big), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := newTestServer(t, f, "")
	r := get(t, nil, srv.URL+"/runs/"+fakeRun+"/tasks/build/log?attempt=1")
	if strings.Contains(r.body, "the start") || !strings.Contains(r.body, "the end") || !strings.Contains(r.body, "The last 256 KiB") {
		t.Errorf("the page does not show just the last 256 KiB")
	}
	r = get(t, nil, srv.URL+"/runs/"+fakeRun+"/tasks/build/log/raw?attempt=1")
	if !strings.HasPrefix(r.body, "the start") || !strings.HasSuffix(r.body, "the end\n") {
		t.Errorf("the whole file is not whole")
	}
}

// FuzzFilter: any query string gives a valid filter or a 400, never a
// panic or another error.
func FuzzFilter(f *testing.F) {
	f.Add("workflow=etl&status=failed&limit=5&since=2026-11-25T08:00:00Z")
	f.Add("status=nope&limit=-1")
	f.Add("until=yesterday&seq=0")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		p, err := filter(q, apiLimit)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("%q: %v", raw, err)
			}
			return
		}
		if p.Limit < 0 || !slices.Contains([]string{"", "success", "failed", "canceled", "running"}, p.Status) {
			t.Fatalf("%q: %+v", raw, p)
		}
	})
}

// TestLogRemoved: when the run's log directory is gone (picoflow gc), the
// log page says so and the raw log is not found; a failed attempt whose
// file is missing is not taken for one without output.
func TestLogRemoved(t *testing.T) {
	for _, c := range []struct {
		name, status string
		removeDir    bool
	}{{"directory removed", "success", true}, {"failed attempt's file missing", "failed", false}} {
		t.Run(c.name, func(t *testing.T) {
			f := newFake(t)
			f.status = c.status
			if c.removeDir {
				f.logs = filepath.Join(f.logs, "removed-by-gc")
			}
			srv := newTestServer(t, f, "")
			base := srv.URL + "/runs/" + fakeRun + "/tasks/build/log"
			if r := get(t, nil, base); r.code != 200 || !strings.Contains(r.body, "the log file is gone") {
				t.Errorf("log page: %d\n%s", r.code, r.body)
			}
			if r := get(t, nil, base+"/raw"); r.code != 404 {
				t.Errorf("raw log: %d\n%s", r.code, r.body)
			}
		})
	}
}
