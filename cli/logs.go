package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/projector"
	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name:    "logs",
		args:    "WORKFLOW TASK",
		summary: "print a task attempt's log (latest run and attempt by default)",
		long: `Prints the log file of one attempt of TASK: by default the latest attempt
in the newest run of WORKFLOW that ran the task. Which attempt it is goes
to stderr. --follow keeps printing what the attempt writes until it ends
(or its run is interrupted, or Ctrl-C). An attempt that succeeded without
writing anything has no log file: logs prints nothing and says so.

  picoflow logs backup upload
  picoflow logs backup upload --run 20261125-080000-3f2a --attempt 1
  picoflow logs backup upload --run 20261125-08 (a unique prefix of a run id)
  picoflow logs backup compress --follow`,
		setup: func(fs *pflag.FlagSet) runFunc {
			run := fs.String("run", "", "the run (default: the newest run that ran TASK)")
			attempt := fs.Int("attempt", 0, "the attempt number (default: the latest)")
			follow := fs.BoolP("follow", "f", false, "keep printing while the attempt runs")
			return func(ctx context.Context, m *Main, g *globals, args []string) error {
				if len(args) != 2 {
					return exitf(ExitUsage, "logs needs WORKFLOW and TASK")
				}
				if *attempt < 0 {
					return exitf(ExitUsage, "--attempt must be 1 or more")
				}
				q := projector.AttemptQuery{Workflow: args[0], Task: args[1], Run: *run, Attempt: *attempt}
				return m.logs(ctx, g, q, *follow)
			}
		},
	})
}

// followPolls returns the poll intervals of logs --follow: the log file,
// and the journal (through the projection) for the end of the attempt.
func (m *Main) followPolls() (file, jour time.Duration) {
	return cmp.Or(m.FollowPoll, 200*time.Millisecond), cmp.Or(m.FollowJournalPoll, time.Second)
}

func (m *Main) logs(ctx context.Context, g *globals, q projector.AttemptQuery, follow bool) error {
	db, err := m.queryProjection(ctx, g)
	if err != nil {
		return err
	}
	defer db.Close()
	if q.Run != "" {
		ids, err := db.RunIDsWithPrefix(ctx, q.Run, 100)
		if err != nil {
			return withCode(ExitInternal, err)
		}
		if q.Run, err = matchRunID(q.Run, ids); err != nil {
			return err
		}
	}
	a, err := db.FindAttempt(ctx, q)
	if errors.Is(err, projector.ErrNotFound) {
		what := fmt.Sprintf("task %s of workflow %s", q.Task, q.Workflow)
		if q.Run != "" {
			what += " in run " + q.Run
		}
		if q.Attempt > 0 {
			what = fmt.Sprintf("attempt %d of %s", q.Attempt, what)
		}
		return exitf(ExitNotFound, "no %s has run (picoflow history %s --tasks lists its runs)", what, q.Workflow)
	}
	if err != nil {
		return withCode(ExitInternal, err)
	}
	fmt.Fprintf(m.Stderr, "run %s, %s attempt %d (%s): %s\n", a.Run, a.Task, a.Attempt, a.Status, a.LogPath)
	if a.LogPath == "" {
		return exitf(ExitNotFound, "attempt %d of %s in run %s has no log file", a.Attempt, a.Task, a.Run)
	}
	f, err := os.Open(a.LogPath)
	switch {
	case errors.Is(err, os.ErrNotExist) && follow && a.Status == "running":
		f = nil // follow opens it once it exists (a moment after the start)
	case errors.Is(err, os.ErrNotExist) && engine.LogNotKept(a.LogPath, a.Status):
		fmt.Fprintln(m.Stderr, noOutput)
		return nil
	case errors.Is(err, os.ErrNotExist) && engine.LogNeverKept(a.LogPath, a.Status):
		return exitf(ExitNotFound, "attempt %d of %s (%s) has no log file %s: picoflow stopped before keeping it", a.Attempt, a.Task, a.Status, a.LogPath)
	case errors.Is(err, os.ErrNotExist):
		return exitf(ExitNotFound, "log %s is gone (picoflow gc removes the logs of old runs: see retention.log_days)", a.LogPath)
	case err != nil:
		return withCode(ExitInternal, err)
	case a.Status != "running" && emptyFile(f):
		f.Close() // the run's last empty logs stay (engine/logfile.go): say so as when none is kept
		fmt.Fprintln(m.Stderr, emptyOutput(a.Status))
		return nil
	default:
		if _, err := io.Copy(m.Stdout, f); err != nil {
			f.Close()
			return withCode(ExitInternal, err)
		}
	}
	if !follow || a.Status != "running" {
		f.Close()
		return nil
	}
	return m.follow(ctx, g, db, a, f) // closes f
}

