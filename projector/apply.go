package projector

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/picoflow/picoflow/journal"
)

// The statements that fold events into rows. They mirror the engine's
// reducer (engine.Run.Apply) without importing it: the projector reads the
// journal only. Events of a run the database does not know (its rows were
// removed by retention) are ignored.
const (
	sqlDefinition      = `INSERT INTO definitions (hash, body) VALUES (?, ?) ON CONFLICT (hash) DO NOTHING`
	sqlDefinitionKnown = `SELECT 1 FROM definitions WHERE hash = ?`
	sqlRunStarted      = `INSERT INTO runs (id, workflow, status, trigger, def_hash, source, params, started_at, first_seq, last_seq, rerun_of)
		VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`
	sqlRunKnown   = `SELECT 1 FROM runs WHERE id = ?`
	sqlRunTouch   = `UPDATE runs SET last_seq = ? WHERE id = ?`
	sqlRunResumed = `UPDATE runs SET resumes = resumes + 1,
		status = CASE status WHEN 'damaged' THEN 'running' ELSE status END WHERE id = ?`
	sqlRunDamaged = `UPDATE runs SET status = 'damaged', reason = ? WHERE id = ? AND status = 'running'`
	// A finished run has nothing in flight: what was (a run canceled while
	// interrupted) is shown as canceled / interrupted.
	sqlRunEndTasks = `UPDATE tasks SET status = 'canceled'
		WHERE run_id = ? AND status IN ('running', 'retrying', 'pending', 'in_doubt')`
	sqlRunEndAttempts = `UPDATE task_attempts SET status = 'interrupted' WHERE run_id = ? AND status IN ('running', 'in_doubt')`
	sqlRunFinished    = `UPDATE runs SET status = ?, finished_at = ?, reason = ?,
		duration_ms = COALESCE(?, MAX(0, (? - started_at) / 1000000)) WHERE id = ?`

	sqlAttemptStarted = `INSERT INTO task_attempts (run_id, task, attempt, status, started_at, log_path, resumed)
		VALUES (?, ?, ?, 'running', ?, ?, ?)
		ON CONFLICT (run_id, task, attempt) DO UPDATE SET status = 'running', started_at = excluded.started_at,
			log_path = excluded.log_path, resumed = excluded.resumed, exit_code = NULL, finished_at = NULL,
			duration_ms = NULL, output_tail = '', error = '', reason = '', pgid = 0`
	sqlTaskStarted = `INSERT INTO tasks (run_id, task, ord, status, attempts, started_at, attempt_started_at)
		VALUES (?, ?, ?, 'running', ?, ?, ?)
		ON CONFLICT (run_id, task) DO UPDATE SET status = 'running', attempts = excluded.attempts,
			started_at = COALESCE(tasks.started_at, excluded.started_at),
			attempt_started_at = excluded.attempt_started_at, exit_code = NULL, finished_at = NULL,
			duration_ms = NULL, retry_at = NULL, pgid = 0, error = '', reason = ''`
	sqlAttemptPGID = `UPDATE task_attempts SET pgid = ? WHERE run_id = ? AND task = ? AND attempt = ?`
	sqlTaskPGID    = `UPDATE tasks SET pgid = ? WHERE run_id = ? AND task = ? AND attempts = ?`
	// The end of an attempt also sets the process group a task_process
	// of it in the same batch left pending (NULL: none; see pgids).
	sqlAttemptEnd = `UPDATE task_attempts SET status = ?, exit_code = ?, finished_at = ?,
		duration_ms = COALESCE(?, MAX(0, (? - started_at) / 1000000)), output_tail = ?, error = ?, reason = ?,
		pgid = COALESCE(?, pgid) WHERE run_id = ? AND task = ? AND attempt = ?`
	sqlTaskEnd = `UPDATE tasks SET status = ?, exit_code = ?, finished_at = ?, duration_ms = MAX(0, (? - started_at) / 1000000),
		retry_at = ?, error = ?, reason = ?, pgid = COALESCE(CASE attempts WHEN ? THEN ? END, pgid) WHERE run_id = ? AND task = ?`
	// task_skipped: status skipped, or canceled (the run was canceled first).
	sqlTaskSkipped = `INSERT INTO tasks (run_id, task, ord, status, reason) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (run_id, task) DO UPDATE SET status = excluded.status, reason = excluded.reason`
	// A run being canceled shows who asked until its run_finished says so.
	sqlRunCanceled = `UPDATE runs SET reason = ? WHERE id = ? AND status = 'running'`
	sqlTaskSettle  = `UPDATE tasks SET status = ?, reason = ?, finished_at = ?, duration_ms = MAX(0, (? - started_at) / 1000000)
		WHERE run_id = ? AND task = ?`
	sqlAttemptSettle = `UPDATE task_attempts SET status = ?, reason = ? WHERE run_id = ? AND task = ? AND attempt = ?`
	// A rerun's reused task: its result, no attempt (it did not run here).
	sqlTaskReused = `INSERT INTO tasks (run_id, task, ord, status, exit_code, finished_at, error, reason, reused_from)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, task) DO NOTHING`
)

