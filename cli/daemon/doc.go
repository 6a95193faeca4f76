// Package daemon is the runtime of `picoflow daemon`: it owns the
// single-instance lock, the workflows directory's reloads, the scheduler's
// effect loop, the runs it starts in this process, the control socket
// (`picoflow trigger`), the HTTP endpoints (/metrics, /healthz, /readyz)
// and the sd_notify messages.
//
// The scheduling decisions themselves are engine/schedule's, a pure state
// machine; this package carries them out, in the journal's write-ahead
// order: a ScheduleFired (or ScheduleSkipped) event is durable before the
// run it starts exists, so missed fires are computed from the journal after
// a crash or a restart.
//
// Start, in order: take HOME/daemon.lock (a second daemon gets a
// LockedError naming the holder's PID), prepare the home (the upgrade of
// an earlier release's journal), replay every workflow's journal read-only,
// serve HTTP and the control socket, resume interrupted runs and wait for
// their takeover to be journaled, load the workflows, catch up missed
// fires, then schedule and send READY=1. Stop (ctx cancelled): STOPPING=1,
// close the control socket, let the runs finish within their grace (the
// engine journals the rest as interrupted), close the journals, release the
// lock.
//
// A workflow's journal (HOME/journal/WF) is open only while the workflow
// has a live run here or an event to write (journals.go); its lock is the
// workflow's, so other processes run other workflows meanwhile, and a fire
// that finds its workflow run by another process follows the overlap
// policy. Runs of one workflow share its journal (group commit); all runs
// share an engine.Semaphore of task slots (the global max_parallel), which
// the engine consults before each attempt. Writes a CLI cannot make because
// the daemon holds the journal are handed over on the control socket
// (OpResolve).
//
// The package must never be imported by anything but the cli, never
// interpret workflow files beyond engine/workflow's loader, never write the
// journal except through the engine, its own Schedule* events and the
// writes handed over to it, and never
// serve HTTP on a non-loopback address unless the operator said so
// (CheckListen).
package daemon
