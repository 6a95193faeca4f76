package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/executors"
	"github.com/picoflow/picoflow/executors/shell"
	"github.com/picoflow/picoflow/journal"
)

// Helpers shared by the engine tests: a home with a real journal, real
// shell tasks, workflows written as YAML, and readers of what the tasks and
// the journal recorded.

// home is one test's state: a journal, task logs, and a work directory the
// tasks see as $T (where they leave ledgers and time stamps).
type home struct {
	t    testing.TB
	dir  string
	work string
	j    *journal.Journal
	ids  atomic.Int64
}

func newHome(t testing.TB) *home {
	t.Helper()
	dir := t.TempDir()
	h := &home{t: t, dir: dir, work: filepath.Join(dir, "work")}
	if err := os.MkdirAll(h.work, 0o750); err != nil {
		t.Fatal(err)
	}
	h.open()
	t.Cleanup(func() {
		if h.j != nil {
			h.j.Close()
		}
	})
	return h
}

func (h *home) journalDir() string { return filepath.Join(h.dir, "journal") }

// open opens the journal, as a new process would.
func (h *home) open() {
	h.t.Helper()
	j, err := openJournal(h.journalDir())
	if err != nil {
		h.t.Fatal(err)
	}
	h.j = j
}

// openJournal opens a journal this process may just have closed. A task
// forked meanwhile by a test running in parallel holds a copy of the lock's
// file descriptor until it execs (close-on-exec), which keeps the flock
// for a moment: retry a refusal for up to a few seconds.
func openJournal(dir string) (*journal.Journal, error) {
	for i := 0; ; i++ {
		j, err := journal.Open(dir, journal.Options{Owner: "test"})
		var le *journal.LockedError
		if !errors.As(err, &le) || le.PID != os.Getpid() || i == 500 {
			return j, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// reopen closes and reopens the journal: what a restart does.
func (h *home) reopen() {
	h.t.Helper()
	if err := h.j.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.open()
}

// options are the engine options of the home's tests: the real shell
// executor, logs in the home, run ids unique per test (Resume kills the
// leftover processes of a run id, and tests run in parallel).
func (h *home) options() Options {
	name := regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(h.t.Name(), "-")
	return Options{
		Journal:   h.j,
		Executors: map[string]executors.Executor{workflow.TypeShell: &shell.Shell{}},
		LogDir:    filepath.Join(h.dir, "logs"),
		KillGrace: 2 * time.Second,
		Env:       append(os.Environ(), "T="+h.work),
		NewRunID: func(time.Time) string {
			return fmt.Sprintf("%s-%d-%d", name, os.Getpid(), h.ids.Add(1))
		},
	}
}

func (h *home) engine(edit ...func(*Options)) *Engine {
	o := h.options()
	for _, f := range edit {
		f(&o)
	}
	return New(o)
}

// start runs wf to its end with a fresh engine.
func (h *home) start(wf *workflow.Workflow, edit ...func(*Options)) *Run {
	h.t.Helper()
	r, err := h.engine(edit...).Start(context.Background(), wf, nil, "manual")
	if err != nil {
		h.t.Fatalf("start: %v", err)
	}
	return r
}

// replay reads the run back from the journal alone.
func (h *home) replay(id string) *Run {
	h.t.Helper()
	st, err := Replay(h.journalDir(), OneRun(id))
	if err != nil {
		h.t.Fatalf("replay: %v", err)
	}
	r := st.Runs[id]
	if r == nil {
		h.t.Fatalf("replay: no run %s", id)
	}
	return r
}

// events returns the journal's events.
func (h *home) events() []*journal.Event {
	h.t.Helper()
	var evs []*journal.Event
	if err := journal.Scan(h.journalDir(), journal.ScanOptions{Strict: true}, func(e *journal.Event) error {
		evs = append(evs, e)
		return nil
	}); err != nil {
		h.t.Fatalf("scan: %v", err)
	}
	return evs
}

// lines returns the lines of a file under $T ("" when it does not exist).
func (h *home) lines(name string) []string {
	h.t.Helper()
	b, err := os.ReadFile(filepath.Join(h.work, name))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// count returns how many times each word occurs.
func count(words []string) map[string]int {
	m := make(map[string]int)
	for _, w := range words {
		m[w]++
	}
	return m
}

// filter returns the events of one type (and task, when given).
func filter(evs []*journal.Event, typ journal.Type, task string) []*journal.Event {
	var out []*journal.Event
	for _, e := range evs {
		if e.Type == typ && (task == "" || e.Task == task) {
			out = append(out, e)
		}
	}
	return out
}

// task describes one task of a workflow written by wfYAML.
type task struct {
	name  string
	cmd   string
	deps  []string
	extra string // more YAML keys of the task, one per line
}

// wfYAML writes a workflow: config is the YAML of its config block (may be
// empty), extra more top-level YAML.
func wfYAML(name, config, extra string, tasks ...task) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\n", name)
	if config != "" {
		fmt.Fprintf(&b, "config:\n")
		for _, l := range strings.Split(strings.TrimSpace(config), "\n") {
			fmt.Fprintf(&b, "  %s\n", strings.TrimSpace(l))
		}
	}
	b.WriteString(extra)
	b.WriteString("tasks:\n")
	for _, t := range tasks {
		cmd, _ := json.Marshal(t.cmd) // a JSON string is a YAML double-quoted scalar
		fmt.Fprintf(&b, "  - name: %s\n    type: shell\n    config: {command: %s}\n", t.name, cmd)
		if len(t.deps) > 0 {
			deps, _ := json.Marshal(t.deps)
			fmt.Fprintf(&b, "    depends_on: %s\n", deps)
		}
		for _, l := range strings.Split(strings.TrimSpace(t.extra), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				fmt.Fprintf(&b, "    %s\n", l)
			}
		}
	}
	return b.String()
}

func parse(t testing.TB, src string) *workflow.Workflow {
	t.Helper()
	wf, err := workflow.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("parse workflow: %v\n%s", err, src)
	}
	return wf
}

// ledger is the command of a task that records that it ran.
func ledger(name string) string { return fmt.Sprintf(`echo %s >> "$T/ledger"`, name) }

// hooked wraps an executor to call a function once an attempt's process
// group exists: tests stop runs at that moment, not after a sleep.
type hooked struct {
	inner   executors.Executor
	mu      sync.Mutex
	started func(req *executors.Request, pgid int)
}

var _ executors.Executor = (*hooked)(nil)

func (h *hooked) Execute(ctx context.Context, req *executors.Request) executors.Result {
	orig := req.Started
	req.Started = func(pgid int) {
		if orig != nil {
			orig(pgid)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.started != nil {
			h.started(req, pgid)
		}
	}
	return h.inner.Execute(ctx, req)
}

// withHook makes shell tasks call fn once their process exists.
func withHook(fn func(req *executors.Request, pgid int)) func(*Options) {
	return func(o *Options) {
		o.Executors = map[string]executors.Executor{workflow.TypeShell: &hooked{inner: &shell.Shell{}, started: fn}}
	}
}

// powerLoss is a journal that fails every append after the first one
// matching at: the machine lost power right after that entry reached the
// disk.
type powerLoss struct {
	Journal
	at func(*journal.Event) bool

	mu   sync.Mutex
	dead bool
}

var _ Journal = (*powerLoss)(nil)

var errPowerLoss = fmt.Errorf("power loss (simulated)")

func (p *powerLoss) Append(evs ...*journal.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead {
		return errPowerLoss
	}
	return p.write(p.Journal.Append, evs)
}

// AppendLazy dies after a matching entry too: the engine writes a batch
// that nothing depends on yet without an fsync, and this models the power
// failing once that batch is on the disk (its loss is the case of an
// entry never written).
func (p *powerLoss) AppendLazy(evs ...*journal.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead {
		return errPowerLoss
	}
	return p.write(p.Journal.AppendLazy, evs)
}

// Sync fails once the power is lost, as Append does.
func (p *powerLoss) Sync() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead {
		return errPowerLoss
	}
	return p.Journal.Sync()
}

func (p *powerLoss) write(appendEvs func(...*journal.Event) error, evs []*journal.Event) error {
	if err := appendEvs(evs...); err != nil {
		return err
	}
	for _, e := range evs {
		if p.at(e) {
			p.dead = true
		}
	}
	return nil
}
