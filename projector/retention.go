package projector

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// Policy says which finished runs retention removes. Runs that have not
// finished (live or interrupted) are never touched.
type Policy struct {
	MaxAge  time.Duration // remove runs started longer ago; 0: no age limit
	MaxRuns int           // keep at most this many newest runs per workflow; 0: no limit
	// LogAge removes the logs of runs started longer ago while their rows
	// stay; 0 or more than MaxAge: logs go with the rows.
	LogAge time.Duration
}

// Doomed is a run that retention acts on, with the directories its
// attempts' logs were written to.
type Doomed struct {
	Run
	LogDirs []string
}

// Plan is what retention will do.
type Plan struct {
	Remove   []Doomed // rows, logs and (when possible) journal entries go
	DropLogs []Doomed // only the logs go
}

// PlanRetention decides, at now, what p removes. It changes nothing.
func (d *DB) PlanRetention(ctx context.Context, now time.Time, p Policy) (*Plan, error) {
	plan := &Plan{}
	err := d.read(ctx, func(tx *sql.Tx) error {
		remove := map[string]bool{}
		var err error
		if p.MaxAge > 0 {
			plan.Remove, err = doomed(ctx, tx, `SELECT `+runColumns+` FROM runs
				WHERE status NOT IN ('running', 'damaged') AND started_at < ? ORDER BY started_at, id`, now.Add(-p.MaxAge).UnixNano())
			if err != nil {
				return err
			}
			for _, r := range plan.Remove {
				remove[r.ID] = true
			}
		}
		if p.MaxRuns > 0 {
			// Live runs count towards the limit but are never removed.
			extra, err := doomed(ctx, tx, `SELECT `+runColumns+` FROM (SELECT *, ROW_NUMBER() OVER
				(PARTITION BY workflow ORDER BY started_at DESC, id DESC) AS n FROM runs)
				WHERE n > ? AND status NOT IN ('running', 'damaged') ORDER BY started_at, id`, p.MaxRuns)
			if err != nil {
				return err
			}
			for _, r := range extra {
				if !remove[r.ID] {
					remove[r.ID] = true
					plan.Remove = append(plan.Remove, r)
				}
			}
			rm := plan.Remove
			sort.Slice(rm, func(i, j int) bool {
				return cmp.Or(rm[i].Started.Compare(rm[j].Started), cmp.Compare(rm[i].ID, rm[j].ID)) < 0
			})
		}
		if p.LogAge > 0 && (p.MaxAge == 0 || p.LogAge < p.MaxAge) {
			logs, err := doomed(ctx, tx, `SELECT `+runColumns+` FROM runs
				WHERE status NOT IN ('running', 'damaged') AND logs_removed = 0 AND started_at < ? ORDER BY started_at, id`,
				now.Add(-p.LogAge).UnixNano())
			if err != nil {
				return err
			}
			for _, r := range logs {
				if !remove[r.ID] {
					plan.DropLogs = append(plan.DropLogs, r)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("plan retention: %w", err)
	}
	return plan, nil
}

func doomed(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]Doomed, error) {
	runs, err := queryRuns(ctx, tx, q, args...)
	if err != nil {
		return nil, err
	}
	st, err := tx.PrepareContext(ctx, `SELECT DISTINCT log_path FROM task_attempts WHERE run_id = ? AND log_path != ''`)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	out := make([]Doomed, len(runs))
	for i, r := range runs {
		out[i].Run = r
		rows, err := st.QueryContext(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				rows.Close()
				return nil, err
			}
			if dir := filepath.Dir(p); !seen[dir] {
				seen[dir] = true
				out[i].LogDirs = append(out[i].LogDirs, dir)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		slices.Sort(out[i].LogDirs)
	}
	return out, nil
}

// DeleteRuns removes the rows of the given runs (and definitions no run
// uses any more). Live runs are refused, silently: their rows stay. The
// deletion is durable when DeleteRuns returns, so the journal may be cut
// after it (see writeDurable).
func (d *DB) DeleteRuns(ctx context.Context, ids []string) (int, error) {
	n := 0
	err := d.writeDurable(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			res, err := tx.ExecContext(ctx, `DELETE FROM runs WHERE id = ? AND status NOT IN ('running', 'damaged')`, id)
			if err != nil {
				return err
			}
			if k, _ := res.RowsAffected(); k == 0 {
				continue
			}
			n++
			for _, q := range []string{`DELETE FROM tasks WHERE run_id = ?`, `DELETE FROM task_attempts WHERE run_id = ?`} {
				if _, err := tx.ExecContext(ctx, q, id); err != nil {
					return err
				}
			}
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM definitions WHERE hash NOT IN (SELECT def_hash FROM runs)`)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("delete runs: %w", err)
	}
	return n, nil
}

// MarkLogsRemoved records that the logs of the given runs are gone.
func (d *DB) MarkLogsRemoved(ctx context.Context, ids []string) error {
	err := d.write(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE runs SET logs_removed = 1 WHERE id = ?`, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark logs removed: %w", err)
	}
	return nil
}

// RunIDs returns the ids of every run in the projection.
func (d *DB) RunIDs(ctx context.Context) (map[string]bool, error) {
	rows, err := d.r.QueryContext(ctx, `SELECT id FROM runs`)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	ids := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids[id] = true
	}
	return ids, rows.Err()
}

// Extent is where a run's entries lie in the journal.
type Extent struct {
	Run         string
	First, Last uint64
}

// Fire is a workflow's newest ScheduleFired or ScheduleSkipped entry: the
// daemon's scheduler computes missed fires from it.
type Fire struct {
	Workflow string
	Seq      uint64
	Time     time.Time
}

// Layout is what retention needs to know about a journal.
type Layout struct {
	Runs  []Extent // every run, ordered by First
	Fires []Fire   // per workflow, ordered by Seq
	First uint64   // the oldest entry; 0: empty
	Last  uint64   // the newest entry; 0: empty
}

// ReadLayout scans the journal in dir (read-only).
func ReadLayout(dir string) (*Layout, error) {
	l := &Layout{}
	idx := map[string]int{}
	fires := map[string]int{}
	err := journal.Scan(dir, journal.ScanOptions{}, func(e *journal.Event) error {
		if l.First == 0 {
			l.First = e.Seq
		}
		l.Last = e.Seq
		switch {
		case e.Type == journal.ScheduleFired || e.Type == journal.ScheduleSkipped:
			f := Fire{Workflow: e.Workflow, Seq: e.Seq, Time: e.At()}
			if i, ok := fires[e.Workflow]; ok {
				l.Fires[i] = f
			} else {
				fires[e.Workflow] = len(l.Fires)
				l.Fires = append(l.Fires, f)
			}
		case e.Run == "":
		default:
			if i, ok := idx[e.Run]; ok {
				l.Runs[i].Last = e.Seq
				return nil
			}
			idx[e.Run] = len(l.Runs)
			l.Runs = append(l.Runs, Extent{Run: e.Run, First: e.Seq, Last: e.Seq})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read journal layout: %w", err)
	}
	sort.Slice(l.Fires, func(i, j int) bool { return l.Fires[i].Seq < l.Fires[j].Seq })
	return l, nil
}

// Cut returns the sequence number before which the journal can be
// truncated: every entry before it belongs to a run that keep rejects (or
// to no run), and every entry from it on belongs to a run whose RunStarted
// is kept too, so that replaying the rest never meets an event of an
// unknown run. It is at most the first entry of every kept run and every
// pinned entry (schedule events the scheduler still needs), and never
// splits a run: a removed run that straddles the cut moves the cut down to
// its start (it stays in the journal until a later collection). last is
// the newest entry, which the journal always keeps. Cut returns 0 when
// nothing can go.
func Cut(exts []Extent, keep func(run string) bool, pins []uint64, last uint64) uint64 {
	if last == 0 {
		return 0
	}
	cut := last // the newest entry always stays
	for _, p := range pins {
		cut = min(cut, p)
	}
	for _, e := range exts {
		if keep(e.Run) && e.First < cut {
			cut = e.First
		}
	}
	// Newest start first: lowering the cut to a run's start can only split
	// runs that start earlier, which come later in this order.
	byStart := slices.Clone(exts)
	sort.Slice(byStart, func(i, j int) bool { return byStart[j].First < byStart[i].First })
	for _, e := range byStart {
		if e.First < cut && e.Last >= cut {
			cut = e.First
		}
	}
	if cut <= 1 {
		return 0
	}
	return cut
}
