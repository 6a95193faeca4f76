package engine

import (
	"path/filepath"
	"runtime"

	"github.com/picoflow/picoflow/engine/workflow"
)

// The head start: a new run's first shell, started while its journal
// opens.
//
// A foreground `picoflow run` holds and replays its workflow's journal
// before it knows whether it starts a new run or resumes an interrupted
// one; in a home of a few runs that is half a millisecond, and the
// first task's fork, exec and shell start-up (about a millisecond) came
// after it. HeadStart starts that attempt first, as the spare of the run
// that may follow (spare.go): its shell waits at its gate while the
// journal opens. StartHead then journals a run with the head start's id,
// and that run's first batch takes the spare as any batch takes one: the
// gate opens once the batch with its task_started is committed. Nothing
// of the task runs before. A run not started (the journal holds an
// interrupted run, another process holds the workflow, an error) dismisses
// it: its shell reads end of file at its gate and exits unrun, as when
// picoflow dies meanwhile.
//
// Its log: a run's log directory is made only once its run_started is
// written (gc takes a directory whose run no journal holds), so the head
// start's log is an unnamed file (O_TMPFILE) in the workflow's log
// directory, linked to its path in the run's directory once that exists
// (placeHead). Killed before, nothing of it stays. Where the file system
// has no unnamed files, the workflow has no log directory yet (its first
// run), or the link fails, there is no head start.
//
// Only a task that may have a spare gets one (a root task whose executor
// gates, none of readsAtFork), and only while it is fresh: a journal that
// takes longer than spareFresh to open finds it stale, and the task
// starts as any launch.

// HeadStart is an attempt started ahead of its run (nil: none).
type HeadStart struct {
	x *runner // the run's loop, not started; nil once a run took it
}

// HeadStart starts the attempt that a new run of wf with params launches
// first, ahead of that run. nil when there is none to start. The caller
// passes it to StartHead or dismisses it.
func (e *Engine) HeadStart(wf *workflow.Workflow, params map[string]string) *HeadStart {
	i := firstRoot(wf)
	if i < 0 || !e.spareable(wf, i, params) {
		return nil
	}
	now := e.opts.Clock()
	r := &Run{ID: e.opts.NewRunID(now), Workflow: wf.Name, Params: params}
	dir := runLogDir(e.opts.LogDir, wf.Name, r.ID)
	path := attemptLog(dir, wf.Tasks[i].Name, 1)
	f, err := openUnnamed(filepath.Dir(dir), path)
	if err != nil {
		return nil // before the runner is made: a big DAG's is megabytes
	}
	x := e.newRunner(wf, r)
	l := launch{task: i, attempt: 1, logPath: path, log: f, gate: newStartGate(), spare: true, made: now, after: -1}
	l.req = x.request(i, 1)
	x.killCtx, x.kill = newKillCtx()
	x.idle = make(chan launch)
	x.ahead = &l
	x.spawn(l)
	// Its fork first: left in this P's queue, the attempt waited for the
	// journal's open to block (as commitAndLaunch yields after its spawns).
	runtime.Gosched()
	return &HeadStart{x: x}
}

// firstRoot returns the task a new run of wf starts first (init queues
// the tasks without upstream tasks in definition order); -1: none.
func firstRoot(wf *workflow.Workflow) int {
	for i := range wf.DAG() {
		if len(wf.Deps(i)) == 0 {
			return i
		}
	}
	return -1
}

func (h *HeadStart) runID() string {
	if h == nil || h.x == nil {
		return ""
	}
	return h.x.r.ID
}

// Dismiss lets the head start go unrun, once no run took it, and returns
// once its shell has exited.
func (h *HeadStart) Dismiss() {
	if h == nil || h.x == nil {
		return
	}
	x := h.x
	h.x = nil
	x.settleSpare()
	close(x.idle)
	x.kill()
}

// linkLog is linkUnnamed; tests make it fail.
var linkLog = linkUnnamed

// placeHead links the head start's log to its path, now that the run's
// log directory exists; if it cannot, the head start is dismissed and its
// task starts as any launch.
func (x *runner) placeHead() {
	s := x.ahead
	if s == nil || s.log == nil {
		return
	}
	if err := linkLog(s.log, s.logPath); err != nil {
		x.e.log.Warn("no head start: its log could not be linked", "path", s.logPath, "err", err)
		x.settleSpare()
	}
}
