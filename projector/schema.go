package projector

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// migrations[i] takes the schema from user_version i to i+1. The list is
// append-only: a released migration is never edited, a change is a new one.
//
// Times are unix nanoseconds (the journal's unit), durations milliseconds.
// A NULL finished_at means "not finished"; duration_ms is NULL exactly when
// finished_at is. Statuses are the journal's words:
//
//	runs.status           running | success | failed | canceled | damaged
//	tasks.status          pending | running | retrying | success | failed |
//	                      timeout | skipped | in_doubt | canceled (a run
//	                      finished while the task was not)
//	task_attempts.status  running | success | failed | timeout | interrupted | in_doubt
var migrations = []string{
	// 1: the initial schema.
	`
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE definitions (
	hash TEXT PRIMARY KEY,
	body TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE runs (
	id           TEXT PRIMARY KEY,
	workflow     TEXT NOT NULL,
	status       TEXT NOT NULL,
	trigger      TEXT NOT NULL,
	def_hash     TEXT NOT NULL,
	source       TEXT NOT NULL,
	params       TEXT,
	started_at   INTEGER NOT NULL,
	finished_at  INTEGER,
	duration_ms  INTEGER,
	resumes      INTEGER NOT NULL DEFAULT 0,
	reason       TEXT NOT NULL DEFAULT '',
	first_seq    INTEGER NOT NULL,
	last_seq     INTEGER NOT NULL,
	logs_removed INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX runs_by_workflow ON runs (workflow, started_at);
CREATE INDEX runs_by_start ON runs (started_at);
CREATE INDEX runs_live ON runs (status) WHERE status = 'running';

CREATE TABLE tasks (
	run_id      TEXT NOT NULL,
	task        TEXT NOT NULL,
	ord         INTEGER NOT NULL,
	status      TEXT NOT NULL,
	attempts    INTEGER NOT NULL DEFAULT 0,
	exit_code   INTEGER,
	started_at  INTEGER,
	finished_at INTEGER,
	duration_ms INTEGER,
	attempt_started_at INTEGER,
	retry_at    INTEGER,
	pgid        INTEGER NOT NULL DEFAULT 0,
	error       TEXT NOT NULL DEFAULT '',
	reason      TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (run_id, task)
) WITHOUT ROWID;

CREATE TABLE task_attempts (
	run_id      TEXT NOT NULL,
	task        TEXT NOT NULL,
	attempt     INTEGER NOT NULL,
	status      TEXT NOT NULL,
	exit_code   INTEGER,
	started_at  INTEGER NOT NULL,
	finished_at INTEGER,
	duration_ms INTEGER,
	log_path    TEXT NOT NULL DEFAULT '',
	output_tail TEXT NOT NULL DEFAULT '',
	error       TEXT NOT NULL DEFAULT '',
	reason      TEXT NOT NULL DEFAULT '',
	pgid        INTEGER NOT NULL DEFAULT 0,
	resumed     INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (run_id, task, attempt)
) WITHOUT ROWID;
`,
	// 2: one position per journal (a home has one journal per workflow);
	// the single journal's position becomes the one of journal "".
	`
CREATE TABLE positions (
	journal TEXT PRIMARY KEY,
	seq     INTEGER NOT NULL,
	type    INTEGER NOT NULL,
	time    INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO positions (journal, seq, type, time)
	SELECT '', s.value, t.value, m.value FROM meta s, meta t, meta m
	WHERE s.key = 'last_seq' AND t.key = 'last_type' AND m.key = 'last_time' AND s.value > 0;
DELETE FROM meta WHERE key IN ('last_seq', 'last_type', 'last_time');
`,
	// 3: picoflow rerun. A rerun names the run it reran; a task it reused
	// names the run whose result it took (no attempt row: it did not run).
	// Earlier releases never wrote either, so existing rows keep ''.
	`
ALTER TABLE runs ADD COLUMN rerun_of TEXT NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN reused_from TEXT NOT NULL DEFAULT '';
`,
}

// ErrNewerSchema is returned by Open for a database written by a newer
// PicoFlow; `picoflow reindex` rebuilds it for this one.
var ErrNewerSchema = errors.New("database schema is newer than this picoflow")

// migrate brings the schema up to date inside tx.
func migrate(ctx context.Context, tx *sql.Tx) error {
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("%w (version %d, this build knows %d)", ErrNewerSchema, v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", i+1, err)
		}
	}
	if v < len(migrations) {
		// PRAGMA takes no parameters; the value is our own constant.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
			return fmt.Errorf("set schema version: %w", err)
		}
	}
	return nil
}

// dropAll removes every table and index of ours and resets the version.
func dropAll(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
	if err != nil {
		return fmt.Errorf("list tables: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, n := range names {
		if _, err := tx.ExecContext(ctx, `DROP TABLE "`+n+`"`); err != nil {
			return fmt.Errorf("drop table %s: %w", n, err)
		}
	}
	_, err = tx.ExecContext(ctx, "PRAGMA user_version = 0")
	return err
}
