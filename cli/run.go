package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/picoflow/picoflow/cli/config"
	"github.com/picoflow/picoflow/cli/daemon"
	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/executors"
	httpx "github.com/picoflow/picoflow/executors/http"
	"github.com/picoflow/picoflow/executors/secret"
	"github.com/picoflow/picoflow/executors/shell"
	"github.com/picoflow/picoflow/executors/ssh"
	"github.com/spf13/pflag"
)

// execFlags are the flags shared by run and resume.
type execFlags struct {
	maxParallel int
	grace       time.Duration
	fs          *pflag.FlagSet
}

func (f *execFlags) add(fs *pflag.FlagSet) {
	f.fs = fs
	fs.IntVar(&f.maxParallel, "max-parallel", 0, "tasks running at once (default: the workflow's max_parallel, else the number of CPUs)")
	fs.DurationVar(&f.grace, "grace", 0, "on SIGINT/SIGTERM, how long running tasks may finish before they are killed (default: shutdown_grace, 30s)")
}

// check refuses values that would be silently ignored or meaningless.
func (f *execFlags) check() error { return checkLimits(f.fs, "max-parallel", "grace") }

// checkLimits refuses an explicit task budget below 1 and an explicit
// duration that is not positive (a default is had by leaving the flag out).
func checkLimits(fs *pflag.FlagSet, intFlag string, durFlags ...string) error {
	if fs.Changed(intFlag) {
		if n, _ := fs.GetInt(intFlag); n < 1 {
			return exitf(ExitUsage, "--%s must be 1 or more, not %d (leave it out for the default)", intFlag, n)
		}
	}
	for _, name := range durFlags {
		if !fs.Changed(name) {
			continue
		}
		if d, _ := fs.GetDuration(name); d <= 0 {
			return exitf(ExitUsage, "--%s must be more than 0, not %s (leave it out for the default)", name, d)
		}
	}
	return nil
}

func init() {
	register(&command{
		name:    "run",
		args:    "FILE",
		summary: "run a workflow once, resuming its interrupted run if there is one",
		long: `Runs the workflow in FILE and waits for it. If an earlier run of the same
workflow was interrupted (power loss, kill -9, SIGTERM), it is resumed
instead: tasks that succeeded are not run again. --fresh starts a new run and
cancels the interrupted one (its on_cancel and on_exit handlers run).

SIGINT or SIGTERM stops gracefully: no new task starts, running ones get
--grace, and the run stays resumable (exit 3); a signal before the first
task started starts none. A second SIGINT or SIGTERM forces exit 130: the
tasks' process groups are killed, the run stays resumable.

Exit codes: 0 success, 1 a task failed, 2 invalid workflow or usage,
3 interrupted (resumable), 4 a task is in doubt, 5 already running,
6 the definition changed since the interrupted run; a run canceled by
picoflow cancel exits 1 (see picoflow help exit-codes).`,
		setup: func(fs *pflag.FlagSet) runFunc {
			var ef execFlags
			ef.add(fs)
			params := fs.StringArray("param", nil, "KEY=VALUE overriding the workflow's env for this run (repeatable)")
			fresh := fs.Bool("fresh", false, "start a new run even if an interrupted one exists")
			return func(ctx context.Context, m *Main, g *globals, args []string) error {
				if len(args) != 1 {
					return exitf(ExitUsage, "run needs exactly one workflow FILE")
				}
				if err := ef.check(); err != nil {
					return err
				}
				wf, err := workflow.LoadWith(args[0], workflowBase(g.cfg))
				if err != nil {
					return invalid(m, err)
				}
				p, err := parseParams(*params, wf)
				if err != nil {
					return err
				}
				return m.runWorkflow(ctx, g, wf, p, *fresh, ef)
			}
		},
	})
	register(&command{
		name:    "resume",
		args:    "RUN_ID",
		summary: "resume an interrupted run with the definition recorded in the journal",
		long: `Continues an interrupted run. The definition always comes from the
journal, so the workflow file may have changed or be gone. If a daemon runs
another run of the same workflow (it holds the workflow's journal), the
daemon resumes the run and this command waits for its end, with the same
exit codes.`,
		setup: func(fs *pflag.FlagSet) runFunc {
			var ef execFlags
			ef.add(fs)
			// Accepted for scripts written against older releases; it did
			// nothing then either, and says so now.
			fs.Bool("use-recorded-definition", true, "")
			_ = fs.MarkHidden("use-recorded-definition")
			return func(ctx context.Context, m *Main, g *globals, args []string) error {
				if fs.Changed("use-recorded-definition") {
					fmt.Fprintln(m.Stderr, "picoflow: --use-recorded-definition is not needed: resume always uses the recorded definition")
				}
				if len(args) != 1 {
					return exitf(ExitUsage, "resume needs exactly one RUN_ID")
				}
				if err := ef.check(); err != nil {
					return err
				}
				return m.resumeRun(ctx, g, args[0], ef)
			}
		},
	})
}

