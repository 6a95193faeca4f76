package daemon

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"github.com/picoflow/picoflow/engine/schedule"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/executors"
	"github.com/picoflow/picoflow/executors/shell"
	"github.com/picoflow/picoflow/journal"
)

// syncBuffer is a log sink the test reads while the daemon writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testDaemon is a daemon running in-process on a temporary home.
type testDaemon struct {
	t      *testing.T
	home   string
	dir    string // workflows
	d      *Daemon
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// newTestDaemon prepares a home and a workflows directory with files
// (name → YAML).
func newTestDaemon(t *testing.T, files map[string]string) *testDaemon {
	t.Helper()
	root := t.TempDir()
	td := &testDaemon{t: t, home: filepath.Join(root, "home"), dir: filepath.Join(root, "workflows"), logs: &syncBuffer{}}
	if err := os.MkdirAll(td.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(td.home, 0o750); err != nil {
		t.Fatal(err)
	}
	for name, src := range files {
		td.write(name, src)
	}
	return td
}

func (td *testDaemon) write(name, src string) {
	td.t.Helper()
	if err := os.WriteFile(filepath.Join(td.dir, name), []byte(src), 0o644); err != nil {
		td.t.Fatal(err)
	}
}

func (td *testDaemon) options() Options {
	return Options{
		WorkflowsDir: td.dir,
		JournalDir:   func(wf string) string { return filepath.Join(td.home, "journal", wf) },
		Journals:     td.journals,
		LockPath:     filepath.Join(td.home, "daemon.lock"),
		SocketPath:   filepath.Join(td.home, "daemon.sock"),
		MaxParallel:  4,
		PollInterval: 100 * time.Millisecond,
		Engine: engine.Options{
			Executors: map[string]executors.Executor{workflow.TypeShell: &shell.Shell{}},
			LogDir:    filepath.Join(td.home, "logs"),
			Grace:     5 * time.Second,
			KillGrace: time.Second,
		},
		Logger:  slog.New(slog.NewJSONHandler(td.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Version: "test",
	}
}

// start runs the daemon and waits until it schedules.
func (td *testDaemon) start(edit func(*Options)) {
	td.t.Helper()
	o := td.options()
	if edit != nil {
		edit(&o)
	}
	ready := make(chan struct{})
	o.Ready = func() { close(ready) }
	td.d = New(o)
	ctx, cancel := context.WithCancel(context.Background())
	td.cancel, td.done = cancel, make(chan error, 1)
	go func() { td.done <- td.d.Run(ctx) }()
	select {
	case <-ready:
	case err := <-td.done:
		td.t.Fatalf("daemon exited before it was ready: %v\n%s", err, td.logs)
	case <-time.After(20 * time.Second):
		td.t.Fatalf("daemon not ready after 20s\n%s", td.logs)
	}
	td.t.Cleanup(func() { td.stop() })
}

// stop cancels the daemon (a graceful stop) and returns Run's result.
func (td *testDaemon) stop() error {
	if td.cancel == nil {
		return nil
	}
	td.cancel()
	td.cancel = nil
	select {
	case err := <-td.done:
		return err
	case <-time.After(30 * time.Second):
		td.t.Fatalf("daemon did not stop within 30s\n%s", td.logs)
		return nil
	}
}

// journals lists the workflows' journal directories.
func (td *testDaemon) journals() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(td.home, "journal"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var dirs []string
	for _, e := range ents {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join(td.home, "journal", e.Name()))
		}
	}
	return dirs, err
}

// events reads every journal as another process would, merged in time
// order.
func (td *testDaemon) events() []*journal.Event {
	td.t.Helper()
	dirs, err := td.journals()
	if err != nil {
		td.t.Fatal(err)
	}
	var out []*journal.Event
	for _, dir := range dirs {
		skip := func(*journal.DamageError) error { return nil } // what verifies
		if err := journal.Scan(dir, journal.ScanOptions{OnDamage: skip}, func(e *journal.Event) error {
			out = append(out, e)
			return nil
		}); err != nil {
			td.t.Fatal(err)
		}
	}
	slices.SortStableFunc(out, func(a, b *journal.Event) int { return cmp.Compare(a.Time, b.Time) })
	return out
}

// waitFor polls cond every 50ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func count(evs []*journal.Event, pred func(*journal.Event) bool) int {
	n := 0
	for _, e := range evs {
		if pred(e) {
			n++
		}
	}
	return n
}

// finished returns the run ids that have a RunFinished, with their status.
func finished(evs []*journal.Event) map[string]string {
	out := map[string]string{}
	for _, e := range evs {
		if e.Type == journal.RunFinished {
			out[e.Run] = e.Status
		}
	}
	return out
}

func logHas(td *testDaemon, s string) bool { return strings.Contains(td.logs.String(), s) }

func sampleWorkflow() *workflow.Workflow {
	return &workflow.Workflow{Name: "w", Schedule: "CRON_TZ=Europe/Berlin 30 2 * * *", Overlap: schedule.OverlapQueue}
}
