package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/picoflow/picoflow/cli/web"
	"github.com/picoflow/picoflow/projector"
)

// projection opens HOME/picoflow.db and brings it up to date with the
// journal, so that a query never shows stale data. A damaged database is
// removed and rebuilt: it is derived from the journal.
func (m *Main) projection(ctx context.Context, g *globals) (*projector.DB, error) {
	h := home(g.home)
	if _, err := os.Stat(string(h)); errors.Is(err, os.ErrNotExist) {
		return nil, exitf(ExitNotFound, "no PicoFlow home at %s: nothing has run here yet (see --home, $PICOFLOW_HOME)", h)
	}
	db, err := m.openProjection(g)
	if err == nil {
		if _, err = h.catchUp(ctx, db); err != nil {
			db.Close()
			err = withCode(ExitInternal, err)
		}
	}
	if ctx.Err() != nil {
		return nil, exitf(ExitInterrupted, "interrupted while updating %s", h.db())
	}
	return db, err
}

// queryProjection is projection for the commands that only read (history,
// status, logs): when HOME/picoflow.db cannot be opened or brought up to
// date (a full disk, a read-only home), they answer from a projection
// built in memory from the journals, with a warning, since nothing they
// do may need to write.
func (m *Main) queryProjection(ctx context.Context, g *globals) (*projector.DB, error) {
	db, err := m.projection(ctx, g)
	var ee *exitError
	if err == nil || errors.Is(err, projector.ErrNewerSchema) || (errors.As(err, &ee) && ee.code != ExitInternal) {
		return db, err
	}
	mem, merr := projector.OpenMemory(projector.Options{Logger: g.log})
	if merr == nil {
		if _, merr = home(g.home).catchUp(ctx, mem); merr != nil {
			mem.Close()
		}
	}
	if merr != nil {
		return nil, err
	}
	g.log.Warn("the history database cannot be updated: answering from the journals (read in memory, nothing written)",
		"db", home(g.home).db(), "err", err)
	return mem, nil
}

// openProjection opens the database, replacing it when it is damaged.
func (m *Main) openProjection(g *globals) (*projector.DB, error) {
	h := home(g.home)
	opts := projector.Options{Logger: g.log}
	db, err := projector.Open(h.db(), opts)
	if projector.IsCorrupt(err) {
		g.log.Warn("the projection database is damaged: rebuilding it from the journal", "db", h.db(), "err", err)
		if err := projector.Remove(h.db()); err != nil {
			return nil, withCode(ExitInternal, err)
		}
		db, err = projector.Open(h.db(), opts)
	}
	if errors.Is(err, projector.ErrNewerSchema) {
		return nil, withCode(ExitInternal, fmt.Errorf("%w; picoflow reindex rebuilds it for this version", err))
	}
	if err != nil {
		return nil, withCode(ExitInternal, err)
	}
	return db, nil
}

// workflowHeld reports whether a process runs workflow wf now: it holds
// the lock of the workflow's journal (a run, a resume, or a daemon while
// one of its runs of wf is live). The lock is probed with a non-blocking
// flock on a descriptor of our own, released at once.
func (h home) workflowHeld(wf string) bool {
	return lockHeld(filepath.Join(journalDir(string(h), wf), "LOCK"))
}

func lockHeld(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false // no lock file: nobody ever held it
	}
	defer f.Close() // releases the probe's lock, if it got it
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	return errors.Is(err, syscall.EWOULDBLOCK)
}

// displayStatus is the status shown for a run: its status, or for one that has
// not finished, "running" or "interrupted".
func (h home) displayStatus(r *projector.Run, held map[string]bool) string {
	if r.Status != projector.RunRunning {
		return r.Status
	}
	live, ok := held[r.Workflow]
	if !ok {
		live = h.workflowHeld(r.Workflow)
		held[r.Workflow] = live
	}
	if live {
		return "running"
	}
	return "interrupted"
}

// zone is where times are shown: $TZ when set, else the local zone.
func (m *Main) zone() *time.Location {
	if tz := m.Getenv("TZ"); tz != "" {
		if loc, err := time.LoadLocation(strings.TrimPrefix(tz, ":")); err == nil {
			return loc
		}
	}
	return time.Local
}

// parseWhen parses a --since/--until value: a date (2026-11-25, midnight
// in the display zone; with endOfDay the next midnight), an RFC 3339 time,
// or an age before now: 7d, 12h, 30m, 1h30m, 90s.
func parseWhen(s string, now time.Time, loc *time.Location, endOfDay bool) (time.Time, error) {
	if d, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		if endOfDay {
			d = d.AddDate(0, 0, 1)
		}
		return d, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a date (2026-11-25), an RFC 3339 time or an age (7d, 12h, 30m)", s)
}

// fmtDuration formats milliseconds compactly: 9ms, 42.5s, 3m07s, 2h05m
// (as the web UI does).
func fmtDuration(ms int64) string { return web.Duration(ms) }

// fmtBytes formats a byte count: 512 B, 3.4 KiB, 21.0 MiB.
func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 3 {
		v /= unit
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + [...]string{"KiB", "MiB", "GiB", "TiB"}[i]
}

// timeJSON is an RFC 3339 time in UTC, or null for the zero time.
func timeJSON(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339Nano)
	return &s
}

// table writes rows with columns padded to their widest cell and two
// spaces apart (text/tabwriter), each line prefixed with indent and without
// trailing blanks. A wider cell pushes the rest of its row to the right.
type table struct {
	indent string
	rows   [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// write writes the rows and empties the table.
func (t *table) write(w io.Writer) {
	for _, l := range t.lines() {
		io.WriteString(w, l+"\n")
	}
}

// lines formats the rows, one string each without its newline, and
// empties the table.
func (t *table) lines() []string {
	if len(t.rows) == 0 {
		return nil
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, r := range t.rows {
		// Every cell ends in a tab, the last too, so that every column
		// is aligned over all rows; the padding after it is trimmed.
		io.WriteString(tw, t.indent+strings.Join(r, "\t")+"\t\n")
	}
	tw.Flush()
	t.rows = nil
	out := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	for i, l := range out {
		out[i] = strings.TrimRight(l, " ")
	}
	return out
}
