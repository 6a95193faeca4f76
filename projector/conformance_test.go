package projector_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/executors"
	"github.com/picoflow/picoflow/journal"
	"github.com/picoflow/picoflow/projector"
)

// The conformance test of the two folds of the journal: the engine's
// reducer (engine.State.Apply) and the projector's SQL fold. The engine
// runs each scenario (scripted attempts, crashes, resumes, resolutions),
// and its events are then appended one by one to a real journal; after
// every one, the reducer's state and the projection in a real SQLite file
// must agree on the status of the run and of every task.
//
// The projector imports the engine in this test only: what the two folds
// must agree on is the reason the test exists.

// script is what each attempt of a task does, by task then attempt:
// success (the default past the end), failed, timeout, or hang (run until
// the engine interrupts it).
type script map[string][]string

// scripted is an executor that follows a script.
type scripted struct{ s script }

var _ executors.Executor = (*scripted)(nil)

func (x *scripted) Execute(ctx context.Context, req *executors.Request) executors.Result {
	req.Started(4000 + req.Attempt) // a task_process event
	do := "success"
	if a := x.s[req.Task.Name]; req.Attempt <= len(a) {
		do = a[req.Attempt-1]
	}
	switch do {
	case "failed":
		return executors.Result{Status: executors.Failed, ExitCode: 1, Err: fmt.Errorf("exit status 1")}
	case "timeout":
		return executors.Result{Status: executors.TimedOut, ExitCode: -1, Err: fmt.Errorf("timed out")}
	case "hang":
		<-ctx.Done()
		return executors.Result{Status: executors.Interrupted, ExitCode: -1}
	}
	return executors.Result{Status: executors.Success}
}

// jumpClock is a clock that every wait moves forward: the backoff and the
// grace of the engine end at once, and deterministically.
type jumpClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *jumpClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Millisecond)
	return c.now
}