// invalid prints the problems of a workflow that failed to load.
func invalid(m *Main, err error) error {
	var probs workflow.Problems
	if errors.As(err, &probs) {
		fmt.Fprintln(m.Stderr, probs.Error())
		return exitf(ExitUsage, "invalid workflow: %d problem(s)", len(probs))
	}
	return withCode(ExitUsage, err)
}

func parseParams(kvs []string, wf *workflow.Workflow) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	declared := make([]string, 0, len(wf.Env))
	for k := range wf.Env {
		declared = append(declared, k)
	}
	sort.Strings(declared)
	p := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, exitf(ExitUsage, "--param %q: want KEY=VALUE", kv)
		}
		if _, ok := wf.Env[k]; !ok {
			return nil, exitf(ExitUsage, "--param %s: the workflow's env has no %s%s; declare it under env: with a default",
				k, k, suggest(k, declared))
		}
		p[k] = v
	}
	return p, nil
}

// newEngine returns the engine of one run and the function that releases
// its executors' pooled connections once the run is over.
func (m *Main) newEngine(g *globals, h home, j heldJournal, wf *workflow.Workflow, ef execFlags) (*engine.Engine, func()) {
	eng, sw, done := m.engineAhead(g, h, wf, ef)
	m.attach(sw, j)
	return eng, done
}

// engineAhead is newEngine before the workflow's journal is held: no
// engine call but HeadStart may come before attach gave it the journal.
func (m *Main) engineAhead(g *globals, h home, wf *workflow.Workflow, ef execFlags) (*engine.Engine, *startWatch, func()) {
	m.smallRunGC(g, wf)
	p := newProgress(m.Stdout, g, wf)
	sw := &startWatch{p: p}
	x := newExecSet(g.cfg, g.log)
	cancels := engine.NewCancels()
	stop := make(chan struct{})
	go func() { // picoflow cancel's SIGUSR1
		for {
			select {
			case <-stop:
				return
			case <-m.cancelSig:
				takeCancels(h, cancels)
			}
		}
	}()
	return engine.New(engine.Options{
		Cancels:     cancels,
		Journal:     sw,
		Executors:   x.byType,
		Redact:      x.secrets.Redact,
		Env:         x.env,
		LogDir:      h.logs(),
		Logger:      g.log,
		Observe:     p.observe,
		MaxParallel: ef.maxParallel,
		Grace:       ef.grace,
		SyncWindow:  globalConfig(g).Resources.SyncWindow,
		LazyStart:   true, // nobody waits for a foreground run's start: its first fsync carries it
	}), sw, func() { close(stop); x.close() }
}

// attach gives the engine of sw the journal takeWorkflow returned, before
// the engine runs anything.
func (m *Main) attach(sw *startWatch, j heldJournal) {
	sw.Journal, sw.ready = j.Journal, j.ready
	m.onForce(func() { // after the journal's Freeze (takeWorkflow)
		if !m.forceUnsynced.Load() {
			sw.p.forced()
		}
	})
}

// execSet is the executor of every task type in this build, each behind
// the secret store of the global config: references are resolved when a
// task runs and secret values are masked in its log; Redact keeps them out
// of the journal; every configured secret is masked from the start. env is
// the environment tasks inherit: PicoFlow's own without the variables that
// back secrets. The shell executor's attempts also record their process
// groups while their code runs (recordReleased), for what a forced exit
// says. close releases the pooled ssh and http connections.
type execSet struct {
	byType  map[string]executors.Executor
	secrets *secret.Store
	env     []string
	close   func()
}

