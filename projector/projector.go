package projector

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
	"github.com/picoflow/picoflow/journal"
)

// Options tune Open. The zero value is fine.
type Options struct {
	Logger *slog.Logger
	// BusyTimeout is how long a writer waits for another process's write
	// transaction (default 30s: a rebuild of a big journal holds the lock
	// for seconds).
	BusyTimeout time.Duration
	// BatchSize is the number of events applied per transaction (default 2048).
	BatchSize int
}

// DB is an open projection. It is safe for concurrent use; see the package
// documentation for how concurrent writers are ordered.
type DB struct {
	path  string
	w     *sql.DB // the single writer connection, BEGIN IMMEDIATE
	r     *sql.DB // readers, BEGIN DEFERRED, query_only
	log   *slog.Logger
	batch int
}

// meta keys: the last applied entry and its identity.
const (
	metaLastSeq  = "last_seq"
	metaLastType = "last_type"
	metaLastTime = "last_time"
)

// Open opens (creating it and its directory) the database at path and
// migrates its schema.
func Open(path string, opts Options) (*DB, error) {
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open projection: path %q must not contain '?' or '#'", path)
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 30 * time.Second
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 2048
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open projection: %w", err)
	}
	busy := strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10)
	w, err := sql.Open("sqlite3", path+"?_busy_timeout="+busy+
		"&_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open projection %s: %w", path, err)
	}
	w.SetMaxOpenConns(1) // the single writer: in-process writers queue here
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	d := &DB{path: path, w: w, log: opts.Logger, batch: opts.BatchSize}
	ctx := context.Background()
	if err := d.write(ctx, func(tx *sql.Tx) error { return migrate(ctx, tx) }); err != nil {
		w.Close()
		return nil, fmt.Errorf("open projection %s: %w", path, err)
	}
	d.r, err = sql.Open("sqlite3", path+"?_busy_timeout="+busy+"&_txlock=deferred&_query_only=1")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open projection %s: %w", path, err)
	}
	d.r.SetMaxOpenConns(2)
	d.r.SetMaxIdleConns(1)
	return d, nil
}

// Path returns the database file.
func (d *DB) Path() string { return d.path }

// Close closes the database.
func (d *DB) Close() error {
	err := d.r.Close()
	if werr := d.w.Close(); err == nil {
		err = werr
	}
	return err
}

// write runs fn in a write transaction (BEGIN IMMEDIATE) and commits it.
func (d *DB) write(ctx context.Context, fn func(*sql.Tx) error) error {
	return commit(d.w.BeginTx(ctx, nil))(fn)
}

// commit runs fn in the transaction just begun and commits it.
func commit(tx *sql.Tx, err error) func(fn func(*sql.Tx) error) error {
	return func(fn func(*sql.Tx) error) error {
		if err != nil {
			return fmt.Errorf("begin write: %w", err)
		}
		if err := fn(tx); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	}
}

