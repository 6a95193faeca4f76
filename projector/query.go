package projector

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// ErrNotFound is returned when a run, task or attempt is not in the projection.
var ErrNotFound = errors.New("not found")

// Run statuses as stored (RunRunning covers live and interrupted runs).
const (
	RunRunning  = "running"
	RunSuccess  = "success"
	RunFailed   = "failed"
	RunCanceled = "canceled"
	// RunDamaged: a journal salvage lost events that may be the run's; it
	// is not finished and is never resumed without an operator.
	RunDamaged = "damaged"
)

// Run is one row of runs, with its tasks when they were asked for. Zero
// times are NULLs; DurationMS is meaningful when Finished is set.
type Run struct {
	ID          string
	Workflow    string
	Status      string
	Trigger     string
	DefHash     string
	Source      string
	Params      string // JSON object, "" when the run had none
	Started     time.Time
	Finished    time.Time
	DurationMS  int64
	Resumes     int
	Reason      string
	FirstSeq    uint64
	LastSeq     uint64
	LogsRemoved bool
	RerunOf     string // trigger rerun: the run this one reran
	Tasks       []Task
}

// Task is the state of one task of a run: its latest attempt, and first
// start to final end as its timing (retries and backoff included).
type Task struct {
	Name       string
	Status     string
	Attempts   int
	ExitCode   *int // nil until an attempt ended with a code
	Started    time.Time
	Finished   time.Time
	DurationMS int64
	RetryAt    time.Time
	PGID       int
	Error      string
	Reason     string
	// AttemptStarted is when the latest attempt started (its elapsed time
	// while it runs).
	AttemptStarted time.Time
	// ReusedFrom is the run whose result a rerun took for this task
	// instead of running it ("" when it ran).
	ReusedFrom string
	// AttemptDurationsMS are the durations of the attempts that ended, in
	// attempt order. DurationMS is from the first start to the final end,
	// so it includes the waits between attempts.
	AttemptDurationsMS []int64
}

// Attempt is one row of task_attempts.
type Attempt struct {
	Run        string
	Workflow   string
	Task       string
	Attempt    int
	Status     string
	ExitCode   *int
	Started    time.Time
	Finished   time.Time
	DurationMS int64
	LogPath    string
	Tail       string
	Error      string
	Reason     string
	PGID       int
	Resumed    bool
	RunStatus  string
}

// Filter selects runs for History. Zero fields do not filter.
type Filter struct {
	Workflow string
	Since    time.Time // started at or after
	Until    time.Time // started before
	Status   string    // a Run* status
	Limit    int       // newest runs in all; 0 means no limit
	// PerWorkflow, when > 0, selects the newest PerWorkflow runs of each
	// workflow instead (Limit then bounds their total).
	PerWorkflow int
	// Keep, when set, is a further condition a run must meet (one the
	// database cannot tell, such as whether a process still runs it). It
	// is applied before the limits.
	Keep  func(*Run) bool
	Tasks bool // fill Run.Tasks
}

const runColumns = `id, workflow, status, trigger, def_hash, source, COALESCE(params, ''), started_at,
	finished_at, duration_ms, resumes, reason, first_seq, last_seq, logs_removed, rerun_of`

func scanRun(sc interface{ Scan(...any) error }) (Run, error) {
	var r Run
	var started int64
	var finished, dur sql.NullInt64
	var first, last int64
	err := sc.Scan(&r.ID, &r.Workflow, &r.Status, &r.Trigger, &r.DefHash, &r.Source, &r.Params, &started,
		&finished, &dur, &r.Resumes, &r.Reason, &first, &last, &r.LogsRemoved, &r.RerunOf)
	r.Started = nsTime(started)
	r.Finished = nullTime(finished)
	r.DurationMS = dur.Int64
	r.FirstSeq, r.LastSeq = uint64(first), uint64(last)
	return r, err
}

func nsTime(ns int64) time.Time { return time.Unix(0, ns).UTC() }

func nullTime(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return nsTime(v.Int64)
}