// noOutput is what logs says of an attempt that succeeded without writing
// anything: PicoFlow keeps no log file for it (engine/logfile.go).
const noOutput = "no output: the attempt succeeded without writing anything (PicoFlow keeps no log file for it)"

// emptyOutput is what logs says of an attempt that ended with an empty log
// file.
func emptyOutput(status string) string {
	if status == "success" {
		return "no output: the attempt succeeded without writing anything"
	}
	return "no output: the attempt wrote nothing"
}

// emptyFile reports whether f is an empty file.
func emptyFile(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Size() == 0
}

// follow copies what is appended to f until the attempt is no longer
// running in the journal, its run is interrupted, or ctx ends. f is nil
// until the log file exists.
func (m *Main) follow(ctx context.Context, g *globals, db *projector.DB, a *projector.Attempt, f *os.File) error {
	h := home(g.home)
	q := projector.AttemptQuery{Workflow: a.Workflow, Task: a.Task, Run: a.Run, Attempt: a.Attempt}
	poll, jourPoll := m.followPolls()
	lastCheck := time.Now()
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	copyNew := func() error {
		var ok bool
		var err error
		if f, ok, err = followed(f, a.LogPath); !ok || err != nil {
			return err
		}
		_, err = io.Copy(m.Stdout, f)
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
		if err := copyNew(); err != nil {
			return withCode(ExitInternal, err)
		}
		if time.Since(lastCheck) < jourPoll {
			continue
		}
		lastCheck = time.Now()
		cur, err := m.attemptNow(ctx, h, db, q)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return withCode(ExitInternal, err)
		}
		ended := cur.Status != "running"
		if !ended && !h.workflowHeld(a.Workflow) {
			fmt.Fprintf(m.Stderr, "run %s is interrupted: no process runs it\n", a.Run)
			ended = true
		}
		if !ended {
			continue
		}
		err = copyNew() // what was written before the end
		if f == nil && engine.LogNotKept(cur.LogPath, cur.Status) {
			fmt.Fprintln(m.Stderr, noOutput)
		}
		if cur.Status != "running" {
			fmt.Fprintf(m.Stderr, "attempt %d of %s ended: %s\n", a.Attempt, a.Task, cur.Status)
		}
		return withCode(ExitInternal, err)
	}
}

// followed returns the file to copy from, and whether to copy now: f
// while it is the file at path, else the file at path opened from its
// start; nothing to copy while path names no file (f is kept). A follow
// may open a file that is not the attempt's: another attempt's free log
// stands at path for a moment while the attempt tries to reuse it
// (engine/logfile.go) and goes back when it is held, and the attempt then
// creates its own file at path, which the follow must read instead.
func followed(f *os.File, path string) (*os.File, bool, error) {
	at, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return f, false, nil
	}
	if err != nil {
		return f, false, err
	}
	if f != nil {
		if fi, err := f.Stat(); err == nil && os.SameFile(fi, at) {
			return f, true, nil
		}
		f.Close()
	}
	g, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return g, true, nil
}

// attemptNow catches the projection up with the journal and reads the
// attempt again.
func (m *Main) attemptNow(ctx context.Context, h home, db *projector.DB, q projector.AttemptQuery) (*projector.Attempt, error) {
	if _, err := h.catchUp(ctx, db); err != nil {
		return nil, err
	}
	return db.FindAttempt(ctx, q)
}
