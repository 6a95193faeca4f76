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
	"sync/atomic"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
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

// Open opens (creating it and its directory) the database at path and
// migrates its schema.
func Open(path string, opts Options) (*DB, error) {
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open projection: path %q must not contain '?' or '#'", path)
	}
	opts = opts.withDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open projection: %w", err)
	}
	busy := strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10)
	return open(path, path+"?_busy_timeout="+busy+"&_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate",
		path+"?_busy_timeout="+busy+"&_txlock=deferred&_query_only=1", opts)
}

// memories numbers the databases of OpenMemory, each a name of its own.
var memories atomic.Int64

// OpenMemory opens an empty projection that lives in memory only, freed
// when it is closed: what a read-only query answers from when the
// database on disk cannot be written (a full disk, a read-only home).
func OpenMemory(opts Options) (*DB, error) {
	opts = opts.withDefaults()
	// The memdb VFS shares a database named with a leading slash among the
	// connections of this process, with the usual locking.
	name := fmt.Sprintf("file:/picoflow-memory-%d-%d?vfs=memdb", os.Getpid(), memories.Add(1))
	busy := strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10)
	return open("(memory)", name+"&_busy_timeout="+busy+"&_txlock=immediate",
		name+"&_busy_timeout="+busy+"&_txlock=deferred&_query_only=1", opts)
}

