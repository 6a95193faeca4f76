// Package engine runs workflows on top of the journal. It owns the run state
// and its reducer (State.Apply, Run.Apply: pure, no I/O, no clock), and the
// effect loop that decides what to start, journals each transition and only
// then acts on it, launches executors and folds their results back in.
//
// Write-ahead ordering, per loop turn:
//
//  1. results of finished attempts become TaskFinished / TaskRetrying /
//     TaskSkipped events, and newly startable tasks TaskStarted events;
//  2. all of them are appended in one batch, fsynced when something depends
//     on it (durable.go), and only then applied to the run: the loop plans
//     the batch on staged copies of task states (the same reducer), never
//     on the run itself;
//  3. only then are the new attempts launched (their requests are built
//     and their goroutines open the logs while the batch is committed, and
//     start no process unless it is); their process group id is appended lazily (TaskProcess) and made
//     durable by the next batch. While every slot is taken, the next
//     ready shell task's attempt is started ahead and waits at its gate
//     unstaged (the spare, spare.go);
//  4. once the oldest entry written without an fsync is Options.SyncWindow
//     (10 ms) old, the journal is synced, after the launches.
//
// State changes only through Apply, after the commit, outside a run too:
// Resolve (picoflow resolve) checks, commits, then applies. Observe sees an
// event once it is durable. Every wait of the loop (backoff, shutdown
// grace, sync window) is on the injected Options.After.
//
// So a task's success is on disk before any dependent starts, and an
// attempt is on disk before its process exists: after a crash every process
// that may have run is known. Replay (Apply over the journal, no executors)
// rebuilds exactly the state the loop had.
//
// What starts when is decided in one place each: a task's trigger rule by
// Decide (rules.go, pure) over a tally of its upstream outcomes; the run
// handlers (on_success, on_failure, on_cancel, on_exit: tasks after the
// DAG) by the handler phase once the DAG has settled (dag.go); a cancel by
// CancelEvents (cancel.go, pure), staged and committed like any transition,
// reaching a live run through the process's Cancels registry.
//
// Each attempt's stdout and stderr go to a log file the task's processes
// write themselves (HOME/logs/WF/RUN/TASK.ATTEMPT.log). The empty log of
// an attempt that succeeded is renamed to a later attempt's instead of
// creating a file per attempt, once a write lease proves nobody has it
// open (logfile.go); LogNotKept tells such an attempt from a removed log.
//
// The engine must never import the projector or the cli, never read the
// wall clock inside Apply, and never write secrets to the journal: every
// text an executor produced passes Options.Redact first.
package engine
