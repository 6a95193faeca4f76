package cli

import (
	"fmt"
	"io"
)

// Exit codes. Every code the binary can return is in this table, with the
// hint shown by `picoflow help exit-codes`. The numbers are part of the
// interface: scripts and systemd units depend on them.
const (
	ExitOK          = 0
	ExitFailed      = 1  // a run finished with a failed task
	ExitUsage       = 2  // bad command line, invalid workflow or config
	ExitInterrupted = 3  // stopped by a signal; the run is resumable
	ExitInDoubt     = 4  // a non-idempotent task was interrupted and needs `picoflow resolve`
	ExitLocked      = 5  // another process holds the workflow or the journal
	ExitChanged     = 6  // the definition changed since the interrupted run
	ExitInternal    = 7  // journal, file system or other internal error
	ExitNotFound    = 8  // no such run, task or log
	ExitNoDaemon    = 9  // picoflow trigger: no daemon runs for this home
	ExitFinished    = 10 // picoflow cancel: the run already finished
	ExitForced      = 130
)

type exitInfo struct {
	code    int
	name    string
	meaning string
	hint    string
}

var exitTable = []exitInfo{
	{ExitOK, "ok", "the command succeeded; for run: every task succeeded (or failed with continue_on_failure)", ""},
	{ExitFailed, "failed", "the run finished and failed", "see the failed task's log: picoflow logs WORKFLOW TASK"},
	{ExitUsage, "usage", "bad command line, or the workflow or config is invalid", "picoflow validate FILE prints every problem with its line"},
	{ExitInterrupted, "interrupted", "stopped by SIGINT/SIGTERM before the run finished; nothing was marked failed", "picoflow run FILE (or picoflow resume RUN_ID) continues it"},
	{ExitInDoubt, "in-doubt", "a task with idempotent: false was running when PicoFlow stopped", "check what it did, then: picoflow resolve RUN_ID TASK --succeeded|--failed|--rerun"},
	{ExitLocked, "locked", "another picoflow process runs this workflow or holds the journal", "wait for it, or stop the process named in the message"},
	{ExitChanged, "changed", "the workflow file changed since its interrupted run started", "picoflow run --fresh FILE, or picoflow resume RUN_ID (the recorded definition)"},
	{ExitInternal, "internal", "journal, file system or other internal error", "the message names the file; check disk space and permissions. A damaged journal (the message names file, offset and entry): picoflow journal verify, then picoflow journal salvage WORKFLOW"},
	{ExitNotFound, "not-found", "no such run, task or log", "picoflow history lists runs"},
	{ExitNoDaemon, "no-daemon", "picoflow trigger found no daemon running for this home", "start one (picoflow daemon, or systemctl start picoflow), or run the file directly: picoflow run FILE"},
	{ExitFinished, "finished", "picoflow cancel: the run had already finished (its status stays as it was)", "picoflow history RUN_ID shows how it ended"},
	{ExitForced, "forced", "a second SIGINT or SIGTERM forced an immediate exit; the tasks it ran were killed", "the journal is consistent: picoflow run FILE resumes"},
}

func printExitCodes(w io.Writer) {
	fmt.Fprintln(w, "Exit codes of picoflow:")
	fmt.Fprintln(w)
	for _, e := range exitTable {
		fmt.Fprintf(w, "  %3d  %-12s %s\n", e.code, e.name, e.meaning)
		if e.hint != "" {
			fmt.Fprintf(w, "       %-12s hint: %s\n", "", e.hint)
		}
	}
}

// exitError carries an exit code up to Main.Run.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitf(code int, format string, args ...any) error {
	return &exitError{code: code, err: fmt.Errorf(format, args...)}
}

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}