func nullInt(v sql.NullInt64) *int {
	if !v.Valid {
		return nil
	}
	i := int(v.Int64)
	return &i
}

func queryRuns(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]Run, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// History returns the runs f selects, newest first.
func (d *DB) History(ctx context.Context, f Filter) ([]Run, error) {
	var out []Run
	err := d.EachRun(ctx, f, func(r *Run) error {
		out = append(out, *r)
		return nil
	})
	return out, err
}

// historyPage is how many runs EachRun reads (and fills the tasks of) at a
// time when it streams.
const historyPage = 256

// EachRun calls fn with each run f selects, newest first, reading one
// consistent snapshot. Without a per-workflow limit it streams, a page of
// runs at a time, so that exporting a long history needs little memory.
func (d *DB) EachRun(ctx context.Context, f Filter, fn func(*Run) error) error {
	return d.read(ctx, func(tx *sql.Tx) error {
		var where []string
		var args []any
		if f.Workflow != "" {
			where, args = append(where, "workflow = ?"), append(args, f.Workflow)
		}
		if !f.Since.IsZero() {
			where, args = append(where, "started_at >= ?"), append(args, f.Since.UnixNano())
		}
		if !f.Until.IsZero() {
			where, args = append(where, "started_at < ?"), append(args, f.Until.UnixNano())
		}
		if f.Status != "" {
			where, args = append(where, "status = ?"), append(args, f.Status)
		}
		if f.PerWorkflow > 0 {
			return limitedHistory(ctx, tx, f, where, args, fn)
		}
		// Keyset pagination down runs_by_start (or runs_by_workflow).
		var after []any // started_at and id of the previous page's last run
		left := f.Limit
		for {
			cond, qargs := where, args
			if after != nil {
				cond = append(slices.Clone(where), "(started_at, id) < (?, ?)")
				qargs = append(slices.Clone(args), after...)
			}
			q := `SELECT ` + runColumns + ` FROM runs`
			if len(cond) > 0 {
				q += ` WHERE ` + strings.Join(cond, " AND ")
			}
			q += fmt.Sprintf(` ORDER BY started_at DESC, id DESC LIMIT %d`, historyPage)
			runs, err := queryRuns(ctx, tx, q, qargs...)
			if err != nil {
				return fmt.Errorf("history: %w", err)
			}
			full := len(runs) == historyPage
			var last Run
			if full {
				last = runs[len(runs)-1]
			}
			runs = keep(runs, f.Keep)
			if f.Limit > 0 {
				runs = runs[:min(len(runs), left)]
				left -= len(runs)
			}
			if err := emit(ctx, tx, f, runs, fn); err != nil || !full || (f.Limit > 0 && left == 0) {
				return err
			}
			after = []any{last.Started.UnixNano(), last.ID}
		}
	})
}

// keep returns the runs that pass cond (all when it is nil), in place.
func keep(runs []Run, cond func(*Run) bool) []Run {
	if cond == nil {
		return runs
	}
	out := runs[:0]
	for i := range runs {
		if cond(&runs[i]) {
			out = append(out, runs[i])
		}
	}
	return out
}

// limitedHistory reads the newest f.PerWorkflow runs of each workflow (at
// most f.Limit in all when it is set): one index range per workflow
// (runs_by_workflow), merged newest first. With f.Keep the ranges are read
// whole and filtered first.
func limitedHistory(ctx context.Context, tx *sql.Tx, f Filter, where []string, args []any, fn func(*Run) error) error {
	wfs := []string{f.Workflow}
	if f.Workflow == "" {
		var err error
		if wfs, err = workflows(ctx, tx); err != nil {
			return err
		}
		where, args = append([]string{"workflow = ?"}, where...), append([]any{nil}, args...)
	}
	q := `SELECT ` + runColumns + ` FROM runs WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY started_at DESC, id DESC`
	if f.Keep == nil {
		q += fmt.Sprintf(` LIMIT %d`, f.PerWorkflow)
	}
	var out []Run
	for _, wf := range wfs {
		args[0] = wf
		runs, err := queryRuns(ctx, tx, q, args...)
		if err != nil {
			return fmt.Errorf("history of %s: %w", wf, err)
		}
		runs = keep(runs, f.Keep)
		out = append(out, runs[:min(len(runs), f.PerWorkflow)]...)
	}
	sort.SliceStable(out, func(i, j int) bool { return newestFirst(out[i], out[j]) < 0 })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	for lo := 0; lo < len(out); lo += historyPage {
		if err := emit(ctx, tx, f, out[lo:min(lo+historyPage, len(out))], fn); err != nil {
			return err
		}
	}
	return nil
}

