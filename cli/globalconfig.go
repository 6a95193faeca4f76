package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"

	"github.com/picoflow/picoflow/cli/config"
	"github.com/picoflow/picoflow/engine/workflow"
)

// systemConfig is the configuration file used when neither --config,
// $PICOFLOW_CONFIG nor HOME/config.yaml names one.
const systemConfig = "/etc/picoflow/config.yaml"

// loadConfig finds and parses the global configuration and applies what
// concerns the whole process: the home (unless --home or $PICOFLOW_HOME
// chose one), the log format (unless --log-format did), the memory limit
// and GOGC. validate checks the file itself and version needs none.
func (m *Main) loadConfig(name string, g *globals) error {
	m.defaultMemory(name)
	if name == "validate" || name == "version" {
		return nil
	}
	cfg, err := m.readConfig(g)
	if err != nil {
		return err
	}
	g.cfg = cfg
	if cfg.Paths.Home != "" && !g.fs.Changed("home") && m.Getenv("PICOFLOW_HOME") == "" {
		g.home = cfg.Paths.Home
	}
	if cfg.Log.Format != "" && !g.fs.Changed("log-format") {
		g.logFormat = cfg.Log.Format
		g.log = m.logger(g.logFormat)
	}
	if cfg.Resources.MemoryLimit > 0 {
		unguardHeapRoom()
		debug.SetMemoryLimit(cfg.Resources.MemoryLimit)
	}
	if cfg.Resources.GOGC != 0 {
		debug.SetGCPercent(cfg.Resources.GOGC)
	}
	return nil
}

// The memory defaults of the commands that load a workflow file, unless
// resources.memory_limit and resources.gogc (or $GOMEMLIMIT and $GOGC) set
// them: the daemon's. Small workflows never come near the soft limit; with
// a 100,000-task DAG (tens of MiB of tasks) the GC works harder instead of
// letting the heap grow to twice what is live, which keeps it near a 512 MB
// board's budget of 64 MiB (scripts/scale.sh measures it). GOGC 50 keeps
// the garbage of a 10,000-task run to half its live heap for no measurable
// CPU. validate runs GOGC 25: its heap is the parse of the files and
// nothing else, and it exits once they are checked, so the GC spends a
// little more CPU (within the noise of user time on a 5 MB file) for a
// peak ~4 MiB lower (scripts/scale.sh's mixed-5MB: ~39 → ~35 MiB).
//
// The queries (status, history, logs) run GOGC 25 and no soft limit: their
// heap is a few MiB, but catching the history database up reads a big
// workflow's definition segment whole (7 MB for 100,000 tasks) once per
// run, and at GOGC 100 each such read let the heap grow to twice that
// before the next collection: the first status after three 100,000-task
// runs peaked at ~45 MiB RSS, ~39 MiB at 25 (scripts/scale.sh --history),
// for no CPU the shared test machine could tell apart. No soft limit:
// status of a live 100,000-task run holds its tasks, more than any limit a
// small board could spare, and would only make the collector spin.
const (
	workflowMemoryLimit = 48 << 20
	workflowGOGC        = 50
	validateGOGC        = 25
	queryGOGC           = 25
)

// A run of a small DAG collects its garbage less often: GOGC 50 also
// halves the collector's floor (Go's heap goal is never under 4 MiB ×
// GOGC/100), and a small run's live heap (1–3 MiB) sits on that floor,
// so at 50 it collected after every ~1 MiB of garbage: 16 times for
// 1,000 `true` tasks, 29 for 2,000, ~5 % of the run's CPU (a task's
// fork environment and journal entries are a few KiB of short-lived
// garbage). At 200 the floor is 8 MiB: 2 and 4 collections, for ~5 MiB
// more peak RSS (17 → 23 MiB at 1,000 tasks). Bigger DAGs keep 50: their
// live heap is over the floor, and there the percentage is what keeps
// them within a board's budget. Neither $GOGC nor resources.gogc is
// overridden; the daemon keeps its own (cli/daemon.go).
const (
	smallRunTasks = 2000
	smallRunGOGC  = 200
)

