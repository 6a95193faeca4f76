package cli

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/picoflow/picoflow/cli/config"
	"github.com/picoflow/picoflow/cli/daemon"
	"github.com/picoflow/picoflow/cli/web"
	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/journal"
	"github.com/spf13/pflag"
)

// The daemon's files in the home directory (see home):
//
//	HOME/daemon.lock   single-instance lock, holds the daemon's PID
//	HOME/daemon.sock   control socket (picoflow trigger), mode 0600
func (h home) daemonLock() string   { return filepath.Join(string(h), "daemon.lock") }
func (h home) daemonSocket() string { return filepath.Join(string(h), "daemon.sock") }

// defaultWorkflowsDir is /etc/picoflow/workflows for root, else
// HOME/workflows.
func defaultWorkflowsDir(h home) string {
	if os.Geteuid() == 0 {
		return "/etc/picoflow/workflows"
	}
	return filepath.Join(string(h), "workflows")
}

// globalConfig returns the global config that Main loaded (defaults when
// there is none).
func globalConfig(g *globals) *config.Config {
	if g.cfg != nil {
		return g.cfg
	}
	return config.Default()
}

func init() {
	register(&command{
		name:    "daemon",
		summary: "schedule and run the workflows of a directory; serve trigger, metrics and health",
		long: `Loads every workflow file (*.yaml, *.yml) in the workflows directory and
runs those with a schedule: at their cron times, in their time zones, under
their overlap and catch-up policies. Each run writes its workflow's journal
(held only while a run of that workflow is live here); all share a task
budget (--max-parallel). On start it resumes interrupted runs and catches
up missed fires before it schedules. picoflow run and the other commands
work beside it; a fire that finds its workflow running in another process
follows the workflow's overlap policy.

A changed file is reloaded within --poll, and every file on SIGHUP; an
invalid file is logged and its previous good version stays in effect.
picoflow trigger WORKFLOW starts a run now through HOME/daemon.sock.
SIGTERM (or SIGINT) stops gracefully: no new runs, running tasks get their
shutdown grace, anything left is resumed at the next start; exit 0. A
second SIGINT or SIGTERM forces exit 130: the tasks' process groups are
killed, their runs resumed at the next start.

One daemon per home: a second one exits 5 naming the first one's PID.
With --listen (or http.listen in the config), /metrics (Prometheus),
/healthz, /readyz and the read-only web UI (see picoflow ui) are served;
only on loopback unless ui.token is set in the global config (the UI and
/metrics then need the token) or --listen-public (metrics and health only:
the UI is not served on a public address without a token).
Under systemd (Type=notify) it reports READY=1 and STOPPING=1.`,
		setup: func(fs *pflag.FlagSet) runFunc {
			dir := fs.String("workflows", "", "directory of workflow files (default: config paths.workflows_dir, else /etc/picoflow/workflows as root, else HOME/workflows)")
			listen := fs.String("listen", "", "serve /metrics, /healthz, /readyz and the web UI on HOST:PORT, e.g. 127.0.0.1:9090 (default: config http.listen; off when neither)")
			public := fs.Bool("listen-public", false, "allow a --listen address that is not loopback without ui.token (metrics and health only; they have no authentication)")
			maxParallel := fs.Int("max-parallel", 0, "tasks running at once over all workflows (default: the number of CPUs); each workflow's max_parallel applies too")
			grace := fs.Duration("grace", 0, "on SIGTERM, how long running tasks may finish before they are interrupted (default: each workflow's shutdown_grace, 30s)")
			poll := fs.Duration("poll", 3*time.Second, "how often the workflows directory is checked for changed files")
			return func(ctx context.Context, m *Main, g *globals, args []string) error {
				if len(args) != 0 {
					return exitf(ExitUsage, "daemon takes no arguments (use --workflows DIR)")
				}
				if err := checkLimits(fs, "max-parallel", "grace", "poll"); err != nil {
					return err
				}
				return m.runDaemon(ctx, g, globalConfig(g), daemonFlags{dir: *dir, listen: *listen, public: *public,
					maxParallel: *maxParallel, grace: *grace, poll: *poll})
			}
		},
	})
}

type daemonFlags struct {
	dir, listen string
	public      bool
	maxParallel int
	grace, poll time.Duration
}