// writeDurable is write with synchronous=FULL for this one transaction:
// its commit fsyncs the WAL. Retention needs it: gc cuts the journal's
// front right after deleting rows, and a deletion lost in a power cut
// would leave rows whose events are gone from the journal, which no
// CatchUp can notice (the last applied entry is still there).
func (d *DB) writeDurable(ctx context.Context, fn func(*sql.Tx) error) error {
	c, err := d.w.Conn(ctx) // the single writer connection
	if err != nil {
		return fmt.Errorf("begin write: %w", err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "PRAGMA synchronous=FULL"); err != nil {
		return fmt.Errorf("begin durable write: %w", err)
	}
	defer c.ExecContext(context.WithoutCancel(ctx), "PRAGMA synchronous=NORMAL")
	return commit(c.BeginTx(ctx, nil))(fn)
}

// read runs fn in a read transaction: one consistent snapshot.
func (d *DB) read(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := d.r.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	defer tx.Rollback()
	return fn(tx)
}

// mark is what the projection knows about the last entry it applied.
type mark struct {
	seq  uint64
	typ  journal.Type
	time int64
}

func (m mark) matches(e *journal.Event) bool {
	return e.Seq == m.seq && e.Type == m.typ && e.Time == m.time
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func readMark(ctx context.Context, q querier) (mark, error) {
	var m mark
	rows, err := q.QueryContext(ctx, `SELECT key, value FROM meta`)
	if err != nil {
		return m, fmt.Errorf("read projection position: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var v int64
		if err := rows.Scan(&k, &v); err != nil {
			return m, err
		}
		switch k {
		case metaLastSeq:
			m.seq = uint64(v)
		case metaLastType:
			m.typ = journal.Type(v)
		case metaLastTime:
			m.time = v
		}
	}
	return m, rows.Err()
}

func writeMark(ctx context.Context, tx *sql.Tx, m mark) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?), (?, ?), (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
		metaLastSeq, int64(m.seq), metaLastType, int64(m.typ), metaLastTime, m.time)
	if err != nil {
		return fmt.Errorf("store projection position: %w", err)
	}
	return nil
}

// LastSeq returns the sequence number of the last journal entry applied.
func (d *DB) LastSeq(ctx context.Context) (uint64, error) {
	m, err := readMark(ctx, d.r)
	return m.seq, err
}

// errRewound means the journal no longer holds the entry the projection
// applied last: the projection must be rebuilt.
var errRewound = errors.New("journal does not match the projection")

// errMoved means another writer reset the projection under us (a rebuild):
// start over from its new position.
var errMoved = errors.New("projection moved backwards")

// CatchUp applies every journal entry after the last one applied and
// returns how many it applied. It is cheap when there is nothing new: no
// write transaction is opened. If the journal no longer matches the
// projection (see the package documentation) it rebuilds instead.
func (d *DB) CatchUp(ctx context.Context, journalDir string) (int, error) {
	for try := 0; ; try++ {
		n, err := d.catchUp(ctx, journalDir)
		switch {
		case errors.Is(err, errRewound):
			d.log.Warn("projection does not match the journal: rebuilding it", "db", d.path, "cause", err)
			return d.Rebuild(ctx, journalDir)
		case errors.Is(err, errMoved) && try < 3:
			continue
		}
		return n, err
	}
}

func (d *DB) catchUp(ctx context.Context, dir string) (int, error) {
	pos, err := readMark(ctx, d.r)
	if err != nil {
		return 0, err
	}
	from := pos.seq // re-read the last applied entry to check its identity
	if from == 0 {
		from = 1
	}
	checked := pos.seq == 0
	applied := 0
	var buf []*journal.Event
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		n, last, err := d.applyBatch(ctx, buf, pos)
		applied += n
		buf = buf[:0]
		pos = last
		return err
	}
	err = journal.Scan(dir, journal.ScanOptions{From: from}, func(e *journal.Event) error {
		if !checked {
			checked = true
			if !pos.matches(e) {
				return fmt.Errorf("%w: entry %d is %s at %d, the projection applied %s at %d",
					errRewound, e.Seq, e.Type, e.Time, pos.typ, pos.time)
			}
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		buf = append(buf, e)
		if len(buf) >= d.batch {
			return flush()
		}
		return nil
	})
	if err == nil && !checked {
		err = fmt.Errorf("%w: the journal ends before entry %d", errRewound, pos.seq)
	}
	if err == nil {
		err = flush()
	}
	if err != nil && !errors.Is(err, errRewound) && !errors.Is(err, errMoved) {
		err = fmt.Errorf("catch up projection: %w", err)
	}
	return applied, err
}

// applyBatch applies evs in one write transaction. want is the position
// the batch was read after; events another writer already applied are
// skipped.
func (d *DB) applyBatch(ctx context.Context, evs []*journal.Event, want mark) (int, mark, error) {
	n := 0
	last := want
	err := d.write(ctx, func(tx *sql.Tx) error {
		cur, err := readMark(ctx, tx)
		if err != nil {
			return err
		}
		if cur.seq < want.seq {
			return errMoved
		}
		a, err := newApplier(ctx, tx)
		if err != nil {
			return err
		}
		defer a.close()
		last = cur
		for _, e := range evs {
			if e.Seq <= cur.seq {
				continue
			}
			if err := a.apply(e); err != nil {
				return err
			}
			n++
			last = mark{seq: e.Seq, typ: e.Type, time: e.Time}
		}
		if n == 0 {
			return nil
		}
		if err := a.flush(); err != nil {
			return err
		}
		return writeMark(ctx, tx, last)
	})
	if err != nil {
		return 0, want, err
	}
	return n, last, nil
}

// Rebuild drops every table and applies the whole journal again, in one
// transaction: readers see the old projection until it commits. It returns
// the number of entries applied.
func (d *DB) Rebuild(ctx context.Context, journalDir string) (int, error) {
	n := 0
	err := d.write(ctx, func(tx *sql.Tx) error {
		if err := dropAll(ctx, tx); err != nil {
			return err
		}
		if err := migrate(ctx, tx); err != nil {
			return err
		}
		a, err := newApplier(ctx, tx)
		if err != nil {
			return err
		}
		defer a.close()
		var last mark
		err = journal.Scan(journalDir, journal.ScanOptions{}, func(e *journal.Event) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := a.apply(e); err != nil {
				return err
			}
			n++
			last = mark{seq: e.Seq, typ: e.Type, time: e.Time}
			return nil
		})
		if err != nil {
			return err
		}
		if err := a.flush(); err != nil {
			return err
		}
		return writeMark(ctx, tx, last)
	})
	if err != nil {
		return 0, fmt.Errorf("rebuild projection: %w", err)
	}
	// Give the space of the old pages' WAL copies back.
	if _, err := d.w.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		d.log.Warn("projection checkpoint after rebuild failed", "err", err)
	}
	return n, nil
}

// IsCorrupt reports whether err means the database file is damaged or not
// a database at all; the remedy is to remove it and rebuild.
func IsCorrupt(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code == sqlite3.ErrCorrupt || se.Code == sqlite3.ErrNotADB
	}
	return false
}

// Remove deletes a closed projection's files (database, WAL, shared memory).
func Remove(path string) error {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}