// smallRunGC raises GOGC for a run of wf when it is small (see above).
func (m *Main) smallRunGC(g *globals, wf *workflow.Workflow) {
	if len(wf.Tasks) > smallRunTasks || m.Getenv("GOGC") != "" || (g.cfg != nil && g.cfg.Resources.GOGC != 0) {
		return
	}
	debug.SetGCPercent(smallRunGOGC)
}

func (m *Main) defaultMemory(name string) {
	gogc, limit := workflowGOGC, true
	switch name {
	case "validate":
		gogc = validateGOGC
	case "run", "resume":
	case "status", "history", "logs":
		gogc, limit = queryGOGC, false
	default:
		return
	}
	if limit && m.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(workflowMemoryLimit)
		guardHeapRoom(workflowMemoryLimit) // heaproom.go
	} else {
		unguardHeapRoom()
	}
	if m.Getenv("GOGC") == "" {
		debug.SetGCPercent(gogc)
	}
}

// readConfig finds and parses the configuration file; problems are
// printed to stderr, one per line.
func (m *Main) readConfig(g *globals) (*config.Config, error) {
	path, err := config.Find(g.config, filepath.Join(g.home, "config.yaml"), systemConfig)
	if err != nil {
		return nil, withCode(ExitUsage, err)
	}
	cfg, err := config.Load(path)
	var probs config.Problems
	if errors.As(err, &probs) {
		fmt.Fprintln(m.Stderr, probs.Error())
		return nil, exitf(ExitUsage, "invalid config %s: %d problem(s)", path, len(probs))
	}
	if err != nil {
		return nil, withCode(ExitUsage, err)
	}
	return cfg, nil
}

// workflowBase returns what every workflow is loaded over
// (workflow.ParseWith): the built-in defaults, with each field that the
// global config's defaults: sets (non-zero) in its place. A workflow's own
// config: and a task's own retry and timeout still win. cfg nil: the
// built-in defaults.
func workflowBase(cfg *config.Config) workflow.Config {
	b := workflow.BuiltinConfig()
	if cfg == nil {
		return b
	}
	d := cfg.Defaults
	if d.MaxParallel > 0 {
		b.MaxParallel = d.MaxParallel
	}
	if d.Retry > 0 {
		b.RetryDefault = d.Retry
	}
	if d.Timeout > 0 {
		b.TimeoutDefault = d.Timeout
	}
	if d.ShutdownGrace > 0 {
		b.ShutdownGrace = d.ShutdownGrace
	}
	if d.Backoff.Initial > 0 {
		b.Backoff.Initial = d.Backoff.Initial
	}
	if d.Backoff.Multiplier > 0 {
		b.Backoff.Multiplier = d.Backoff.Multiplier
	}
	if d.Backoff.Max > 0 {
		b.Backoff.Max = d.Backoff.Max
	}
	b.MaxFileSize = cfg.Resources.MaxWorkflowFile
	return b
}

// validateBase is workflowBase for picoflow validate, which loads no
// config up front (it checks the --config file itself): the config that
// any other command would use, found the same way. When that file does not
// load, workflows are checked over the built-in defaults; a note says so
// unless --config named the file (its problems are reported then).
func (m *Main) validateBase(g *globals) workflow.Config {
	path, err := config.Find(g.config, filepath.Join(g.home, "config.yaml"), systemConfig)
	if err != nil || path == "" {
		return workflowBase(nil)
	}
	cfg, err := config.Load(path)
	if err != nil {
		if g.config == "" {
			fmt.Fprintf(m.Stderr, "picoflow: note: config %s does not load (picoflow validate --config %s says why); workflows are checked over the built-in defaults\n", path, path)
		}
		return workflowBase(nil)
	}
	return workflowBase(cfg)
}

// checkConfig validates the global config file at path ("" checks
// nothing), its secret files included, for picoflow validate. The problems
// are the same type as the workflow loader's, so both print alike.
func checkConfig(path string) (ok bool, probs workflow.Problems) {
	if path == "" {
		return false, nil
	}
	cfg, err := config.Load(path)
	var cps config.Problems
	switch {
	case errors.As(err, &cps):
	case err != nil:
		return false, workflow.Problems{{File: path, Msg: err.Error(), Err: err}}
	default:
		cps = cfg.CheckFiles()
	}
	return len(cps) == 0, cps
}