func (c *jumpClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(max(d, 0))
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// scenario drives the engine through one case and keeps its journal as
// a list of events.
type scenario struct {
	t     *testing.T
	wf    *workflow.Workflow
	clock *jumpClock
	ex    *scripted

	mu  sync.Mutex
	evs []*journal.Event
	// crashOn names the attempt whose task_started is the last event to
	// survive a kill -9 ("task" or "task#attempt"); "stop task" stops the
	// engine once that attempt runs (its task_process), as Ctrl-C does, and
	// keeps what it writes; "stop-starting task" stops it while the
	// attempt's start is committed, so that the attempt never runs.
	crashOn string
	crashAt int // events that survive the crash (0: none yet)
	cancel  context.CancelFunc
	id      string
	// cancels reaches the live run: crashOn "cancel task" asks for a
	// picoflow cancel once that task has started.
	cancels *engine.Cancels
}

func (s *scenario) Append(evs ...*journal.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range evs {
		e.Seq = uint64(len(s.evs) + 1)
		s.evs = append(s.evs, e)
		if strings.HasPrefix(s.crashOn, "cancel ") {
			if e.Type == journal.TaskStarted && s.crashes(e) {
				s.cancels.Cancel(e.Run, engine.CancelRequest{Reason: "test", By: "conformance"})
			}
			continue
		}
		at := journal.TaskStarted
		if strings.HasPrefix(s.crashOn, "stop ") {
			at = journal.TaskProcess
		}
		if s.crashAt == 0 && e.Type == at && s.crashes(e) {
			s.crashAt = len(s.evs)
			s.cancel() // the engine stops; what it writes from now on is lost
		}
	}
	return nil
}

func (s *scenario) crashes(e *journal.Event) bool {
	spec := s.crashOn
	for _, p := range []string{"stop ", "stop-starting ", "cancel "} {
		spec = strings.TrimPrefix(spec, p)
	}
	task, n, _ := strings.Cut(spec, "#")
	return task != "" && task == e.Task && (n == "" || n == fmt.Sprint(e.Attempt))
}

func (s *scenario) AppendLazy(evs ...*journal.Event) error { return s.Append(evs...) }

func (s *scenario) Sync() error { return nil }

func (s *scenario) engine() *engine.Engine {
	return engine.New(engine.Options{
		Journal: s, Executors: map[string]executors.Executor{workflow.TypeShell: s.ex},
		LogDir: s.t.TempDir(), Clock: s.clock.Now, After: s.clock.After,
		NewRunID: func(time.Time) string { return s.id }, Cancels: s.cancels,
	})
}

// state reduces the events so far.
func (s *scenario) state() *engine.State {
	st := engine.NewState()
	st.Detail = engine.AllRuns // every task of every run, as the projector keeps them
	for _, e := range s.evs {
		if err := st.Apply(e); err != nil {
			s.t.Fatal(err)
		}
	}
	return st
}

// run starts the run (crash: kill -9 picoflow once crashOn has started).
func (s *scenario) run(crashOn string) {
	s.drive(crashOn, func(ctx context.Context, e *engine.Engine) error {
		_, err := e.Start(ctx, s.wf, nil, "manual")
		return err
	})
}

// resume takes the run over, as picoflow resume does.
func (s *scenario) resume(crashOn string) {
	s.drive(crashOn, func(ctx context.Context, e *engine.Engine) error {
		return e.Resume(ctx, s.wf, s.state().Runs[s.id])
	})
}

func (s *scenario) drive(crashOn string, fn func(context.Context, *engine.Engine) error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.crashOn, s.crashAt, s.cancel = crashOn, 0, cancel
	if err := fn(ctx, s.engine()); err != nil {
		s.t.Fatal(err)
	}
	if s.crashAt > 0 && !strings.HasPrefix(crashOn, "stop") {
		s.evs = s.evs[:s.crashAt]
	}
}

// resolve settles an in-doubt task, as picoflow resolve does.
func (s *scenario) resolve(task, status string) {
	if _, err := engine.Resolve(s, s.state(), s.id, task, status, "checked", s.clock.Now()); err != nil {
		s.t.Fatal(err)
	}
}

// cancelStopped cancels the run no process runs, as picoflow cancel does.
func (s *scenario) cancelStopped() {
	err := s.engine().CancelStopped(context.Background(), s.wf, s.state().Runs[s.id], engine.CancelRequest{By: "conformance"})
	if err != nil {
		s.t.Fatal(err)
	}
}

// append journals an event written outside the engine's run loop.
func (s *scenario) append(e *journal.Event) {
	e.Run, e.Time = s.id, s.clock.Now().UnixNano()
	s.Append(e)
}

// conformanceCase is one scenario: the tasks, what the executor does, the
// steps around the engine, and how the run must end.
type conformanceCase struct {
	name  string
	yaml  string // the tasks
	do    script
	steps func(s *scenario)
	want  string // run status, then task=status in name order
}

var conformanceCases = []conformanceCase{
	{name: "success", yaml: tasks("a", "b:a"),
		want: "success a=success b=success"},
	{name: "retry then success", yaml: tasks("a|retry: 2", "b:a"), do: script{"a": {"failed", "timeout"}},
		want: "success a=success b=success"},
	{name: "retries exhausted", yaml: tasks("a|retry: 1", "b:a"), do: script{"a": {"failed", "failed"}},
		want: "failed a=failed b=skipped"},
	{name: "timeout", yaml: tasks("a", "b:a", "c"), do: script{"a": {"timeout"}},
		want: "failed a=timeout b=skipped c=success"},
	{name: "failure with continue_on_failure", yaml: tasks("a|continue_on_failure: true", "b:a"), do: script{"a": {"failed"}},
		want: "success a=failed b=success"},
	{name: "timeout with continue_on_failure", yaml: tasks("a|continue_on_failure: true", "b:a"), do: script{"a": {"timeout"}},
		want: "success a=timeout b=success"},
	{name: "skip downstream diamond", yaml: tasks("a", "b:a", "c:a", "d:b,c", "e"), do: script{"a": {"failed"}},
		want: "failed a=failed b=skipped c=skipped d=skipped e=success"},
	{name: "crash then resume", yaml: tasks("a", "b:a"), do: script{"a": {"hang"}},
		steps: func(s *scenario) { s.run("a"); s.resume("") },
		want:  "success a=success b=success"},
	{name: "crash after retry then resume", yaml: tasks("a|retry: 2", "b:a"), do: script{"a": {"failed", "hang"}},
		steps: func(s *scenario) { s.run("a#2"); s.resume("") },
		want:  "success a=success b=success"},
	{name: "shutdown interrupts", yaml: tasks("a|idempotent: false", "b:a"), do: script{"a": {"hang"}},
		steps: func(s *scenario) { s.run("stop a") },
		want:  "running a=in_doubt"},
	{name: "shutdown while a start is committed", yaml: tasks("a|idempotent: false", "b:a"), do: script{"a": {"hang"}},
		steps: func(s *scenario) { s.run("stop-starting a") },
		want:  "running a=pending"},
	{name: "resolve succeeded", yaml: tasks("a|idempotent: false", "b:a"), do: script{"a": {"hang"}},
		steps: func(s *scenario) { s.run("a"); s.resume(""); s.resolve("a", journal.StatusSuccess); s.resume("") },
		want:  "success a=success b=success"},
	{name: "resolve failed", yaml: tasks("a|idempotent: false", "b:a"), do: script{"a": {"hang"}},
		steps: func(s *scenario) { s.run("a"); s.resume(""); s.resolve("a", journal.StatusFailed); s.resume("") },
		want:  "failed a=failed b=skipped"},
	{name: "resolve rerun", yaml: tasks("a|idempotent: false", "b:a"), do: script{"a": {"hang"}},
		steps: func(s *scenario) { s.run("a"); s.resume(""); s.resolve("a", journal.StatusRerun); s.resume("") },
		want:  "success a=success b=success"},
	{name: "damaged run", yaml: tasks("a", "b:a"), do: script{"a": {"hang"}},
		steps: func(s *scenario) {
			s.run("a")
			s.append(&journal.Event{Type: journal.RunDamaged, Reason: "journal salvage: entries lost"})
		},
		want: "damaged a=running"},
	{name: "damaged run resumed by an operator", yaml: tasks("a", "b:a"), do: script{"a": {"hang"}},
		steps: func(s *scenario) {
			s.run("a")
			s.append(&journal.Event{Type: journal.RunDamaged, Reason: "journal salvage: entries lost"})
			s.resume("")
		},
		want: "success a=success b=success"},
	{name: "interrupted run canceled", yaml: tasks("a", "b:a", "c"), do: script{"b": {"hang"}},
		steps: func(s *scenario) {
			s.run("b")
			s.append(&journal.Event{Type: journal.RunFinished, Status: journal.StatusCanceled, Reason: "run --fresh"})
		},
		want: "canceled a=success b=canceled c=success"},
	{name: "trigger rules", yaml: tasks("a", "b", "c:a,b|trigger_rule: one_failed", "d:a,b|trigger_rule: all_done",
		"e:a,b", "f:e|trigger_rule: none_failed", "g:e|trigger_rule: all_failed"), do: script{"a": {"failed"}},
		want: "failed a=failed b=success c=success d=success e=skipped f=success g=skipped"},
	{name: "handlers after a failure", yaml: tasks("a") + handlers, do: script{"a": {"failed"}},
		want: "failed a=failed bye=success no=success ok=skipped undo=skipped"},
	{name: "live cancel", yaml: tasks("a", "b:a", "c:b") + handlers, do: script{"b": {"hang"}},
		steps: func(s *scenario) { s.run("cancel b") },
		want:  "canceled a=success b=canceled bye=success c=canceled no=skipped ok=skipped undo=success"},
	{name: "interrupted run canceled by picoflow cancel", yaml: tasks("a", "b:a", "c:b") + handlers, do: script{"b": {"hang"}},
		steps: func(s *scenario) { s.run("b"); s.cancelStopped() },
		want:  "canceled a=success b=canceled bye=success c=canceled no=skipped ok=skipped undo=success"},
	{name: "crash during a cancel then resume", yaml: tasks("a", "b:a", "c:b") + handlers, do: script{"b": {"hang"}},
		steps: func(s *scenario) {
			s.run("b")
			s.append(&journal.Event{Type: journal.RunCanceled, Reason: "test", By: "conformance"})
			s.resume("")
		},
		want: "canceled a=success b=canceled bye=success c=canceled no=skipped ok=skipped undo=success"},
}

func TestConformanceReducerProjector(t *testing.T) {
	for _, tc := range conformanceCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wf, err := workflow.Parse("conformance.yaml", []byte("name: conformance\nconfig:\n  max_parallel: 1\ntasks:\n"+tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			s := &scenario{t: t, wf: wf, ex: &scripted{tc.do}, clock: &jumpClock{now: time.Unix(1764000000, 0)},
				id: "conformance-" + strings.ReplaceAll(tc.name, " ", "-"), cancels: engine.NewCancels()}
			if tc.steps == nil {
				tc.steps = func(s *scenario) { s.run("") }
			}
			tc.steps(s)
			st := conform(t, s.evs)
			if got := summary(st.Runs[s.id]); got != tc.want {
				t.Errorf("the scenario ended as %q, want %q", got, tc.want)
			}
		})
	}
}

