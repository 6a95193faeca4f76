package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/picoflow/picoflow/cli/daemon"
	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/journal"
	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name:    "cancel",
		args:    "RUN_ID",
		summary: "cancel a run: stop its tasks, run its on_cancel handlers; it is never resumed",
		long: `Cancels a run wherever it runs: in a foreground picoflow run (or resume),
in the daemon, or nowhere (a run a crash interrupted). Running tasks get the
workflow's shutdown_grace (or --grace: 0 stops them now; a cancel of a run
already canceled or stopping may shorten its wait, never lengthen it), then
their process groups are killed (SIGTERM, SIGKILL 5 s later); tasks that
had not started are marked canceled; the on_cancel and on_exit handlers run;
the run ends canceled, journaled with --reason and who asked
(user@host/pid). A canceled run is never resumed.

How it reaches the run: the daemon through HOME/daemon.sock; a foreground
run through a request file HOME/cancel/RUN_ID and SIGUSR1 to the process
that holds the workflow's journal (its LOCK names it); a run nobody holds
is canceled by this command itself, which then runs its handlers.
kill -USR1 PID with no request file cancels the runs of a foreground
picoflow process, journaled as asked by "signal".

Exit codes: 0 canceled, 8 no such run, 10 the run had already finished,
5 the journal is held by a process that does not take cancels (gc).`,
		setup: func(fs *pflag.FlagSet) runFunc {
			reason := fs.String("reason", "", "why, recorded in the journal and shown by history, status and replay")
			grace := fs.Duration("grace", 0, "how long running tasks may finish before they are killed, for this cancel (default: the workflow's shutdown_grace, 30s; 0: kill them now)")
			return func(ctx context.Context, m *Main, g *globals, args []string) error {
				if len(args) != 1 {
					return exitf(ExitUsage, "cancel needs exactly one RUN_ID")
				}
				req := engine.CancelRequest{Reason: *reason, By: requester()}
				if fs.Changed("grace") {
					if *grace < 0 {
						return exitf(ExitUsage, "--grace must be 0 (kill the running tasks now) or more, not %s", *grace)
					}
					req.Grace = grace
				}
				return m.cancel(ctx, g, args[0], req)
			}
		},
	})
}

// requester names who asks for a cancel: user@host/pid.
func requester() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s@%s/%d", name, host, os.Getpid())
}

// cancelWait bounds how long cancel waits for the process running the run
// to journal the cancel.
const cancelWait = 15 * time.Second

// errHolderGone: the process that held the run's journal exited between
// the look at its LOCK and the signal (its run ended, or it crashed).
var errHolderGone = errors.New("the process holding the journal exited")

// cancel cancels run (an id or a unique prefix) where it runs. When the
// process that ran it exits as it is asked, cancel looks again: the run
// finished meanwhile (ExitFinished), or no process holds it any more and
// cancel cancels it itself.
func (m *Main) cancel(ctx context.Context, g *globals, run string, req engine.CancelRequest) error {
	for try := 0; ; try++ {
		err := m.cancelOnce(ctx, g, run, req)
		if !errors.Is(err, errHolderGone) || try == 2 {
			return err
		}
	}
}

func (m *Main) cancelOnce(ctx context.Context, g *globals, run string, req engine.CancelRequest) error {
	h := home(g.home)
	all, err := h.replayAll(nil) // a finished run is refused: a summary will do
	if err != nil {
		return withCode(ExitInternal, err)
	}
	id, err := matchRunID(run, stateRunIDs(all))
	if err != nil {
		return err
	}
	r := all.Runs[id]
	if err := notFinished(r); err != nil {
		return err
	}
	wf, err := workflow.ParseWith(r.Source, []byte(r.Definition), workflowBase(g.cfg))
	if err != nil {
		return withCode(ExitInternal, fmt.Errorf("recorded definition of run %s: %w", id, err))
	}
	lock := filepath.Join(journalDir(string(h), wf.Name), "LOCK")
	if pid := daemon.Holder(lock); pid != 0 {
		return m.cancelElsewhere(ctx, h, r, pid, req)
	}
	j, st, release, err := m.takeWorkflow(g, h, wf, "cancel", nil)
	var ee *exitError
	if errors.As(err, &ee) && ee.code == ExitLocked {
		// Taken between the probe and the open: whoever took it runs the run.
		return m.cancelElsewhere(ctx, h, r, daemon.Holder(lock), req)
	}
	if err != nil {
		return err
	}
	defer release()
	if r = st.Runs[id]; r == nil {
		return exitf(ExitNotFound, "run %s is no longer in the journal of %s", id, wf.Name)
	}
	if err := notFinished(r); err != nil {
		return err
	}
	eng, done := m.newEngine(g, h, j, wf, execFlags{})
	defer done()
	if n := eng.KillLeftovers(id); n > 0 {
		fmt.Fprintf(m.Stdout, "killed %d leftover process group(s) of run %s\n", n, id)
	}
	if err := eng.CancelStopped(ctx, wf, r, req); err != nil {
		return withCode(ExitInternal, err)
	}
	if r.Status != engine.RunCanceled {
		return exitf(ExitInterrupted, "run %s: cancel journaled, but its handlers were stopped; picoflow cancel %s finishes them", id, id)
	}
	fmt.Fprintf(m.Stdout, "run %s canceled (no process was running it)\n", id)
	return nil
}

// notFinished refuses to cancel a finished run.
func notFinished(r *engine.Run) error {
	if r.Status == engine.RunRunning || r.Status == engine.RunDamaged {
		return nil
	}
	return exitf(ExitFinished, "run %s already finished with status %s; there is nothing to cancel", r.ID, r.Status)
}

