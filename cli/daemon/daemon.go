package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/engine/schedule"
	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/journal"
)

// Options configure a Daemon. The paths, Engine.Executors and
// Engine.LogDir are required.
type Options struct {
	WorkflowsDir string // every *.yaml / *.yml in it is a workflow
	// JournalDir is the journal of a workflow (HOME/journal/WF): the
	// daemon opens it only while the workflow has a live run here or an
	// event to write.
	JournalDir func(workflow string) string
	// OpenJournal, when set, opens a workflow's journal in place of
	// journal.Open: the CLI's, so that damage reads the same everywhere.
	OpenJournal func(dir, workflow string, opts journal.Options) (*journal.Journal, error)
	// Journals lists every journal directory of the home, read at start
	// (interrupted runs, the last fire of each workflow).
	Journals func() ([]string, error)
	// Prepare, when set, is called once before any journal is read (the
	// home's upgrade).
	Prepare    func() error
	LockPath   string // single-instance lock, HOME/daemon.lock
	SocketPath string // control socket, HOME/daemon.sock

	// Listen is the HTTP address of /metrics, /healthz and /readyz (and
	// UI); "" serves none. It must have passed CheckListen.
	Listen string
	// UI, when set, serves every other path on Listen (the web UI).
	UI http.Handler
	// Guard, when set, wraps /metrics (the UI's token check).
	Guard func(http.Handler) http.Handler
	// MaxParallel is the task budget shared by all runs (0: NumCPU); each
	// workflow's own max_parallel applies as well.
	MaxParallel int
	// PollInterval is how often the workflows directory is checked for
	// changes; it is also the heartbeat of /healthz. Default 3s.
	PollInterval time.Duration
	// Defaults is the base every workflow file and every recorded
	// definition of an interrupted run is loaded over (workflow.ParseWith):
	// the global config's defaults. Zero: workflow.BuiltinConfig().
	Defaults workflow.Config
	// Engine is the template of every run's engine options: Executors,
	// LogDir, Redact, Env, Grace, KillGrace. Journal, Slots, Clock,
	// NewRunID, Logger and Observe are set by the daemon.
	Engine engine.Options

	Logger  *slog.Logger
	Metrics *metrics.Set     // the daemon registers its series here; nil: a fresh set
	Clock   func() time.Time // default time.Now
	// NotifySocket is $NOTIFY_SOCKET for sd_notify; "" sends nothing.
	NotifySocket string
	// Watchdog, when > 0, sends WATCHDOG=1 this often (systemd WatchdogSec).
	Watchdog time.Duration
	Version  string
	// Ready, when set, is called once the daemon schedules (tests).
	Ready func()
}

// Daemon schedules the workflows of a directory and runs them in this
// process, each run writing its workflow's journal.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	clock   func() time.Time
	metrics *daemonMetrics
	slots   *engine.Semaphore
	cancels *engine.Cancels // the runs in flight, for OpCancel
	notify  notifier
	started time.Time

	js      *journals
	pending map[string][]*journal.Event // events waiting for a journal another process holds (loop only)
	blocked map[string][]schedule.Fire  // fires (overlap: queue) waiting likewise (loop only)
	live    map[string]bool             // ids of the runs in flight (loop only)
	sched   *schedule.Scheduler
	catalog *catalog
	defs    map[string]*workflow.Workflow // good definitions by name (loop only)

	requests chan request
	ended    chan runEnd
	active   int // runs in flight (loop only)
	wg       sync.WaitGroup

	resumed        chan struct{} // a resumed run journaled its takeover
	journalOpen    atomic.Bool
	scheduling     atomic.Bool
	resumesPending atomic.Int64
	fatal          error // a journal failure that stops the daemon (loop only)
	httpAddr       string
}

// New returns a Daemon; Run starts it.
func New(opts Options) *Daemon {
	if opts.PollInterval <= 0 {
		opts.PollInterval = 3 * time.Second
	}
	if opts.MaxParallel <= 0 {
		opts.MaxParallel = runtime.NumCPU()
	}
	if opts.Defaults == (workflow.Config{}) {
		opts.Defaults = workflow.BuiltinConfig()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewSet()
	}
	d := &Daemon{
		opts: opts, log: opts.Logger, clock: opts.Clock,
		slots:    engine.NewSemaphore(opts.MaxParallel),
		cancels:  engine.NewCancels(),
		notify:   notifier{socket: opts.NotifySocket},
		requests: make(chan request),
		ended:    make(chan runEnd, 16),
	}
	d.metrics = newMetrics(opts.Metrics, d.slots, opts.Version)
	d.js = newJournals(opts.JournalDir, opts.OpenJournal, journal.Options{Owner: "picoflow daemon", ObserveFsync: d.metrics.observeFsync})
	return d
}