// handlers are run handlers of every list, for the scenarios above.
const handlers = `on_success:
  - {name: ok, type: shell, config: {command: "true"}}
on_failure:
  - {name: no, type: shell, config: {command: "true"}}
on_cancel:
  - {name: undo, type: shell, config: {command: "true"}}
on_exit:
  - {name: bye, type: shell, config: {command: "true"}}
`

// tasks writes the tasks of a workflow: "name:dep,dep|key: value".
func tasks(specs ...string) string {
	var b strings.Builder
	for _, spec := range specs {
		spec, extra, _ := strings.Cut(spec, "|")
		name, deps, _ := strings.Cut(spec, ":")
		fmt.Fprintf(&b, "  - name: %s\n    type: shell\n    config: {command: \"true\"}\n", name)
		if deps != "" {
			fmt.Fprintf(&b, "    depends_on: [%s]\n", deps)
		}
		if extra != "" {
			fmt.Fprintf(&b, "    %s\n", extra)
		}
	}
	return b.String()
}

func summary(r *engine.Run) string {
	if r == nil {
		return "(no run)"
	}
	names := make([]string, 0, len(r.Tasks))
	for n := range r.Tasks {
		names = append(names, n)
	}
	sort.Strings(names)
	out := r.Status.String()
	for _, n := range names {
		out += " " + n + "=" + r.Tasks[n].Status.String()
	}
	return out
}