func newExecSet(cfg *config.Config, log *slog.Logger) *execSet {
	sec := secret.New(secretSources(cfg), os.LookupEnv)
	sec.MaskAll()
	sx := ssh.New(ssh.Options{Logger: log})
	hx := httpx.New(httpx.Options{Logger: log})
	return &execSet{
		byType: map[string]executors.Executor{
			workflow.TypeShell: recordReleased(sec.Wrap(&shell.Shell{})),
			workflow.TypeSSH:   sec.Wrap(sx),
			workflow.TypeHTTP:  sec.Wrap(hx),
		},
		secrets: sec,
		env:     sec.TaskEnv(os.Environ()),
		close:   func() { sx.Close(); hx.Close() },
	}
}

// secretSources converts the secrets the global config declares.
func secretSources(cfg *config.Config) map[string]secret.Source {
	src := make(map[string]secret.Source)
	if cfg != nil {
		for name, s := range cfg.Secrets {
			src[name] = secret.Source{Env: s.Env, File: s.File}
		}
	}
	return src
}

// checkSecrets refuses, before anything runs, a workflow that references
// secrets the global config does not declare.
func checkSecrets(wf *workflow.Workflow, cfg *config.Config) error {
	if err := secret.Check(wf.SecretRefs(), secretSources(cfg)); err != nil {
		return exitf(ExitUsage, "%s: %v", wf.Name, err)
	}
	return nil
}

// takeWorkflow makes this process the one that runs wf: the secrets it
// references exist, the workflow's journal is held (its lock is the
// workflow's: other workflows run in other processes meanwhile, a daemon
// included) and replayed, keeping the finished runs detail names whole
// (nil: none). release lets go of it. In a new home the journal comes
// back before the home's directories are durable: the engine's journal
// waits for them (heldJournal.ready, startWatch). A run does not write the
// history database: the next query catches it up from the journal (as
// after a daemon's runs), so a run costs no SQLite writes and fsyncs.
func (m *Main) takeWorkflow(g *globals, h home, wf *workflow.Workflow, verb string, detail func(string) bool) (heldJournal, *engine.State, func(), error) {
	if err := checkSecrets(wf, g.cfg); err != nil {
		return heldJournal{}, nil, nil, err
	}
	j, st, err := h.holdWorkflow(wf.Name, verb+" "+wf.Name, g, detail)
	if err != nil {
		return heldJournal{}, nil, nil, err
	}
	m.onForce(func() {
		// Both waits are bounded: a forced exit must exit, and a stalled
		// file system may hold the journal's fsync or the new home's
		// layout's (ready) for ever.
		if !j.Freeze(freezeWait) || !readyWithin(j.ready, freezeWait) {
			m.forceUnsynced.Store(true)
		}
	})
	return j, st, func() { _ = j.ready(); j.Close() }, nil
}

// readyWithin reports whether ready returned nil within wait; it is left
// running otherwise (the process is exiting).
func readyWithin(ready func() error, wait time.Duration) bool {
	done := make(chan error, 1)
	go func() { done <- ready() }()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case err := <-done:
		return err == nil
	case <-t.C:
		return false
	}
}

func (m *Main) runWorkflow(ctx context.Context, g *globals, wf *workflow.Workflow, params map[string]string, fresh bool, ef execFlags) error {
	h := home(g.home)
	// The engine first, and the first task's shell started ahead, while
	// the journal opens: most runs are new runs (engine.HeadStart).
	eng, sw, done := m.engineAhead(g, h, wf, ef)
	defer done()
	var hs *engine.HeadStart
	if !fresh {
		hs = eng.HeadStart(wf, params)
	}
	defer hs.Dismiss() // unless the run took it
	j, st, release, err := m.takeWorkflow(g, h, wf, "run", nil)
	if err != nil {
		return err
	}
	defer release()
	m.attach(sw, j)

	var prev *engine.Run
	for _, r := range st.Interrupted() {
		if r.Workflow == wf.Name {
			prev = r
		}
	}
	// A signal while the file was read or the journal opened and replayed:
	// nothing new is journaled, nothing started (the engine checks again,
	// up to each task's start).
	if prev != nil && !fresh {
		if err := notStopped(ctx, prev.ID); err != nil {
			return err
		}
		if prev.DefHash != wf.Hash {
			return exitf(ExitChanged, "run %s of %s was interrupted, and %s changed since it started (definition %s, now %s).\n"+
				"  picoflow run --fresh %s                         abandon it and start a new run\n"+
				"  picoflow resume %s   finish it with the definition it started with (recorded in the journal)",
				prev.ID, wf.Name, wf.Source, workflow.ShortHash(prev.DefHash), workflow.ShortHash(wf.Hash), wf.Source, prev.ID)
		}
		done := 0
		for _, t := range wf.Tasks {
			if s := prev.Tasks[t.Name]; s != nil && s.Status.Final() {
				done++
			}
		}
		hs.Dismiss()
		fmt.Fprintf(m.Stdout, "resuming run %s (%d of %d tasks already done)\n", prev.ID, done, len(wf.Tasks))
		err = eng.Resume(ctx, wf, prev)
		return runOutcome(ctx, prev, err)
	}
	if err := notStopped(ctx, ""); err != nil {
		return err
	}
	if prev != nil {
		if n := eng.KillLeftovers(prev.ID); n > 0 {
			fmt.Fprintf(m.Stdout, "killed %d leftover process group(s) of interrupted run %s\n", n, prev.ID)
		}
		if err := cancelRun(ctx, g, eng, prev); err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "interrupted run %s marked canceled (--fresh)\n", prev.ID)
		if err := notStopped(ctx, ""); err != nil {
			return err
		}
	}
	r, err := eng.StartHead(ctx, wf, params, "manual", hs)
	return runOutcome(ctx, r, err)
}