// cancelElsewhere hands the cancel to the process holding the run's
// journal and waits until the journal shows it.
func (m *Main) cancelElsewhere(ctx context.Context, h home, r *engine.Run, pid int, req engine.CancelRequest) error {
	dir := journalDir(string(h), r.Workflow)
	var poke func() error
	taken := func() bool { return true } // the daemon takes a request as it answers
	switch {
	case pid > 0 && daemon.Holder(h.daemonLock()) == pid:
		poke = func() error {
			return h.handOver(ctx, daemon.Request{Op: daemon.OpCancel, Workflow: r.Workflow, Run: r.ID,
				Reason: req.Reason, By: req.By, Grace: req.Grace})
		}
	case pid > 0 && takesCancels(filepath.Join(dir, "LOCK")):
		if err := writeCancelRequest(h, r.ID, req); err != nil {
			return withCode(ExitInternal, err)
		}
		defer os.Remove(cancelRequestPath(h, r.ID))
		poke = func() error { return syscall.Kill(pid, syscall.SIGUSR1) }
		// The run removes the file when it takes the request: until then
		// a cancel of a run canceled already (its journal shows it at
		// once) must not remove it, or its --grace would be lost.
		taken = func() bool { _, err := os.Stat(cancelRequestPath(h, r.ID)); return errors.Is(err, os.ErrNotExist) }
	default:
		return exitf(ExitLocked, "the journal of %s is held by %s, which does not take cancels; try again when it is done",
			r.Workflow, holderName(filepath.Join(dir, "LOCK")))
	}
	if err := poke(); err != nil {
		var ee *exitError
		switch {
		case errors.As(err, &ee):
			return err
		case errors.Is(err, syscall.ESRCH):
			return withCode(ExitInternal, fmt.Errorf("ask pid %d to cancel run %s: %w", pid, r.ID, errHolderGone))
		}
		return withCode(ExitInternal, fmt.Errorf("ask pid %d to cancel run %s: %w", pid, r.ID, err))
	}
	if err := waitCanceled(ctx, dir, r.ID, poke, taken); err != nil {
		return err
	}
	grace := "the workflow's shutdown_grace"
	if req.Grace != nil {
		grace = req.Grace.String()
	}
	fmt.Fprintf(m.Stdout, "run %s canceled: its running tasks get %s, then its on_cancel handlers run (pid %d runs it)\n", r.ID, grace, pid)
	return nil
}

// waitCanceled reads the run's journal until it shows the cancel and the
// request was taken, asking again (poke) now and then: a process may get
// the signal before its run has registered.
func waitCanceled(ctx context.Context, dir, id string, poke func() error, taken func() bool) error {
	deadline := time.Now().Add(cancelWait)
	for i := 1; ; i++ {
		st := engine.NewState()
		skip := func(*journal.DamageError) error { return nil }
		if err := st.FoldDir(dir, journal.ScanOptions{OnDamage: skip}); err != nil {
			return withCode(ExitInternal, err)
		}
		if r := st.Runs[id]; r == nil {
			return exitf(ExitNotFound, "run %s is no longer in the journal", id)
		} else if !r.Canceled.IsZero() && (taken() || r.Status != engine.RunRunning) {
			return nil
		} else if r.Status != engine.RunRunning {
			return exitf(ExitFinished, "run %s finished with status %s before the cancel reached it", id, r.Status)
		}
		if time.Now().After(deadline) {
			return exitf(ExitInternal, "the process holding the journal did not journal the cancel of run %s within %s "+
				"(it may run another run of the workflow: cancel %s again once that one ends)", id, cancelWait, id)
		}
		select {
		case <-ctx.Done():
			return withCode(ExitInterrupted, ctx.Err())
		case <-time.After(50 * time.Millisecond): // polling a file another process writes
		}
		if i%20 == 0 {
			_ = poke()
		}
	}
}

// takesCancels reports whether the holder of a journal lock is a
// foreground run or resume, which handles SIGUSR1; to anything else (gc)
// the signal would be fatal.
func takesCancels(lock string) bool {
	b, err := os.ReadFile(lock)
	if err != nil {
		return false
	}
	_, owner, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	return strings.HasPrefix(owner, "run ") || strings.HasPrefix(owner, "resume ")
}

func holderName(lock string) string {
	b, err := os.ReadFile(lock)
	if err != nil || len(b) == 0 {
		return "another process"
	}
	pid, owner, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	return "pid " + pid + " (" + owner + ")"
}

// The request files of foreground cancels: HOME/cancel/RUN_ID holds the
// CancelRequest as JSON until the process running the run takes it.
func cancelRequestPath(h home, id string) string { return filepath.Join(string(h), "cancel", id) }

func writeCancelRequest(h home, id string, req engine.CancelRequest) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	p := cancelRequestPath(h, id)
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return fmt.Errorf("cancel request: %w", err)
	}
	tmp := p + ".tmp." + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return fmt.Errorf("cancel request: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cancel request: %w", err)
	}
	return nil
}

// takeCancels hands the cancel requests of the runs live in c to them; on
// a SIGUSR1 with no request at all, it cancels every live run as asked by
// "signal".
func takeCancels(h home, c *engine.Cancels) {
	live := c.Live()
	any := false
	for _, id := range live {
		b, err := os.ReadFile(cancelRequestPath(h, id))
		if err != nil {
			continue
		}
		var req engine.CancelRequest
		if json.Unmarshal(b, &req) != nil {
			continue
		}
		any = true
		c.Cancel(id, req)
		os.Remove(cancelRequestPath(h, id)) // taken: no stale request outlives a killed cancel
	}
	if ents, _ := os.ReadDir(filepath.Join(string(h), "cancel")); any || len(ents) > 0 {
		return
	}
	for _, id := range live {
		c.Cancel(id, engine.CancelRequest{By: "signal"})
	}
}
