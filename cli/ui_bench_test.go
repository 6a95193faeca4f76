package cli

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
	"github.com/picoflow/picoflow/projector/projectortest"
)

// uiBenchRun is the id of the 1,000-task run of uiBenchHome.
const uiBenchRun = "20261201-000000-b1e5"

// uiBenchHome writes a home whose journal holds 10,000 runs of 3 tasks over
// 10 workflows, then one run of a 1,000-task DAG (each task waits for up
// to two earlier ones; every 7th retried once). With
// $PICOFLOW_UI_BENCH_HOME set it is written there and kept (scripts/bench.sh
// serves it from a daemon to measure RSS).
func uiBenchHome(b *testing.B) string {
	b.Helper()
	home := os.Getenv("PICOFLOW_UI_BENCH_HOME")
	if home == "" {
		home = b.TempDir()
	} else if _, err := os.Stat(home); err == nil {
		return home // written by an earlier benchmark of this invocation
	}
	projectortest.Generate(b, home, 10000, 3)
	const tasks = 1000
	var def strings.Builder
	def.WriteString("name: big\ntasks:\n")
	for i := 0; i < tasks; i++ {
		fmt.Fprintf(&def, "  - name: t%04d\n    type: shell\n    config: {command: \"true\"}\n", i)
		if i > 0 {
			fmt.Fprintf(&def, "    depends_on: [t%04d", (i*7919)%i)
			if j := (i * 104729) % i; j != (i*7919)%i {
				fmt.Fprintf(&def, ", t%04d", j)
			}
			def.WriteString("]\n")
		}
	}
	w := projectortest.Open(b, home)
	defer w.Close()
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	ns := func(ms int) int64 { return at.Add(time.Duration(ms) * time.Millisecond).UnixNano() }
	evs := []*journal.Event{{Type: journal.RunStarted, Time: ns(0), Run: uiBenchRun, Workflow: "big", DefHash: "big-hash",
		Definition: def.String(), Trigger: "manual"}}
	for i := 0; i < tasks; i++ {
		name, t := fmt.Sprintf("t%04d", i), 10*i
		evs = append(evs, &journal.Event{Type: journal.TaskStarted, Time: ns(t), Run: uiBenchRun, Task: name, Attempt: 1})
		if i%7 == 3 {
			evs = append(evs,
				&journal.Event{Type: journal.TaskRetrying, Time: ns(t + 3), Run: uiBenchRun, Task: name, Attempt: 1,
					Status: journal.StatusFailed, ExitCode: 1, Error: "exit status 1", BackoffMS: 2, RetryAt: ns(t + 5)},
				&journal.Event{Type: journal.TaskStarted, Time: ns(t + 5), Run: uiBenchRun, Task: name, Attempt: 2})
		}
		evs = append(evs, &journal.Event{Type: journal.TaskFinished, Time: ns(t + 9), Run: uiBenchRun, Task: name,
			Attempt: 1 + btoi(i%7 == 3), Status: journal.StatusSuccess, DurationMS: 4})
	}
	evs = append(evs, &journal.Event{Type: journal.RunFinished, Time: ns(10 * tasks), Run: uiBenchRun,
		Status: journal.StatusSuccess, DurationMS: 10 * tasks})
	w.Append(evs...)
	return home
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// BenchmarkUI measures the server time of the UI's pages on uiBenchHome
// (the handler, without the network), its projection caught up first:
// budgets 50 ms for / and /runs, 200 ms for the 1,000-task run.
func BenchmarkUI(b *testing.B) {
	home := uiBenchHome(b)
	srv := uiServer(b, home, b.TempDir(), "")
	h := srv.Config.Handler
	get := func(b *testing.B, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		return rec
	}
	start := time.Now()
	get(b, "/runs") // the first request projects the journal
	b.Logf("first request (catch-up): %s", time.Since(start))
	seq := firstEntry(b, home, uiBenchRun, journal.RunStarted) + 1500
	for _, bc := range []struct{ name, path string }{
		{"workflows", "/"},
		{"runs", "/runs"},
		{"run-1000-tasks", "/runs/" + uiBenchRun},
		{"run-1000-tasks-seq", "/runs/" + uiBenchRun + fmt.Sprintf("?seq=%d", seq)},
		{"run-oldest", "/runs/20261125-080000-0000"}, // 3 tasks, at the start of a 110,000-entry journal
		{"api-runs", "/api/runs"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var n int
			for i := 0; i < b.N; i++ {
				n = get(b, bc.path).Body.Len()
			}
			b.ReportMetric(float64(n), "bytes/page")
		})
	}
}
