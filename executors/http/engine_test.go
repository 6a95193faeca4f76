package httpx_test

// HTTP tasks through the real engine and journal: the retry decisions the
// executor reports are the ones the engine acts on, and the waits between
// attempts are measured where they matter, at the server.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/executors"
	httpx "github.com/picoflow/picoflow/executors/http"
	"github.com/picoflow/picoflow/executors/shell"
	"github.com/picoflow/picoflow/journal"
)

// arrivals is a server whose n-th request (0-based) gets answers[n] (the
// last one repeats), recording when each arrived.
type arrivals struct {
	mu    sync.Mutex
	times []time.Time
}

func serve(t *testing.T, answers ...func(http.ResponseWriter)) (*httptest.Server, *arrivals) {
	a := &arrivals{}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		n := len(a.times)
		a.times = append(a.times, time.Now())
		a.mu.Unlock()
		answers[min(n, len(answers)-1)](w)
	}))
	t.Cleanup(s.Close)
	return s, a
}

func (a *arrivals) gaps() []time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	var g []time.Duration
	for i := 1; i < len(a.times); i++ {
		g = append(g, a.times[i].Sub(a.times[i-1]))
	}
	return g
}

func status(code int, headers ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(code)
	}
}

func body(s string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(s))
	}
}

// runWorkflow runs the YAML workflow to its end with shell and http
// executors, in a home under t.TempDir().
func runWorkflow(t *testing.T, src string) (*engine.Run, string) {
	t.Helper()
	wf, err := workflow.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	j, err := journal.Open(filepath.Join(home, "journal"), journal.Options{Owner: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	hx := httpx.New(httpx.Options{})
	defer hx.Close()
	eng := engine.New(engine.Options{Journal: j, LogDir: filepath.Join(home, "logs"),
		Executors: map[string]executors.Executor{workflow.TypeHTTP: hx, workflow.TypeShell: &shell.Shell{}}})
	r, err := eng.Start(context.Background(), wf, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	return r, home
}

func TestEngineRetriesWithBackoff(t *testing.T) {
	s, a := serve(t, status(500), status(503), body(`{"version":"2.0.1"}`))
	r, _ := runWorkflow(t, `
name: http-retry
config:
  backoff: {initial: 150ms, multiplier: 2, max: 10s}
tasks:
  - name: call
    type: http
    retry: 3
    config:
      url: `+s.URL+`
      outputs: {version: .version}
  - name: after
    type: shell
    depends_on: [call]
    config:
      command: test "$PICOFLOW_OUT_CALL_VERSION" = 2.0.1
`)
	st := r.Tasks["call"]
	if r.Status != engine.RunSuccess || st.Attempt != 3 || st.Outputs()["version"] != "2.0.1" {
		t.Fatalf("run %v, call attempt %d outputs %v: %s", r.Status, st.Attempt, st.Outputs(), st.Text().Error)
	}
	g := a.gaps()
	if len(g) != 2 {
		t.Fatalf("%d requests, want 3", len(g)+1)
	}
	for i, want := range []time.Duration{150 * time.Millisecond, 300 * time.Millisecond} {
		if g[i] < want {
			t.Errorf("wait before retry %d was %s at the server, want at least the backoff %s", i+1, g[i], want)
		}
	}
}

func TestEngineNoRetryOn404(t *testing.T) {
	s, a := serve(t, status(404))
	r, home := runWorkflow(t, `
name: http-404
config:
  backoff: {initial: 10ms}
tasks:
  - name: call
    type: http
    retry: 5
    config:
      url: `+s.URL+`/missing
`)
	st := r.Tasks["call"]
	if r.Status != engine.RunFailed || st.Status != engine.Failed || st.Attempt != 1 || len(a.gaps()) != 0 {
		t.Fatalf("run %v task %v attempt %d, %d requests: %s", r.Status, st.Status, st.Attempt, len(a.gaps())+1, st.Text().Error)
	}
	if !strings.Contains(st.Text().Error, "HTTP 404 Not Found") {
		t.Errorf("error %q", st.Text().Error)
	}
	log, err := os.ReadFile(filepath.Join(home, "logs", "http-404", r.ID, "call.1.log"))
	if err != nil || !strings.Contains(string(log), "< HTTP/1.1 404 Not Found") {
		t.Errorf("log %q (%v) in %s", log, err, home)
	}
}

func TestEngineHonoursRetryAfter(t *testing.T) {
	s, a := serve(t, status(503, "Retry-After", "1"), status(204))
	r, _ := runWorkflow(t, `
name: http-retry-after
config:
  backoff: {initial: 10ms}
tasks:
  - name: call
    type: http
    retry: 1
    config:
      url: `+s.URL+`
`)
	if r.Status != engine.RunSuccess {
		t.Fatalf("run %v: %s", r.Status, r.Tasks["call"].Text().Error)
	}
	if g := a.gaps(); len(g) != 1 || g[0] < time.Second {
		t.Errorf("gaps %v, want one of at least the Retry-After 1s", g)
	}
}