// applier holds the statements of one write transaction.
type applier struct {
	ctx   context.Context
	tx    *sql.Tx
	dir   string // the journal the events come from: where a definition is read (definition.go)
	stmts []*sql.Stmt
	// touched is the newest entry of each known run seen in this
	// transaction (written to runs.last_seq by flush), unknown the runs
	// the database does not have.
	touched map[string]int64
	unknown map[string]bool
	// pgids holds the process group of a task_process until the next
	// event of its task: the end of the attempt then writes it with its
	// own statements, two fewer per task (issue 16: a quarter of the
	// statements of a catch-up); anything else writes it first.
	pgids map[taskKey]pendingPGID

	definitionKnown, runStarted, runKnown, runTouch, runResumed, runFinished, runDamaged *sql.Stmt
	runCanceled                                                                          *sql.Stmt
	runEndTasks, runEndAttempts                                                          *sql.Stmt
	attemptStarted, taskStarted, attemptPGID, taskPGID                                   *sql.Stmt
	attemptEnd, taskEnd, taskSkipped, taskSettle                                         *sql.Stmt
	attemptSettle, taskReused                                                            *sql.Stmt
}

func newApplier(ctx context.Context, tx *sql.Tx) (*applier, error) {
	a := &applier{ctx: ctx, tx: tx, touched: map[string]int64{}, unknown: map[string]bool{}, pgids: map[taskKey]pendingPGID{}}
	for _, p := range []struct {
		s *(*sql.Stmt)
		q string
	}{
		{&a.definitionKnown, sqlDefinitionKnown}, {&a.runStarted, sqlRunStarted}, {&a.runKnown, sqlRunKnown}, {&a.runTouch, sqlRunTouch},
		{&a.runResumed, sqlRunResumed}, {&a.runFinished, sqlRunFinished}, {&a.runDamaged, sqlRunDamaged},
		{&a.runCanceled, sqlRunCanceled},
		{&a.runEndTasks, sqlRunEndTasks}, {&a.runEndAttempts, sqlRunEndAttempts},
		{&a.attemptStarted, sqlAttemptStarted}, {&a.taskStarted, sqlTaskStarted},
		{&a.attemptPGID, sqlAttemptPGID}, {&a.taskPGID, sqlTaskPGID},
		{&a.attemptEnd, sqlAttemptEnd}, {&a.taskEnd, sqlTaskEnd}, {&a.taskSkipped, sqlTaskSkipped},
		{&a.taskSettle, sqlTaskSettle}, {&a.attemptSettle, sqlAttemptSettle}, {&a.taskReused, sqlTaskReused},
	} {
		s, err := tx.PrepareContext(ctx, p.q)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("prepare projection statement: %w", err)
		}
		*p.s = s
		a.stmts = append(a.stmts, s)
	}
	return a, nil
}

func (a *applier) close() {
	for _, s := range a.stmts {
		s.Close()
	}
}

