package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/picoflow/picoflow/cli/dag"
	"github.com/picoflow/picoflow/journal"
)

// TestUIInBrowser loads every page of a real home — a finished run, a run
// that failed after retries, and a run whose task is still running — in
// headless Chromium, and checks what a person would see there. Screenshots
// go to $PICOFLOW_ARTIFACTS (else a temporary directory).
func TestUIInBrowser(t *testing.T) {
	chrome, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (scripts/deps.sh installs it)")
		}
		t.Skip("chromium is not installed (scripts/deps.sh installs it)")
	}
	shots := os.Getenv("PICOFLOW_ARTIFACTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	home, dir := uiHome(t)
	live := startLiveRun(t, home, dir)
	srv := uiServer(t, home, dir, "")
	ids := runIDs(t, home)

	b := newBrowser(t, chrome)
	shot := uiShot(t, b, shots)

	t.Run("workflows", func(t *testing.T) {
		b.open(t, srv.URL+"/")
		if got := b.eval(t, `[...document.querySelectorAll('tr.wf')].map(r => r.dataset.workflow).join(',')`); got != "etl,flaky,live" {
			t.Errorf("workflow rows %q", got)
		}
		if got := b.eval(t, `document.querySelector('tr[data-workflow=flaky] .strip .cell').title`); !strings.Contains(got, "failed") {
			t.Errorf("flaky's strip cell %q", got)
		}
		if got := b.eval(t, `getComputedStyle(document.querySelector('tr[data-workflow=etl] .strip .cell')).backgroundColor`); got != rgb(dag.Color("success")) {
			t.Errorf("etl's strip cell colour %s, want green %s", got, rgb(dag.Color("success")))
		}
		shot("workflows")
	})
	t.Run("runs", func(t *testing.T) {
		b.open(t, srv.URL+"/runs")
		if got := b.eval(t, `String(document.querySelectorAll('table.runs tbody tr').length)`); got != "3" {
			t.Errorf("%s runs listed, want 3", got)
		}
		if got := b.eval(t, `document.querySelector('tr[data-run="`+ids["live"]+`"] .badge').textContent`); got != "running" {
			t.Errorf("live run shows %q", got)
		}
		shot("runs")
	})
	uiRunPages(t, b, srv.URL, home, ids, live, shot)
	live.wait(t)
	b.noConsoleErrors(t)
}