// findRun replays the home's journals and matches id (a full run id or
// a unique prefix) against its runs. The runs id names are kept whole (it
// names one, or the match fails): rerun reads the definition and task
// states of the finished run it names.
func (h home) findRun(id string) (*engine.State, string, error) {
	prefix := id
	st, err := h.replayAll(func(run string) bool { return strings.HasPrefix(run, prefix) })
	if err != nil {
		return nil, "", withCode(ExitInternal, err)
	}
	id, err = matchRunID(id, stateRunIDs(st))
	return st, id, err
}

func (m *Main) resumeRun(ctx context.Context, g *globals, id string, ef execFlags) error {
	h := home(g.home)
	st, id, err := h.findRun(id)
	if err != nil {
		return err
	}
	r := st.Runs[id]
	// A damaged run (a salvage lost some of its events) is never resumed
	// automatically, but an operator may resume it by its id.
	if r.Status != engine.RunRunning && r.Status != engine.RunDamaged {
		return exitf(ExitUsage, "run %s is not interrupted: it finished with status %s", id, r.Status)
	}
	// The journal records the definition's bytes, not the global defaults
	// it was loaded over: the run resumes with the current ones, the same
	// values as long as the config has not changed since it started. The
	// run is folded again under the lock: this fold's task states (a big
	// run's ~10 MB) are let go before the definition is parsed.
	src, def := r.Source, []byte(r.Definition)    // wf keeps def as its Raw
	r = &engine.Run{ID: id, Workflow: r.Workflow} // the fold is no longer reachable
	wf, err := workflow.ParseWith(src, def, workflowBase(g.cfg))
	if err != nil {
		return withCode(ExitInternal, fmt.Errorf("recorded definition of run %s: %w", id, err))
	}
	j, st, release, err := m.takeWorkflow(g, h, wf, "resume", nil)
	var ee *exitError
	if errors.As(err, &ee) && ee.code == ExitLocked && daemon.Holder(h.daemonLock()) != 0 {
		return m.resumeInDaemon(ctx, h, r)
	}
	if err != nil {
		return err
	}
	defer release()
	r = st.Runs[id] // re-read under the lock
	if r == nil || (r.Status != engine.RunRunning && r.Status != engine.RunDamaged) {
		return exitf(ExitUsage, "run %s is no longer interrupted", id)
	}
	if err := notStopped(ctx, id); err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "resuming run %s with its recorded definition (%s)\n", id, workflow.ShortHash(r.DefHash))
	eng, done := m.newEngine(g, h, j, wf, ef)
	defer done()
	err = eng.Resume(ctx, wf, r)
	return runOutcome(ctx, r, err)
}

// notStopped refuses to go on once ctx is cancelled (SIGINT or SIGTERM)
// before a run started or resumed (resume: the interrupted run's id, or
// ""), so that no task starts after the signal.
func notStopped(ctx context.Context, resume string) error {
	if ctx.Err() == nil {
		return nil
	}
	if resume == "" {
		return exitf(ExitInterrupted, "stopped by a signal before the run started: no task was started and no run was journaled")
	}
	return exitf(ExitInterrupted, "stopped by a signal before run %s resumed: no task was started; it stays resumable: "+
		"picoflow resume %s (or run the same file) continues it", resume, resume)
}