func (a *applier) exec(s *sql.Stmt, args ...any) (int64, error) {
	res, err := s.ExecContext(a.ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// apply folds one event into the rows.
func (a *applier) apply(e *journal.Event) error {
	if err := a.fold(e); err != nil {
		return fmt.Errorf("apply entry %d (%s): %w", e.Seq, e.Type, err)
	}
	return nil
}

func (a *applier) fold(e *journal.Event) error {
	switch e.Type {
	case journal.RunStarted:
		return a.runStartedRow(e)
	case journal.ScheduleFired, journal.ScheduleSkipped:
		return nil // not projected: the daemon reads them from the journal
	}
	known, err := a.known(e.Run)
	if err != nil || !known {
		return err
	}
	a.touched[e.Run] = int64(e.Seq)
	switch e.Type {
	case journal.RunFinished, journal.RunResumed, journal.RunDamaged, journal.RunCanceled:
		if err := a.writePGIDs(e.Run); err != nil {
			return err
		}
		return a.foldRun(e)
	case journal.TaskProcess:
		return a.holdPGID(e)
	}
	return a.foldTask(e)
}

// foldRun folds an event of a run as a whole.
func (a *applier) foldRun(e *journal.Event) (err error) {
	run := e.Run
	switch e.Type {
	case journal.RunFinished:
		status := journal.StatusFailed
		if e.Status == journal.StatusSuccess || e.Status == journal.StatusCanceled {
			status = e.Status
		}
		if _, err = a.exec(a.runFinished, status, e.Time, e.Reason, nullIfZero(e.DurationMS), e.Time, run); err != nil {
			return err
		}
		if _, err = a.exec(a.runEndTasks, run); err == nil {
			_, err = a.exec(a.runEndAttempts, run)
		}
	case journal.RunResumed:
		_, err = a.exec(a.runResumed, run)
	case journal.RunDamaged:
		_, err = a.exec(a.runDamaged, e.Reason, run)
	case journal.RunCanceled:
		reason := "canceling: requested by " + e.By
		if e.Reason != "" {
			reason += ": " + e.Reason
		}
		_, err = a.exec(a.runCanceled, reason, run)
	}
	return err
}

// foldTask folds an event of one task of a run.
func (a *applier) foldTask(e *journal.Event) (err error) {
	run, task, att := e.Run, e.Task, e.Attempt
	pgid, err := a.takePGID(e)
	if err != nil {
		return err
	}
	switch e.Type {
	case journal.TaskStarted:
		if _, err = a.exec(a.attemptStarted, run, task, att, e.Time, e.LogPath, e.Resumed); err == nil {
			_, err = a.exec(a.taskStarted, run, task, int64(e.Seq), att, e.Time, e.Time)
		}
	case journal.TaskFinished, journal.TaskRetrying:
		err = a.attemptEnded(e, pgid)
	case journal.TaskSkipped:
		status := journal.StatusSkipped
		if e.Status == journal.StatusCanceled {
			status = e.Status
		}
		_, err = a.exec(a.taskSkipped, run, task, int64(e.Seq), status, e.Reason)
	case journal.TaskInDoubt:
		if _, err = a.exec(a.taskSettle, "in_doubt", e.Reason, nil, nil, run, task); err == nil {
			_, err = a.exec(a.attemptSettle, "in_doubt", e.Reason, run, task, att)
		}
	case journal.TaskResolved:
		var finished any = e.Time
		status, attStatus := e.Status, e.Status
		switch e.Status {
		case journal.StatusSuccess:
		case journal.StatusFailed:
		default: // rerun
			status, attStatus, finished = "pending", journal.StatusInterrupted, nil
		}
		if _, err = a.exec(a.taskSettle, status, e.Reason, finished, finished, run, task); err == nil {
			_, err = a.exec(a.attemptSettle, attStatus, "resolved by operator: "+e.Reason, run, task, att)
		}
	default:
		return fmt.Errorf("unexpected event type %s", e.Type)
	}
	return err
}

// attemptEnded folds the end of an attempt (task_finished, task_retrying),
// or a result a rerun reused (task_finished with reused_from: a task row
// with no attempt).
func (a *applier) attemptEnded(e *journal.Event, pgid any) error {
	run, task, att := e.Run, e.Task, e.Attempt
	if e.ReusedFrom != "" {
		_, err := a.exec(a.taskReused, run, task, int64(e.Seq), e.Status, nil, e.Time, e.Error, e.Reason, e.ReusedFrom)
		return err
	}
	status := e.Status
	if status == "" {
		status = journal.StatusFailed
	}
	_, err := a.exec(a.attemptEnd, status, e.ExitCode, e.Time, nullIfZero(e.DurationMS), e.Time,
		e.Tail, e.Error, e.Reason, pgid, run, task, att)
	if err != nil {
		return err
	}
	var finished, retryAt, code any = e.Time, nil, e.ExitCode
	switch {
	case e.Type == journal.TaskRetrying:
		status, finished, retryAt = "retrying", nil, e.RetryAt
	case status == journal.StatusInterrupted:
		status, finished, code = "pending", nil, nil // runs again on resume
	case status != journal.StatusSuccess && status != journal.StatusTimeout && status != journal.StatusCanceled:
		status = journal.StatusFailed
	}
	_, err = a.exec(a.taskEnd, status, code, finished, finished, retryAt, e.Error, e.Reason, att, pgid, run, task)
	return err
}

// runStartedRow inserts the row of a run (and its definition, once).
func (a *applier) runStartedRow(e *journal.Event) error {
	if err := a.storeDefinition(e); err != nil {
		return err
	}
	var params any
	if len(e.Params) > 0 {
		b, err := json.Marshal(e.Params) // sorted keys: deterministic
		if err != nil {
			return err
		}
		params = string(b)
	}
	n, err := a.exec(a.runStarted, e.Run, e.Workflow, e.Trigger, e.DefHash, e.Source, params,
		e.Time, int64(e.Seq), int64(e.Seq), e.RerunOf)
	if n == 1 {
		delete(a.unknown, e.Run)
	}
	return err
}

// known reports whether the database has run, asking it once per
// transaction.
func (a *applier) known(run string) (bool, error) {
	if _, ok := a.touched[run]; ok {
		return true, nil
	}
	if a.unknown[run] {
		return false, nil
	}
	var one int
	err := a.runKnown.QueryRowContext(a.ctx, run).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		a.unknown[run] = true
		return false, nil
	}
	return err == nil, err
}

// flush stores the process groups still pending and the newest entry of
// each run the transaction touched.
func (a *applier) flush() error {
	if err := a.writePGIDs(""); err != nil {
		return err
	}
	for run, seq := range a.touched {
		if _, err := a.exec(a.runTouch, seq, run); err != nil {
			return fmt.Errorf("store last entry of run %s: %w", run, err)
		}
	}
	clear(a.touched)
	return nil
}

func nullIfZero(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}