// Freeze freezes the journals of the daemon for a forced exit, which
// kills the tasks next: no outcome of theirs is journaled, and every run
// stays resumable (journal.Freeze). It reports whether every journal
// synced within wait. Safe to call from any goroutine.
func (d *Daemon) Freeze(wait time.Duration) bool { return d.js.freeze(wait) }

// Run runs the daemon until ctx is cancelled, then stops gracefully: no
// new runs; running runs get their shutdown grace (the engine journals the
// rest as interrupted, resumable at the next start). It returns nil after
// a graceful stop, a *LockedError when another daemon holds the home, and
// an error when the journal fails.
func (d *Daemon) Run(ctx context.Context) (err error) {
	d.started = d.clock()
	d.trim() // what the process touched to get here: flags, config, init
	lock, err := acquireLock(d.opts.LockPath)
	if err != nil {
		return err
	}
	defer lock.release()

	var undo []func() // shutdown steps, run in reverse
	defer func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}()

	if d.opts.Prepare != nil {
		if err := d.opts.Prepare(); err != nil {
			return err
		}
	}
	d.pending, d.blocked, d.live = map[string][]*journal.Event{}, map[string][]schedule.Fire{}, map[string]bool{}
	undo = append(undo, func() {
		d.journalOpen.Store(false)
		if cerr := d.js.closeAll(); cerr != nil && err == nil {
			err = fmt.Errorf("close journals: %w", cerr)
		}
	})
	d.journalOpen.Store(true)
	d.metrics.journalStats(d.js.stats)
	st, err := d.replay()
	if err != nil {
		return err
	}
	d.sched = schedule.New(st.LastFire)
	d.metrics.lastTick.Store(d.clock().UnixNano())

	if d.opts.Listen != "" {
		stop, err := d.serveHTTP()
		if err != nil {
			return err
		}
		undo = append(undo, stop)
	}
	ctl, err := listenControl(d.opts.SocketPath)
	if err != nil {
		return err
	}
	stopping := make(chan struct{})
	go serveControl(ctl, d.requests, stopping, d.log)
	undo = append(undo, func() { os.Remove(d.opts.SocketPath) })

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	if err := d.ready(ctx, st); err != nil {
		return err
	}

	d.loop(ctx, hup)

	// Graceful stop: refuse new requests, let the runs (whose ctx is
	// cancelled) finish within their grace, then close in reverse.
	d.scheduling.Store(false)
	_ = d.notify.send("STOPPING=1\nSTATUS=stopping: waiting for running runs")
	close(stopping)
	ctl.Close()
	d.log.Info("stopping: no new runs; waiting for the running ones", "runs", d.active)
	d.drain()
	d.log.Info("daemon stopped")
	return d.fatal
}

// ready resumes the interrupted runs of st, loads the workflows, schedules
// them and tells systemd (and Options.Ready) that the daemon is ready.
func (d *Daemon) ready(ctx context.Context, st *engine.State) error {
	d.resumeAll(ctx, st)
	d.catalog = newCatalog(d.opts.WorkflowsDir, d.opts.Defaults, d.log)
	if _, _, err := d.catalog.scan(true); err != nil {
		return err
	}
	d.waitResumes(ctx)
	d.reschedule(ctx, true)
	d.scheduling.Store(true)
	_ = d.notify.send("READY=1\nSTATUS=scheduling")
	d.log.Info("daemon ready", "pid", os.Getpid(), "workflows", len(d.defs), "dir", d.opts.WorkflowsDir,
		"task_slots", d.slots.Size(), "socket", d.opts.SocketPath, "listen", d.opts.Listen)
	// The start-up replay's garbage (each finished run whole until its
	// end was folded: a 100,000-task run's ~17 MB) goes back to the system
	// now: an idle daemon allocates too little to collect it before the
	// runtime's forced collection, two minutes later.
	debug.FreeOSMemory()
	d.trim()
	if d.opts.Ready != nil {
		d.opts.Ready()
	}
	return nil
}

// replay folds every journal of the home into one state, read-only.
func (d *Daemon) replay() (*engine.State, error) {
	st := engine.NewState()
	if d.opts.Journals == nil {
		return st, nil
	}
	dirs, err := d.opts.Journals()
	if err != nil {
		return nil, err
	}
	for _, dir := range dirs {
		// Damage in one workflow's journal must not keep the others from
		// running: what verifies is read, the rest is reported.
		opts := journal.ScanOptions{OnDamage: func(de *journal.DamageError) error {
			d.log.Error("damaged journal: its workflow's runs past the damage are not resumed; see picoflow journal verify", "journal", dir, "err", de)
			return nil
		}}
		if err := st.FoldDir(dir, opts); err != nil {
			d.log.Error("journal not read: its workflow's interrupted runs are not resumed", "journal", dir, "err", err)
		}
	}
	d.metrics.last.seed(st) // the alerting series survive a restart
	return st, nil
}