// conform appends evs one by one to a real journal and, after each,
// compares the reducer's state with the projection in a real SQLite file.
// It returns the reducer's final state.
func conform(t *testing.T, evs []*journal.Event) *engine.State {
	dir := filepath.Join(t.TempDir(), "journal")
	j, err := journal.Open(dir, journal.Options{Owner: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	db := open(t, filepath.Join(t.TempDir(), "picoflow.db"), projector.Options{})
	ctx := context.Background()
	st := engine.NewState()
	st.Detail = engine.AllRuns
	for i, orig := range evs {
		e := *orig
		if err := j.Append(&e); err != nil {
			t.Fatal(err)
		}
		if err := st.Apply(&e); err != nil {
			t.Fatal(err)
		}
		if _, err := db.CatchUp(ctx, dir); err != nil {
			t.Fatal(err)
		}
		for id, r := range st.Runs {
			p, err := db.Run(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if diff := compare(r, p); diff != "" {
				t.Fatalf("after entry %d (%s %s %s): the reducer and the projection disagree: %s\nevents:\n%s",
					i+1, e.Type, e.Task, e.Status, diff, eventList(evs[:i+1]))
			}
		}
	}
	return st
}

// compare returns how the projection p of a run differs from the
// reducer's r ("" when they agree).
func compare(r *engine.Run, p *projector.Run) string {
	var diffs []string
	if r.Status.String() != p.Status {
		diffs = append(diffs, fmt.Sprintf("run %s, projection %s", r.Status, p.Status))
	}
	seen := map[string]bool{}
	for _, pt := range p.Tasks {
		seen[pt.Name] = true
		want := engine.Pending.String()
		if rt := r.Tasks[pt.Name]; rt != nil {
			want = rt.Status.String()
		}
		if pt.Status != want {
			diffs = append(diffs, fmt.Sprintf("task %s %s, projection %s", pt.Name, want, pt.Status))
		}
	}
	for name, rt := range r.Tasks {
		if !seen[name] && rt.Status != engine.Pending {
			diffs = append(diffs, fmt.Sprintf("task %s %s, projection has no row", name, rt.Status))
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "; ")
}

func eventList(evs []*journal.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "  %d %s %s %s attempt %d\n", e.Seq, e.Type, e.Task, e.Status, e.Attempt)
	}
	return b.String()
}
