package daemon

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/journal"
)

// Writes a CLI hands over because the daemon holds the journal they go to
// (a run of that workflow is live here): resolve, truncate (gc) and resume.

// withJournal runs fn with the journal of wf held, and answers for it when
// the journal cannot be had.
func (d *Daemon) withJournal(wf string, fn func(*journal.Journal) Response) Response {
	j, err := d.js.acquire(wf)
	var be *BusyError
	if errors.As(err, &be) {
		return Response{Code: CodeBusy, Error: be.Error()}
	}
	if err != nil {
		return Response{Code: CodeInternal, Error: err.Error()}
	}
	defer d.release(wf)
	return fn(j)
}

// resolve journals the resolution of an in-doubt task (see Resolve).
func (d *Daemon) resolve(req Request) Response {
	return d.withJournal(req.Workflow, func(j *journal.Journal) Response {
		st := engine.NewState()
		if err := st.FoldJournal(j); err != nil {
			return Response{Code: CodeInternal, Error: err.Error()}
		}
		err := Resolve(j, st, req.Run, req.Task, req.Status, req.Reason, d.clock())
		var re *RefusedError
		if errors.As(err, &re) {
			return Response{Code: re.Code, Error: re.Msg}
		}
		if err != nil {
			return Response{Code: CodeInternal, Error: err.Error()}
		}
		d.log.Info("in-doubt task resolved", "run", req.Run, "task", req.Task, "as", req.Status)
		return Response{OK: true, Run: req.Run, Workflow: req.Workflow}
	})
}

// truncate cuts the front of a workflow's journal for picoflow gc, which
// computed the cut from what the journal held when it looked: entries
// appended since come after it.
func (d *Daemon) truncate(req Request) Response {
	return d.withJournal(req.Workflow, func(j *journal.Journal) Response {
		if err := j.TruncateFront(req.Before); err != nil {
			return Response{Code: CodeInternal, Error: err.Error()}
		}
		d.log.Info("journal truncated for picoflow gc", "workflow", req.Workflow, "before", req.Before)
		return Response{OK: true, Workflow: req.Workflow}
	})
}

// RunEnd is how a run handed over to the daemon ended (Response.End): its
// status as the journal has it, and the tasks that hold it in doubt.
type RunEnd struct {
	Status      string   `json:"status"` // success, failed, canceled, or running (not finished)
	InDoubt     []string `json:"in_doubt,omitempty"`
	Interrupted bool     `json:"interrupted,omitempty"` // the daemon stopped before the run ended
}

// handOverResume resumes, in the daemon, an interrupted run of a workflow
// whose journal the daemon holds (a CLI cannot write it then), and answers
// when the run ends, as `picoflow resume` would have waited for it.
func (d *Daemon) handOverResume(ctx context.Context, r request) {
	fail := func(code, msg string) { r.reply <- Response{Code: code, Error: msg, Workflow: r.Workflow} }
	j, err := d.js.acquire(r.Workflow)
	var be *BusyError
	if errors.As(err, &be) {
		fail(CodeBusy, be.Error())
		return
	}
	if err != nil {
		fail(CodeInternal, err.Error())
		return
	}
	defer d.release(r.Workflow)
	st := engine.NewState()
	if err := st.FoldJournal(j); err != nil {
		fail(CodeInternal, err.Error())
		return
	}
	run := st.Runs[r.Run]
	switch {
	case run == nil:
		fail(CodeNotFound, fmt.Sprintf("no run %s in the journal", r.Run))
		return
	case run.Status != engine.RunRunning:
		fail(CodeInvalid, fmt.Sprintf("run %s is not interrupted: it finished with status %s", r.Run, run.Status))
		return
	case d.live[r.Run]:
		fail(CodeBusy, fmt.Sprintf("run %s is running in this daemon", r.Run))
		return
	}
	err = d.resumeOne(ctx, j, run, true, func(run *engine.Run, err error) {
		if err != nil {
			r.reply <- Response{Code: CodeInternal, Error: err.Error(), Run: run.ID, Workflow: run.Workflow}
			return
		}
		end := &RunEnd{Status: run.Status.String(), Interrupted: ctx.Err() != nil}
		for name, t := range run.Tasks {
			if t.Status == engine.InDoubt {
				end.InDoubt = append(end.InDoubt, name)
			}
		}
		sort.Strings(end.InDoubt)
		r.reply <- Response{OK: true, Run: run.ID, Workflow: run.Workflow, End: end}
	})
	if err != nil {
		fail(CodeInternal, err.Error())
	}
}