func (o Options) withDefaults() Options {
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 30 * time.Second
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 2048
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// open opens the writer pool on wdsn, migrates, then the reader pool.
func open(path, wdsn, rdsn string, opts Options) (*DB, error) {
	w, err := sql.Open("sqlite3", wdsn)
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
	d.r, err = sql.Open("sqlite3", rdsn)
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

// Source is one journal the projection follows: a workflow's journal,
// named by the workflow, or the single journal of a home an older release
// wrote (named "").
type Source struct {
	Name string
	Dir  string
}

// Journals lists the journals to follow. CatchUp calls it after reading
// the positions it stored, so a journal it knows and the list lacks is gone.
type Journals func() ([]Source, error)

// One returns the Journals of a single journal directory, named "".
func One(dir string) Journals {
	return func() ([]Source, error) { return []Source{{Name: "", Dir: dir}}, nil }
}

// mark is what the projection knows about the last entry it applied of
// one journal.
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

// readMarks returns the position of every journal applied so far.
func readMarks(ctx context.Context, q querier) (map[string]mark, error) {
	rows, err := q.QueryContext(ctx, `SELECT journal, seq, type, time FROM positions`)
	if err != nil {
		return nil, fmt.Errorf("read projection positions: %w", err)
	}
	defer rows.Close()
	out := map[string]mark{}
	for rows.Next() {
		var name string
		var seq, typ, t int64
		if err := rows.Scan(&name, &seq, &typ, &t); err != nil {
			return nil, err
		}
		out[name] = mark{seq: uint64(seq), typ: journal.Type(typ), time: t}
	}
	return out, rows.Err()
}

func readMark(ctx context.Context, q querier, name string) (mark, error) {
	var m mark
	var seq, typ int64
	err := q.QueryRowContext(ctx, `SELECT seq, type, time FROM positions WHERE journal = ?`, name).Scan(&seq, &typ, &m.time)
	if errors.Is(err, sql.ErrNoRows) {
		return mark{}, nil
	}
	if err != nil {
		return m, fmt.Errorf("read projection position of journal %q: %w", name, err)
	}
	m.seq, m.typ = uint64(seq), journal.Type(typ)
	return m, nil
}

func writeMark(ctx context.Context, tx *sql.Tx, name string, m mark) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO positions (journal, seq, type, time) VALUES (?, ?, ?, ?)
		ON CONFLICT (journal) DO UPDATE SET seq = excluded.seq, type = excluded.type, time = excluded.time`,
		name, int64(m.seq), int64(m.typ), m.time)
	if err != nil {
		return fmt.Errorf("store projection position of journal %q: %w", name, err)
	}
	return nil
}

// LastSeq returns the sequence number of the last entry applied of the
// journal named "" (a single journal).
func (d *DB) LastSeq(ctx context.Context) (uint64, error) { return d.Position(ctx, "") }

// Position returns the sequence number of the last entry applied of the
// journal named name (0: none).
func (d *DB) Position(ctx context.Context, name string) (uint64, error) {
	m, err := readMark(ctx, d.r, name)
	return m.seq, err
}

// errRewound means a journal no longer holds the entry the projection
// applied last, or is gone: the projection must be rebuilt.
var errRewound = errors.New("journal does not match the projection")

// errMoved means another writer reset the projection under us (a rebuild):
// start over from its new position.
var errMoved = errors.New("projection moved backwards")

// CatchUp applies the entries of the single journal in dir (named "")
// that the projection has not applied yet; see CatchUpAll.
func (d *DB) CatchUp(ctx context.Context, dir string) (int, error) {
	return d.CatchUpAll(ctx, One(dir))
}

// CatchUpAll applies, journal by journal, every entry after the last one
// applied and returns how many it applied. It is cheap when there is
// nothing new: no write transaction is opened. If a journal no longer
// matches the projection, or a journal it applied is gone (see the package
// documentation), it rebuilds instead.
func (d *DB) CatchUpAll(ctx context.Context, list Journals) (int, error) {
	for try := 0; ; try++ {
		n, err := d.catchUpAll(ctx, list)
		switch {
		case errors.Is(err, errRewound):
			d.log.Warn("projection does not match the journal: rebuilding it", "db", d.path, "cause", err)
			return d.RebuildAll(ctx, list)
		case errors.Is(err, errMoved) && try < 3:
			continue
		}
		return n, err
	}
}

func (d *DB) catchUpAll(ctx context.Context, list Journals) (int, error) {
	marks, err := readMarks(ctx, d.r)
	if err != nil {
		return 0, err
	}
	srcs, err := list()
	if err != nil {
		return 0, fmt.Errorf("catch up projection: %w", err)
	}
	listed := map[string]bool{}
	for _, s := range srcs {
		listed[s.Name] = true
	}
	for name, m := range marks {
		if !listed[name] && m.seq > 0 {
			return 0, fmt.Errorf("%w: journal %q is gone", errRewound, name)
		}
	}
	total := 0
	for _, s := range srcs {
		n, err := d.catchUp(ctx, s, marks[s.Name])
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (d *DB) catchUp(ctx context.Context, src Source, pos mark) (int, error) {
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
		n, last, err := d.applyBatch(ctx, src, buf, pos)
		applied += n
		buf = buf[:0]
		pos = last
		return err
	}
	opts := journal.ScanOptions{From: from, OnDamage: d.skipDamage, NoDefinition: noDefinition}
	err := journal.Scan(src.Dir, opts, func(e *journal.Event) error {
		if !checked {
			checked = true
			if !pos.matches(e) {
				return fmt.Errorf("%w: entry %d of %s is %s at %d, the projection applied %s at %d",
					errRewound, e.Seq, src.Dir, e.Type, e.Time, pos.typ, pos.time)
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
		err = fmt.Errorf("%w: journal %s ends before entry %d", errRewound, src.Dir, pos.seq)
	}
	if err == nil {
		err = flush()
	}
	if err != nil && !errors.Is(err, errRewound) && !errors.Is(err, errMoved) {
		err = fmt.Errorf("catch up projection: %w", err)
	}
	return applied, err
}

// applyBatch applies evs of journal src in one write transaction. want is
// the position the batch was read after; events another writer already
// applied are skipped.
func (d *DB) applyBatch(ctx context.Context, src Source, evs []*journal.Event, want mark) (int, mark, error) {
	name := src.Name
	n := 0
	last := want
	err := d.write(ctx, func(tx *sql.Tx) error {
		cur, err := readMark(ctx, tx, name)
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
		a.dir = src.Dir
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
		return writeMark(ctx, tx, name, last)
	})
	if err != nil {
		return 0, want, err
	}
	return n, last, nil
}

// Rebuild rebuilds the projection from the single journal in dir; see
// RebuildAll.
func (d *DB) Rebuild(ctx context.Context, dir string) (int, error) {
	return d.RebuildAll(ctx, One(dir))
}

// RebuildAll drops every table and applies every journal again, in one
// transaction: readers see the old projection until it commits. It
// returns the number of entries applied.
func (d *DB) RebuildAll(ctx context.Context, list Journals) (int, error) {
	n := 0
	err := d.write(ctx, func(tx *sql.Tx) error {
		if err := dropAll(ctx, tx); err != nil {
			return err
		}
		if err := migrate(ctx, tx); err != nil {
			return err
		}
		srcs, err := list()
		if err != nil {
			return err
		}
		a, err := newApplier(ctx, tx)
		if err != nil {
			return err
		}
		defer a.close()
		for _, s := range srcs {
			var last mark
			a.dir = s.Dir
			opts := journal.ScanOptions{OnDamage: d.skipDamage, NoDefinition: noDefinition}
			err = journal.Scan(s.Dir, opts, func(e *journal.Event) error {
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
			if err := writeMark(ctx, tx, s.Name, last); err != nil {
				return err
			}
		}
		return nil
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

// skipDamage lets a scan go on past a damaged region of a journal: the
// projection shows what verifies (runs whose events are in the region may
// look unfinished), and the warning names the damage.
func (d *DB) skipDamage(de *journal.DamageError) error {
	d.log.Warn("damaged journal: history shows what verifies; see picoflow journal verify", "err", de)
	return nil
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