func (m *Main) runDaemon(ctx context.Context, g *globals, cfg *config.Config, f daemonFlags) error {
	h := home(g.home)
	log := daemonLogger(m, g)
	tuneMemory(cfg)
	dir := firstNonEmpty(f.dir, cfg.Paths.WorkflowsDir, defaultWorkflowsDir(h))
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return exitf(ExitUsage, "workflows directory %s: not a directory (create it, or pass --workflows DIR)", dir)
	}
	listen := firstNonEmpty(f.listen, cfg.HTTP.Listen)
	token := cfg.UI.Token
	if listen != "" {
		var err error
		if listen, err = daemon.CheckListen(listen, f.public || token != ""); err != nil {
			return withCode(ExitUsage, err)
		}
	}
	var ui *web.Server
	switch {
	case listen == "":
	case token == "" && !daemon.Loopback(listen):
		log.Warn("the web UI is not served: the listen address is not loopback and ui.token is not set", "listen", listen)
	default:
		src := m.newUISource(g, dir)
		defer src.close()
		ui = m.uiHandler(g, src, log)
	}
	if err := journal.MkdirDurable(string(h), 0o750); err != nil {
		return withCode(ExitInternal, err)
	}
	logDir := firstNonEmpty(cfg.Paths.Logs, h.logs())
	x := newExecSet(cfg, log)
	defer x.close()
	d := daemon.New(daemon.Options{
		WorkflowsDir: dir,
		JournalDir:   func(wf string) string { return journalDir(string(h), wf) },
		OpenJournal:  openJournal,
		Journals:     h.journalDirs,
		Prepare:      func() error { return h.upgrade(log, "") },
		LockPath:     h.daemonLock(),
		SocketPath:   h.daemonSocket(),
		Listen:       listen,
		UI:           uiOrNil(ui),
		Guard:        guardOrNil(ui, token),
		MaxParallel:  f.maxParallel,
		PollInterval: f.poll,
		Defaults:     workflowBase(cfg),
		Engine: engine.Options{
			Executors:  x.byType,
			Redact:     x.secrets.Redact,
			Env:        x.env,
			LogDir:     logDir,
			Grace:      f.grace,
			SyncWindow: cfg.Resources.SyncWindow,
		},
		Logger:       log,
		Metrics:      metrics.NewSet(),
		NotifySocket: m.Getenv("NOTIFY_SOCKET"),
		Watchdog:     watchdogInterval(m.Getenv),
		Version:      version,
	})
	m.onForce(func() {
		if !d.Freeze(freezeWait) {
			m.forceUnsynced.Store(true)
		}
	})
	err := d.Run(ctx)
	var le *daemon.LockedError
	if errors.As(err, &le) {
		return withCode(ExitLocked, err)
	}
	if err != nil {
		return withCode(ExitInternal, err)
	}
	return nil
}

// uiOrNil keeps a nil *web.Server a nil http.Handler.
func uiOrNil(ui *web.Server) http.Handler {
	if ui == nil {
		return nil
	}
	return ui
}

// guardOrNil is the UI's token check when there is a token.
func guardOrNil(ui *web.Server, token string) func(http.Handler) http.Handler {
	if ui == nil || token == "" {
		return nil
	}
	return ui.Guard
}

// daemonLogger logs at info level in both formats: a daemon's log is its
// only story (journald keeps stderr).
func daemonLogger(m *Main, g *globals) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if g.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(m.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(m.Stderr, opts))
}

// tuneMemory sets the daemon's memory defaults where the config's
// resources.gogc and resources.memory_limit (applied by Main) say
// nothing: an idle daemon on a 512 MB board should stay near 10 MB
// resident.
func tuneMemory(cfg *config.Config) {
	if cfg.Resources.GOGC == 0 {
		debug.SetGCPercent(daemonGOGC)
	}
	if cfg.Resources.MemoryLimit == 0 {
		debug.SetMemoryLimit(daemonMemoryLimit)
		guardHeapRoom(daemonMemoryLimit) // a big DAG's live heap may near it (heaproom.go)
	}
}

// Daemon memory defaults, when the config sets none. The soft limit makes
// the GC work harder near it rather than grow the heap; it is far above an
// idle daemon's use.
const (
	daemonGOGC        = 50
	daemonMemoryLimit = 48 << 20
)

// watchdogInterval returns how often to ping systemd's watchdog: a third
// of WATCHDOG_USEC, when it is set for this process.
func watchdogInterval(getenv func(string) string) time.Duration {
	usec, err := strconv.ParseInt(getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 3
}