// trimEvery is how often the loop unmaps the clean file pages that
// serving a request or a run mapped in (see trimResident).
const trimEvery = 10 * time.Minute

func (d *Daemon) trim() {
	if n, err := trimResident(); err != nil {
		d.log.Debug("trim resident pages", "err", err)
	} else {
		d.log.Debug("unmapped clean file pages", "bytes", n)
	}
}

// HTTPAddr returns the address the endpoints listen on ("" when off); it
// is set before Options.Ready is called.
func (d *Daemon) HTTPAddr() string { return d.httpAddr }

// serveHTTP starts the endpoints and returns their shutdown.
func (d *Daemon) serveHTTP() (func(), error) {
	l, err := net.Listen("tcp", d.opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", d.opts.Listen, err)
	}
	srv := &http.Server{Handler: d.handler(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("http server", "err", err)
		}
	}()
	d.httpAddr = l.Addr().String()
	d.log.Info("serving /metrics, /healthz and /readyz", "addr", d.httpAddr, "ui", d.opts.UI != nil)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// loop is the scheduler's effect loop: it returns when ctx is cancelled
// or the journal failed.
func (d *Daemon) loop(ctx context.Context, hup <-chan os.Signal) {
	heartbeat := time.NewTicker(d.opts.PollInterval)
	defer heartbeat.Stop()
	var watchdog <-chan time.Time
	if d.opts.Watchdog > 0 {
		t := time.NewTicker(d.opts.Watchdog)
		defer t.Stop()
		watchdog = t.C
	}
	trim := time.NewTicker(trimEvery)
	defer trim.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for d.fatal == nil {
		now := d.clock()
		d.metrics.lastTick.Store(now.UnixNano())
		d.apply(ctx, d.sched.Tick(now))
		wait := time.Hour
		if next := d.sched.NextWake(); !next.IsZero() {
			wait = min(wait, max(next.Sub(d.clock()), 0))
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-heartbeat.C:
			d.reload(ctx, false)
			d.retryBlocked(ctx)
		case <-hup:
			d.log.Info("SIGHUP: reloading every workflow file")
			d.reload(ctx, true)
		case <-watchdog:
			_ = d.notify.send("WATCHDOG=1")
		case <-trim.C:
			if d.active == 0 {
				d.trim()
			}
		case r := <-d.requests:
			if r.Op == OpResume {
				d.handOverResume(ctx, r) // replies when the run ends
			} else {
				r.reply <- d.handle(ctx, r.Request)
			}
		case e := <-d.ended:
			d.finished(ctx, e)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// drain waits for every run in flight to end. It keeps /healthz and the
// systemd watchdog fed: a long shutdown grace is not a hang.
func (d *Daemon) drain() {
	every := d.opts.PollInterval
	if w := d.opts.Watchdog; w > 0 && w < every {
		every = w
	}
	beat := time.NewTicker(every)
	defer beat.Stop()
	for d.active > 0 {
		select {
		case e := <-d.ended:
			d.release(e.workflow)
			d.active--
			d.metrics.runs.Store(int64(d.active))
			d.logEnd(e)
		case <-beat.C:
			d.metrics.lastTick.Store(d.clock().UnixNano())
			if d.opts.Watchdog > 0 {
				_ = d.notify.send("WATCHDOG=1")
			}
		}
	}
	d.wg.Wait()
}

// reload rescans the workflows directory and reschedules on a change.
func (d *Daemon) reload(ctx context.Context, force bool) {
	changed, failed, err := d.catalog.scan(force)
	if err != nil {
		d.log.Error("reload", "err", err)
		d.metrics.reloaded("error")
		return
	}
	if failed > 0 {
		d.metrics.reloaded("invalid")
	}
	if changed || force {
		d.reschedule(ctx, false)
		d.metrics.reloaded("ok")
	}
	d.metrics.invalid.Store(int64(d.catalog.invalid()))
}

// reschedule hands the current good definitions to the scheduler.
func (d *Daemon) reschedule(ctx context.Context, first bool) {
	d.defs = d.catalog.workflows()
	jobs := make([]schedule.Job, 0, len(d.defs))
	for _, wf := range d.defs {
		j, err := JobOf(wf) // validated by the catalog
		if err != nil {
			continue
		}
		jobs = append(jobs, j)
	}
	d.metrics.workflows.Store(int64(len(jobs)))
	d.metrics.invalid.Store(int64(d.catalog.invalid()))
	if !first {
		d.log.Info("workflows reloaded", "workflows", len(jobs))
	}
	d.apply(ctx, d.sched.Set(jobs, d.clock()))
}