// emit fills the tasks of runs if f asks for them and passes them to fn.
func emit(ctx context.Context, tx *sql.Tx, f Filter, runs []Run, fn func(*Run) error) error {
	if f.Tasks {
		if err := fillTasks(ctx, tx, runs); err != nil {
			return err
		}
	}
	for i := range runs {
		if err := fn(&runs[i]); err != nil {
			return err
		}
	}
	return nil
}

func newestFirst(a, b Run) int {
	return cmp.Or(b.Started.Compare(a.Started), strings.Compare(b.ID, a.ID))
}

// workflows lists the workflows with runs, skipping through the index.
func workflows(ctx context.Context, tx *sql.Tx) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT workflow FROM runs ORDER BY workflow`)
	if err != nil {
		return nil, fmt.Errorf("list workflows: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

const taskColumns = `task, status, attempts, exit_code, started_at, finished_at, duration_ms, retry_at, pgid, error, reason,
	attempt_started_at, reused_from, (SELECT json_group_array(d) FROM (SELECT a.duration_ms AS d FROM task_attempts a
		WHERE a.run_id = tasks.run_id AND a.task = tasks.task AND a.duration_ms IS NOT NULL ORDER BY a.attempt))`

// fillTasks sets the tasks of runs, fetching those of up to 256 runs per
// query (their ids passed as one JSON array).
func fillTasks(ctx context.Context, tx *sql.Tx, runs []Run) error {
	if len(runs) == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, `SELECT tasks.run_id, `+taskColumns+` FROM tasks
		WHERE run_id IN (SELECT value FROM json_each(?)) ORDER BY run_id, ord, task`)
	if err != nil {
		return err
	}
	defer st.Close()
	byID := make(map[string]*Run, len(runs))
	for i := range runs {
		byID[runs[i].ID] = &runs[i]
	}
	for lo := 0; lo < len(runs); lo += 256 {
		ids := make([]string, 0, 256)
		for i := lo; i < len(runs) && i < lo+256; i++ {
			ids = append(ids, runs[i].ID)
		}
		b, err := json.Marshal(ids)
		if err != nil {
			return err
		}
		if err := queryTasks(ctx, st, string(b), byID); err != nil {
			return fmt.Errorf("tasks of runs %s…: %w", ids[0], err)
		}
	}
	return nil
}

func queryTasks(ctx context.Context, st *sql.Stmt, ids string, byID map[string]*Run) error {
	rows, err := st.QueryContext(ctx, ids)
	if err != nil {
		return err
	}
	defer rows.Close()
	var run string
	for rows.Next() {
		var t Task
		var code, started, finished, dur, retry, attempt sql.NullInt64
		var durs string
		if err := rows.Scan(&run, &t.Name, &t.Status, &t.Attempts, &code, &started, &finished, &dur, &retry,
			&t.PGID, &t.Error, &t.Reason, &attempt, &t.ReusedFrom, &durs); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(durs), &t.AttemptDurationsMS); err != nil {
			return fmt.Errorf("attempt durations of %s: %w", t.Name, err)
		}
		t.ExitCode = nullInt(code)
		t.Started, t.Finished, t.RetryAt = nullTime(started), nullTime(finished), nullTime(retry)
		t.DurationMS = dur.Int64
		t.AttemptStarted = nullTime(attempt)
		if r := byID[run]; r != nil {
			r.Tasks = append(r.Tasks, t)
		}
	}
	return rows.Err()
}

// Live returns the runs that started and have not finished (running, or
// interrupted: the projection cannot tell), oldest first, with their tasks.
func (d *DB) Live(ctx context.Context) ([]Run, error) {
	var out []Run
	err := d.read(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = queryRuns(ctx, tx, `SELECT `+runColumns+` FROM runs
			WHERE status = 'running' ORDER BY started_at, id`)
		if err != nil {
			return fmt.Errorf("live runs: %w", err)
		}
		return fillTasks(ctx, tx, out)
	})
	return out, err
}

// Recent returns the n most recently started finished runs, newest first.
func (d *DB) Recent(ctx context.Context, n int) ([]Run, error) {
	var out []Run
	err := d.read(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = queryRuns(ctx, tx, `SELECT `+runColumns+` FROM runs
			WHERE status != 'running' ORDER BY started_at DESC, id DESC LIMIT ?`, n)
		if err != nil {
			return fmt.Errorf("recent runs: %w", err)
		}
		return nil
	})
	return out, err
}

// Run returns one run with its tasks.
func (d *DB) Run(ctx context.Context, id string) (*Run, error) {
	var out []Run
	err := d.read(ctx, func(tx *sql.Tx) error {
		var err error
		if out, err = queryRuns(ctx, tx, `SELECT `+runColumns+` FROM runs WHERE id = ?`, id); err != nil {
			return err
		}
		return fillTasks(ctx, tx, out)
	})
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", id, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	return &out[0], nil
}

// AttemptQuery names a task attempt. Run "" means the newest run of the
// workflow in which the task has an attempt; Attempt 0 the latest attempt.
type AttemptQuery struct {
	Workflow string
	Task     string
	Run      string
	Attempt  int
}

// FindAttempt returns the attempt q names.
func (d *DB) FindAttempt(ctx context.Context, q AttemptQuery) (*Attempt, error) {
	var where []string
	var args []any
	add := func(w string, a any) { where, args = append(where, w), append(args, a) }
	add("a.task = ?", q.Task)
	if q.Workflow != "" {
		add("r.workflow = ?", q.Workflow)
	}
	if q.Run != "" {
		add("a.run_id = ?", q.Run)
	}
	if q.Attempt > 0 {
		add("a.attempt = ?", q.Attempt)
	}
	row := d.r.QueryRowContext(ctx, `SELECT a.run_id, r.workflow, a.task, a.attempt, a.status, a.exit_code,
		a.started_at, a.finished_at, a.duration_ms, a.log_path, a.output_tail, a.error, a.reason, a.pgid,
		a.resumed, r.status
		FROM task_attempts a JOIN runs r ON r.id = a.run_id
		WHERE `+strings.Join(where, " AND ")+`
		ORDER BY r.started_at DESC, r.id DESC, a.attempt DESC LIMIT 1`, args...)
	var at Attempt
	var code, finished, dur sql.NullInt64
	var started int64
	err := row.Scan(&at.Run, &at.Workflow, &at.Task, &at.Attempt, &at.Status, &code, &started, &finished, &dur,
		&at.LogPath, &at.Tail, &at.Error, &at.Reason, &at.PGID, &at.Resumed, &at.RunStatus)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("find attempt: %w", err)
	}
	at.ExitCode = nullInt(code)
	at.Started, at.Finished = nsTime(started), nullTime(finished)
	at.DurationMS = dur.Int64
	return &at, nil
}

// RunIDsWithPrefix returns the ids of the runs that start with prefix, at most limit
// of them (the caller resolves a RUN_ID prefix).
func (d *DB) RunIDsWithPrefix(ctx context.Context, prefix string, limit int) ([]string, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT id FROM runs WHERE substr(id, 1, ?) = ? ORDER BY id LIMIT ?`,
		len(prefix), prefix, limit)
	if err != nil {
		return nil, fmt.Errorf("run ids: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("run ids: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// Definition returns the workflow definition recorded under hash.
func (d *DB) Definition(ctx context.Context, hash string) (string, error) {
	var body string
	err := d.r.QueryRowContext(ctx, `SELECT body FROM definitions WHERE hash = ?`, hash).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return body, err
}