// resumeInDaemon hands the resume of run r to the daemon, which holds its
// workflow's journal (a run of the workflow is live there), waits for the
// run to end and reports it as a resume in this process would have.
func (m *Main) resumeInDaemon(ctx context.Context, h home, r *engine.Run) error {
	fmt.Fprintf(m.Stdout, "resuming run %s in the daemon, which runs %s now; waiting for the run to end\n", r.ID, r.Workflow)
	resp, err := daemon.Call(ctx, h.daemonSocket(), daemon.Request{Op: daemon.OpResume, Workflow: r.Workflow, Run: r.ID})
	if err != nil && ctx.Err() != nil {
		return exitf(ExitInterrupted, "stopped waiting; run %s goes on in the daemon (picoflow status shows it)", r.ID)
	}
	if err != nil {
		return withCode(ExitInternal, fmt.Errorf("hand the resume over to the daemon: %w", err))
	}
	if !resp.OK {
		return withCode(triggerExit(resp.Code), errors.New(resp.Error))
	}
	// The run as the daemon left it, for the one mapping of ends to codes.
	end := &engine.Run{ID: r.ID, Tasks: map[string]*engine.TaskState{}}
	for _, s := range []engine.RunStatus{engine.RunSuccess, engine.RunFailed, engine.RunCanceled} {
		if resp.End != nil && resp.End.Status == s.String() {
			end.Status = s
		}
	}
	endCtx := context.Background()
	if resp.End != nil {
		for _, name := range resp.End.InDoubt {
			end.Tasks[name] = &engine.TaskState{Status: engine.InDoubt}
		}
		if resp.End.Interrupted {
			c, cancel := context.WithCancel(endCtx)
			cancel()
			endCtx = c
		}
	}
	return runOutcome(endCtx, end, nil)
}

// cancelRun cancels an interrupted run that run --fresh supersedes, with
// the definition it ran: its on_cancel and on_exit handlers run.
func cancelRun(ctx context.Context, g *globals, eng *engine.Engine, r *engine.Run) error {
	wf, err := workflow.ParseWith(r.Source, []byte(r.Definition), workflowBase(g.cfg))
	if err != nil {
		return withCode(ExitInternal, fmt.Errorf("recorded definition of run %s: %w", r.ID, err))
	}
	req := engine.CancelRequest{Reason: "superseded by picoflow run --fresh", By: requester()}
	if err := eng.CancelStopped(ctx, wf, r, req); err != nil {
		return withCode(ExitInternal, err)
	}
	if r.Status != engine.RunCanceled {
		return exitf(ExitInterrupted, "run %s: cancel journaled, but its handlers were stopped", r.ID)
	}
	return nil
}

// runOutcome maps a run's end to an exit code.
func runOutcome(ctx context.Context, r *engine.Run, err error) error {
	if err != nil && r != nil && r.Status == engine.RunRunning {
		// The run is in the journal (its run_started was written): say so,
		// or the next run's "resuming run" comes as a surprise.
		return withCode(ExitInternal, fmt.Errorf("%w\n  run %s was started and stays resumable: once the cause is fixed, "+
			"picoflow resume %s (or run the same file) continues it", err, r.ID, r.ID))
	}
	if err != nil {
		return withCode(ExitInternal, err)
	}
	switch r.Status {
	case engine.RunSuccess:
		return nil
	case engine.RunFailed:
		return exitf(ExitFailed, "run %s failed", r.ID)
	case engine.RunCanceled:
		return exitf(ExitFailed, "run %s was canceled", r.ID)
	}
	if ctx.Err() != nil {
		return exitf(ExitInterrupted, "run %s stopped before it finished; picoflow resume %s (or run the same file) continues it", r.ID, r.ID)
	}
	var doubt []string
	for name, t := range r.Tasks {
		if t.Status == engine.InDoubt {
			doubt = append(doubt, name)
		}
	}
	sort.Strings(doubt)
	return exitf(ExitInDoubt, "run %s is held: task(s) %s were interrupted and are not idempotent.\n"+
		"  check what they did, then: picoflow resolve %s TASK --succeeded|--failed|--rerun", r.ID, strings.Join(doubt, ", "), r.ID)
}