// uiShot returns a function that saves a screenshot of b's page as
// ui-NAME.png in dir.
func uiShot(t *testing.T, b *browser, dir string) func(name string) {
	return func(name string) {
		t.Helper()
		png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "ui-"+name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// uiRunPages checks the pages of the runs ids (by workflow) on the server
// at srvURL: a finished run, a failed one, a running one (live), and logs.
func uiRunPages(t *testing.T, b *browser, srvURL, home string, ids map[string]string, live *liveRun, shot func(string)) {
	t.Run("finished run", func(t *testing.T) {
		b.open(t, srvURL+"/runs/"+ids["etl"])
		b.wantNodes(t, map[string]string{"extract": "success", "transform": "success", "load": "success"})
		if got := b.eval(t, `String(document.querySelectorAll('svg.gantt rect.bar.attempt').length)`); got != "3" {
			t.Errorf("%s Gantt bars, want 3", got)
		}
		if got := b.eval(t, `document.querySelector('tr[data-task=extract]').innerText`); !strings.Contains(got, "rows=<script>alert(1)</script>") {
			t.Errorf("the output does not show as text: %q", got)
		}
		shot("run-finished")
	})
	t.Run("failed run with retries", func(t *testing.T) {
		uiFailedRun(t, b, srvURL+"/runs/"+ids["flaky"], home, ids["flaky"], shot)
	})
	t.Run("failed attempt log", func(t *testing.T) {
		b.open(t, srvURL+"/runs/"+ids["flaky"]+"/tasks/upload/log?attempt=1")
		if got := b.eval(t, `document.getElementById('log').textContent`); got != "connection refused\n" {
			t.Errorf("log text %q", got)
		}
		shot("log-failed")
	})
	t.Run("running run", func(t *testing.T) {
		b.open(t, srvURL+"/runs/"+ids["live"])
		b.wantNodes(t, map[string]string{"begin": "success", "wait": "running", "end": "pending"})
		if got := b.eval(t, `document.querySelector('h1 .badge').textContent`); got != "running" {
			t.Errorf("run badge %q", got)
		}
		shot("run-running")
	})
	t.Run("live log", func(t *testing.T) {
		b.open(t, srvURL+"/runs/"+ids["live"]+"/tasks/wait/log")
		if got := b.eval(t, `document.getElementById('log').textContent`); got != "waiting\n" {
			t.Errorf("log text %q", got)
		}
		live.release(t, "hello from the test\n")
		b.waitJS(t, "the log to follow the attempt to its end", `document.getElementById('log').dataset.ended == "success"`)
		if got := b.eval(t, `document.getElementById("log").textContent + document.querySelector("h1 .badge").textContent`); got != "waiting\nhello from the test\nsuccess" {
			t.Errorf("followed log %q", got)
		}
		shot("log-followed")
	})
}

// uiFailedRun checks the page at url of run, which failed after retries,
// and travels back in its journal with the slider.
func uiFailedRun(t *testing.T, b *browser, url, home, run string, shot func(string)) {
	b.open(t, url)
	b.wantNodes(t, map[string]string{"prepare": "success", "upload": "failed", "checksum": "success", "notify": "skipped"})
	if got := b.eval(t, `String(document.querySelectorAll('svg.gantt rect.bar.attempt[data-task=upload]').length)`); got != "3" {
		t.Errorf("%s attempt bars for upload, want 3", got)
	}
	if got := b.eval(t, `String(document.querySelectorAll('svg.gantt rect.bar.backoff[data-task=upload]').length)`); got != "2" {
		t.Errorf("%s backoff bars for upload, want 2", got)
	}
	if got := b.eval(t, `document.querySelector('svg.dag g.node[data-task=upload] title').textContent`); !strings.Contains(got, "attempts 3") || !strings.Contains(got, "exit code 3") {
		t.Errorf("upload's tooltip %q", got)
	}
	shot("run-failed")

	// The slider moves the run back to the entry of the first retry
	// (SetValue fires input and change, as a drag does).
	seq := firstEntry(t, home, run, journal.TaskRetrying)
	b.do(t, chromedp.SetValue(chromedp.ID("seq"), fmt.Sprint(seq)))
	b.waitJS(t, "the slider to travel", `location.search == "?seq=`+fmt.Sprint(seq)+`" && document.readyState == "complete"`)
	// checksum runs beside upload: it may not have ended by then.
	b.wantNodes(t, map[string]string{"prepare": "success", "upload": "retrying", "checksum": "running|success", "notify": "pending"})
	if got := b.eval(t, `document.querySelector('.asof').textContent`); !strings.Contains(got, fmt.Sprintf("as of entry %d", seq)) {
		t.Errorf("as-of line %q", got)
	}
	shot("run-failed-time-travel")
	b.do(t, chromedp.Click(chromedp.ID("next")))
	b.waitJS(t, "the next event", `location.search == "?seq=`+fmt.Sprint(seq+1)+`" && document.readyState == "complete"`)
}

// rgb turns #rrggbb into the rgb(r, g, b) of getComputedStyle.
func rgb(hex string) string {
	var r, g, b int
	fmt.Sscanf(hex, "#%02x%02x%02x", &r, &g, &b)
	return fmt.Sprintf("rgb(%d, %d, %d)", r, g, b)
}

// firstEntry is the journal entry of the run's first event of type typ.
func firstEntry(t testing.TB, home, run string, typ journal.Type) uint64 {
	t.Helper()
	var seq uint64
	scanHome(t, home, func(e *journal.Event) {
		if e.Run == run && e.Type == typ && seq == 0 {
			seq = e.Seq
		}
	})
	if seq == 0 {
		t.Fatalf("no %s in run %s", typ, run)
	}
	return seq
}

// liveRun is a run of workflow live whose task wait blocks on a FIFO
// until the test writes to it.
type liveRun struct {
	fifo string
	done chan cliOut
}

func startLiveRun(t *testing.T, home, dir string) *liveRun {
	t.Helper()
	l := &liveRun{fifo: filepath.Join(t.TempDir(), "release"), done: make(chan cliOut, 1)}
	if err := syscall.Mkfifo(l.fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "live.yaml")
	src := fmt.Sprintf(`name: live
tasks:
  - {name: begin, type: shell, config: {command: "true"}}
  - {name: wait, type: shell, depends_on: [begin], config: {command: "echo waiting; cat %s"}}
  - {name: end, type: shell, depends_on: [wait], config: {command: "true"}}
`, l.fifo)
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		<-l.done
	})
	go func() { l.done <- pfCtx(ctx, t, home, "run", file) }()
	// The task runs once its log says so (the journal has its start).
	logs := filepath.Join(home, "logs", "live")
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, _ := filepath.Glob(filepath.Join(logs, "*", "wait.1.log"))
		if len(m) == 1 {
			if b, _ := os.ReadFile(m[0]); string(b) == "waiting\n" {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the live run's task did not start")
		}
		select {
		case r := <-l.done:
			t.Fatalf("the live run ended: %d %s", r.code, r.stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// release lets the waiting task finish, printing text.
func (l *liveRun) release(t *testing.T, text string) {
	t.Helper()
	f, err := os.OpenFile(l.fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func (l *liveRun) wait(t *testing.T) {
	t.Helper()
	select {
	case r := <-l.done:
		l.done <- r // for the cleanup
		if r.code != ExitOK {
			t.Errorf("live run: %d %s", r.code, r.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Error("the live run did not finish")
	}
}

// browser is one headless Chromium tab and what its console said.
type browser struct {
	ctx  context.Context
	mu   sync.Mutex
	errs []string
}

func newBrowser(t *testing.T, chrome string) *browser {
	t.Helper()
	actx, cancelA := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelA() })
	b := &browser{ctx: ctx}
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.mu.Lock()
				b.errs = append(b.errs, m.String()+" at "+m.URL)
				b.mu.Unlock()
			}
		}
	}()
	return b
}

func (b *browser) do(t *testing.T, a chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(b.ctx, a); err != nil {
		t.Fatal(err)
	}
}

// open loads url and waits for the page.
func (b *browser) open(t *testing.T, url string) {
	t.Helper()
	b.do(t, chromedp.Navigate(url))
	b.do(t, chromedp.WaitVisible(chromedp.CSS("main")))
}

// eval runs a JavaScript expression that yields a string.
func (b *browser) eval(t *testing.T, js string) string {
	t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

// waitJS waits until a JavaScript condition holds, across page loads
// (while a page unloads, evaluating fails: that is retried).
func (b *browser) waitJS(t *testing.T, what, js string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](js))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %s is %v (%v)", what, js, ok, err)
		}
		select {
		case <-b.ctx.Done():
			t.Fatal(b.ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// wantNodes checks the DAG: one node per task, each with its status (one
// of "a|b" where the order of events is not fixed) and the status's colour.
func (b *browser) wantNodes(t *testing.T, want map[string]string) {
	t.Helper()
	raw := b.eval(t, `JSON.stringify([...document.querySelectorAll('svg.dag g.node')].map(g =>
		[g.dataset.task, g.dataset.status, g.querySelector('rect').getAttribute('fill')]))`)
	var nodes [][3]string
	if err := json.Unmarshal([]byte(raw), &nodes); err != nil {
		t.Fatal(err)
	}
	if len(nodes) != len(want) {
		t.Errorf("%d nodes, want %d: %v", len(nodes), len(want), nodes)
	}
	for _, n := range nodes {
		st, ok := want[n[0]]
		if !ok || !slices.Contains(strings.Split(st, "|"), n[1]) || n[2] != dag.Color(n[1]) {
			t.Errorf("node %s: %s filled %s, want %s in its colour", n[0], n[1], n[2], st)
		}
	}
}

func (b *browser) noConsoleErrors(t *testing.T) {
	t.Helper()
	// A last round trip, so that what the pages logged has arrived.
	b.eval(t, `'flush'`)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.errs {
		t.Errorf("console: %s", e)
	}
}
