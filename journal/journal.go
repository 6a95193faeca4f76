package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/wal"
)

// DefaultSegmentSize keeps the wal's in-memory tail segment small (it holds
// the whole current segment in memory, ~1.3 MiB with its slack) while
// keeping file counts low: a 100,000-task run writes ~50 segments, and the
// wal's roll (an fsync of the full segment, one of the directory) comes
// once per ~5,000 events.
const DefaultSegmentSize = 1 << 20

// Options configure Open.
type Options struct {
	SegmentSize int // bytes, 1–4 MiB; 0 means DefaultSegmentSize
	// ObserveFsync, when set, is called with the duration of every fsync.
	ObserveFsync func(time.Duration)
	// Owner is written into the lock file next to the PID, so that a
	// refused second writer can say who holds the journal.
	Owner string
	// Replay, when set, is called by Open with every entry, in order, as
	// it checks them: a writer that folds its journal into a state reads
	// each segment once, not once to check it and once more with
	// ReadFrom. When Open fails, whatever Replay was given must be
	// discarded.
	Replay func(*Event) error
	// NoDefinition is ScanOptions.NoDefinition for Replay.
	NoDefinition func(run string) bool
	// Select is ScanOptions.Select for Replay.
	Select func(*Entry) Decoding
	// Finished, with Replay, is called with the run of a run_started
	// entry right before Select and Replay get it, when the journal holds
	// a run_finished of that run further on that verifies: Open reads
	// ahead of its replay as far as it needs to know, and keeps what it
	// read for the replay (ahead.go). A fold keeps a run that finishes as
	// a summary from its start (engine.State.OpenOptions).
	Finished func(run string)
}

// Stats are cumulative counters of one open journal.
type Stats struct {
	Entries      uint64 // events appended
	BytesWritten uint64 // bytes handed to the file system, framing included
	Fsyncs       uint64 // file and directory fsyncs
}

// Journal is the single writer of a journal directory. It is safe for
// concurrent use; concurrent Appends are group-committed (one write and one
// fsync for everything queued while the previous commit ran).
type Journal struct {
	dir      string
	opts     Options
	lockFile *os.File
	log      *wal.Log

	wmu      sync.Mutex // held while writing; guards the fields below
	failed   error      // the write error that poisoned the journal
	last     uint64
	dirNames string // the names in dir when it was last fsynced
	// tailSize is the size of the tail segment when dir was last listed
	// plus every byte written since: the wal starts a new segment only
	// once its tail holds SegmentSize bytes (assumption A6), so below that
	// no listing is needed to know the names did not change.
	tailSize int64
	unsynced bool // entries were written since the last fsync
	// tail is a descriptor of the tail segment of the journal's own, for
	// Sync's fsync outside the locks (synctail.go); nil when the tail may
	// have changed.
	tail *os.File
	// clean: the journal's last writer closed it (its LOCK was left
	// empty), so every name in the directory was durable by then.
	clean bool
	batch wal.Batch

	qmu   sync.Mutex // guards queue
	queue []*commit

	frozen                 atomic.Bool // Freeze: no write from now on
	entries, bytes, fsyncs atomic.Uint64
	Repaired               RepairReport // what Open's repair did
}

type commit struct {
	events  []*Event
	entries [][]byte // envelopes to seal (newEntry)
	sync    bool
	done    chan error
}

// Open locks dir (creating it), repairs a torn tail, opens the wal and checks
// its last entry. Only one process may have a journal open; others read it
// with Scan. With Options.Replay set, it passes every entry to it.
func Open(dir string, opts Options) (*Journal, error) {
	if opts.SegmentSize == 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if err := MkdirDurable(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	j := &Journal{dir: dir, opts: opts}
	if err := j.lock(); err != nil {
		return nil, err
	}
	l, err := j.prepare()
	if err != nil {
		j.unlock()
		return nil, err
	}
	j.log, err = openWal(dir, opts)
	if err != nil {
		j.unlock()
		return nil, fmt.Errorf("open journal %s: %w", dir, err)
	}
	if err := j.checkLast(); err != nil {
		j.Close()
		return nil, err
	}
	// wal.Open creates the first segment of an empty journal and finishes
	// a truncation cut short: then the names may have changed. Else they
	// are those listed (A8); after a writer that did not close the
	// journal, they may not be durable yet.
	if len(l.segs) == 0 || l.moving {
		err = j.syncDirIfChanged()
	} else {
		err = j.syncDirIfNot(l.names)
	}
	if err == nil && l.moving && opts.Replay != nil {
		err = j.replay() // the check read entries the truncation removes
	}
	if err != nil {
		j.Close()
		return nil, fmt.Errorf("open journal: %w", err)
	}
	// Reading the last entry cached its segment when the tail is empty.
	_ = j.log.ClearCache()
	return j, nil
}

// prepare finishes or rolls back a salvage, repairs a torn tail and, with
// Options.Replay, replays the journal, from one listing of the directory
// (and one read of each segment). It returns that listing. Called with the
// lock held.
func (j *Journal) prepare() (listing, error) {
	l, err := listJournal(j.dir)
	if err == nil && l.salvage {
		if err = finishSalvage(j.dir); err == nil {
			l, err = listJournal(j.dir)
		}
	}
	if err != nil {
		return l, fmt.Errorf("open journal: %w", err)
	}
	var apply *replayer
	if j.opts.Replay != nil && !l.moving { // else Open replays once the wal finished the truncation
		apply = &replayer{apply: j.opts.Replay, noDefinition: j.opts.NoDefinition, sel: j.opts.Select,
			finished: j.opts.Finished}
		apply.en.reuse()
		if j.opts.Finished != nil {
			apply.ahead = newAhead(l.segs)
		}
	}
	rep, tail, err := repair(j.dir, l.segs, apply)
	var re *replayError
	if errors.As(err, &re) {
		return l, fmt.Errorf("replay journal %s: %w", j.dir, re.err)
	}
	if errors.Is(err, ErrDamaged) {
		return l, err // it names the journal, the file, the offset and the entry
	}
	if err != nil {
		return l, fmt.Errorf("repair journal: %w", err)
	}
	j.Repaired, j.tailSize = rep, tail
	if rep.Truncated { // preserve made damaged/ and its copy
		if l, err = listJournal(j.dir); err != nil {
			return l, fmt.Errorf("open journal: %w", err)
		}
	}
	if j.clean { // names a killed writer left may not be durable; a closed one's are
		j.dirNames = l.names
	}
	return l, nil
}

// replay passes the journal to Options.Replay after Open, once the wal
// finished a truncation, and names the runs that finish to
// Options.Finished (from a first scan: a rare path).
func (j *Journal) replay() error {
	o := j.opts
	sel := o.Select
	if o.Finished != nil {
		fin := map[string]bool{}
		ends := ScanOptions{Types: []Type{RunFinished}, Select: func(*Entry) Decoding { return Lean },
			OnDamage: func(*DamageError) error { return nil }}
		if err := j.Read(ends, func(e *Event) error { fin[e.Run] = true; return nil }); err != nil {
			return err
		}
		sel = func(en *Entry) Decoding {
			if en.Type == RunStarted && fin[en.Run()] {
				o.Finished(en.Run())
			}
			if o.Select == nil {
				return Whole
			}
			return o.Select(en)
		}
	}
	return j.Read(ScanOptions{NoDefinition: o.NoDefinition, Select: sel}, o.Replay)
}

// checkLast checks the envelope of the wal's last entry.
func (j *Journal) checkLast() error {
	var err error
	if j.last, err = j.log.LastIndex(); err != nil {
		return fmt.Errorf("open journal: %w", err)
	}
	if j.last == 0 {
		return nil
	}
	data, err := j.log.Read(j.last)
	if err == nil {
		_, err = decodeHeader(data, j.last)
	}
	if err != nil {
		return fmt.Errorf("open journal: last entry: %w", err)
	}
	return nil
}

// openWal opens the wal of a locked, repaired journal directory.
func openWal(dir string, opts Options) (*wal.Log, error) {
	return wal.Open(dir, &wal.Options{
		NoSync:           true, // we fsync ourselves, once per group commit
		SegmentSize:      opts.SegmentSize,
		LogFormat:        wal.Binary,
		SegmentCacheSize: 1,
		NoCopy:           true,
		DirPerms:         0o750,
		FilePerms:        0o640,
	})
}

// dropSegmentCache frees the segment the wal closed last. When the wal
// starts a segment it keeps the one it closed in its read cache (all its
// bytes: a full segment, or a whole big definition), until reads evict it;
// the journal never reads through the wal while it writes (readers scan
// the files), so that copy would only double the wal's memory. Called
// with wmu held after a batch that may have made the wal start a segment
// (it cannot fail on an open wal, and costs a lock when the cache is empty).
func (j *Journal) dropSegmentCache() {
	if j.tailSize >= int64(j.opts.SegmentSize) {
		_ = j.log.ClearCache()
	}
}

// syncDirIfChanged fsyncs the directory when the names in it changed since
// it was last fsynced. The wal starts a new segment file whenever it sees
// fit (its API promises no rule for it), and an entry in a new file is
// durable only once the directory entry is: listing the directory after a
// write costs microseconds, an fsync of it milliseconds.
func (j *Journal) syncDirIfChanged() error {
	j.dropTail() // the tail it finds may be another: Sync opens it again
	names, tail, err := dirNames(j.dir)
	if err != nil {
		return err
	}
	if names != j.dirNames {
		if err := j.syncDir(); err != nil {
			return err
		}
		j.dirNames = names
	}
	j.tailSize = 0
	if tail != "" {
		fi, err := os.Stat(filepath.Join(j.dir, tail))
		if err != nil {
			return err
		}
		j.tailSize = fi.Size()
	}
	return nil
}

// syncDirIfNot fsyncs the directory unless names, what it holds, are the
// names it held when last fsynced (tailSize is known).
func (j *Journal) syncDirIfNot(names string) error {
	if names == j.dirNames {
		return nil
	}
	if err := j.syncDir(); err != nil {
		return err
	}
	j.dirNames = names
	return nil
}

// maybeSyncDir is syncDirIfChanged when the wal may have started a segment
// since the last listing: the listing costs four system calls, and the
// tail only fills up every SegmentSize bytes.
func (j *Journal) maybeSyncDir() error {
	if j.tailSize < int64(j.opts.SegmentSize) {
		return nil
	}
	return j.syncDirIfChanged()
}

// dirNames returns the sorted names in dir, joined, and the name of the
// newest segment ("" when there is none).
func dirNames(dir string) (string, string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return "", "", err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return "", "", fmt.Errorf("list %s: %w", dir, err)
	}
	slices.Sort(names)
	tail := ""
	for _, n := range names {
		if isSegmentName(n) {
			tail = n // sorted: the last one is the newest
		}
	}
	return strings.Join(names, "/"), tail, nil
}

func (j *Journal) lock() error {
	f, clean, err := lockFile(filepath.Join(j.dir, "LOCK"), j.opts.Owner)
	j.clean = clean
	var le *LockedError
	if errors.As(err, &le) {
		le.What = "journal " + j.dir
	}
	if err != nil {
		return err
	}
	j.lockFile = f
	return nil
}

func (j *Journal) unlock() {
	if j.lockFile != nil {
		j.lockFile.Close() // releases the flock
		j.lockFile = nil
	}
}

// Dir returns the journal directory.
func (j *Journal) Dir() string { return j.dir }

// Append writes events durably: when it returns nil, they are on stable
// storage and have their Seq set. Events appended lazily before are made
// durable too.
func (j *Journal) Append(evs ...*Event) error { return j.append(evs, true) }

// AppendLazy writes events without waiting for an fsync; they become
// durable with the next Append or Sync. For facts whose loss in a crash is
// harmless (a process group id the engine can also find by other means).
func (j *Journal) AppendLazy(evs ...*Event) error { return j.append(evs, false) }

func (j *Journal) append(evs []*Event, durable bool) error {
	c := &commit{events: evs, sync: durable, done: make(chan error, 1)}
	for _, e := range evs {
		p, err := encodeEvent(e)
		if err != nil {
			return err
		}
		c.entries = append(c.entries, p)
	}
	j.qmu.Lock()
	j.queue = append(j.queue, c)
	j.qmu.Unlock()

	j.wmu.Lock()
	select {
	case err := <-c.done: // a previous leader committed us
		j.wmu.Unlock()
		return err
	default:
	}
	j.qmu.Lock()
	group := j.queue
	j.queue = nil
	j.qmu.Unlock()
	err := j.commit(group)
	for _, g := range group {
		g.done <- err
	}
	j.wmu.Unlock()
	return <-c.done
}

// marshalEvent returns the payload of an event to append.
func marshalEvent(e *Event) ([]byte, error) {
	p, err := encodeEvent(e)
	if err != nil {
		return nil, err
	}
	return p[headerSize:], nil
}

// encodeEvent returns the entry of an event to append, its envelope not
// sealed yet (sealEnvelope, once its sequence number is known).
func encodeEvent(e *Event) ([]byte, error) {
	if !e.Type.Known() {
		return nil, fmt.Errorf("append: unknown event type %d", uint16(e.Type))
	}
	p, err := newEntry(e)
	if err != nil {
		return nil, fmt.Errorf("append %s: %w", e.Type, err)
	}
	if n := len(p) - headerSize; n > MaxPayload {
		return nil, fmt.Errorf("append %s: payload of %d bytes exceeds %d", e.Type, n, MaxPayload)
	}
	return p, nil
}

// commit writes a group of queued appends in one batch. Called with wmu held.
func (j *Journal) commit(group []*commit) error {
	if j.frozen.Load() {
		return j.frozenErr("append")
	}
	if j.log == nil {
		return j.closedErr("append")
	}
	if j.alone(group) != nil {
		return j.commitAlone(group[0])
	}
	durable := false
	var written uint64
	seq := j.last
	for _, c := range group {
		durable = durable || c.sync
		for i, e := range c.events {
			seq++
			e.Seq = seq
			entry := c.entries[i]
			c.entries[i] = nil // the batch has a copy: a big definition is not held twice
			sealEnvelope(entry, e.Type, seq)
			j.batch.Write(seq, entry)
			written += uint64(uvarintLen(uint64(len(entry))) + len(entry))
		}
	}
	if err := j.log.WriteBatch(&j.batch); err != nil {
		j.batch.Clear()
		return j.fail(fmt.Errorf("append entries %d..%d: %w", j.last+1, seq, err))
	}
	if written > 1<<20 {
		j.batch = wal.Batch{} // do not keep the buffer of a big definition for the journal's life
	}
	j.entries.Add(seq - j.last)
	j.bytes.Add(written)
	j.last = seq
	j.tailSize += int64(written)
	j.unsynced = true
	j.dropSegmentCache()
	if durable {
		if err := j.syncAll(); err != nil {
			return j.fail(fmt.Errorf("append: %w", err))
		}
	}
	return nil
}

// syncAll makes every entry written durable: the tail segment, and the
// directory when the wal may have started a segment. Called with wmu held.
func (j *Journal) syncAll() error {
	if err := j.fsync(j.log.Sync); err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	j.unsynced = false
	return j.maybeSyncDir()
}

// fail poisons the journal after a write error: what reached the disk is
// unknown, so the only safe continuation is to reopen (which repairs).
// Every later write returns the error again.
func (j *Journal) fail(err error) error {
	j.dropTail()
	j.log.Close()
	j.log = nil
	j.failed = err
	return err
}

// closedErr is the error of an operation on a journal that is closed or
// that a write error poisoned (then it wraps that error: its cause, e.g.
// "no space left on device", and its path).
func (j *Journal) closedErr(op string) error {
	if j.failed != nil {
		return fmt.Errorf("%s: journal %s stopped after a write error (reopen it once the cause is fixed): %w", op, j.dir, j.failed)
	}
	return fmt.Errorf("%s: journal %s is closed", op, j.dir)
}

func (j *Journal) fsync(f func() error) error {
	start := time.Now()
	err := f()
	j.fsyncs.Add(1)
	if j.opts.ObserveFsync != nil {
		j.opts.ObserveFsync(time.Since(start))
	}
	return err
}

func (j *Journal) syncDir() error {
	return j.fsync(func() error { return syncDir(j.dir) })
}

// Sync makes every event appended before it durable. Appends made
// meanwhile do not wait for it (synctail.go).
func (j *Journal) Sync() error {
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if j.log == nil {
		return j.closedErr("sync")
	}
	return j.syncOutside()
}

// Freeze stops every later write for good: an Append, AppendLazy or
// TruncateFront that starts after it returns an error and writes nothing.
// Then it makes what was written durable, waiting for a write in progress
// at most wait, and reports whether it did. It is for a process about to
// exit without closing: a forced exit kills the tasks it started, and
// their deaths must not be journaled as their outcomes (the run stays
// resumable). The wait is bounded because a write can hang in the kernel
// (a frozen or stalled file system), and a forced exit must exit: what a
// write in progress leaves is at worst a torn tail, which Open repairs.
// The lock is not kept: a process whose exit returns (an injected one, in
// tests) gets errors from the journal, never a write that blocks forever.
func (j *Journal) Freeze(wait time.Duration) bool {
	j.frozen.Store(true)
	synced := make(chan struct{})
	go func() {
		j.wmu.Lock()
		defer j.wmu.Unlock()
		if j.log != nil && j.failed == nil {
			_ = j.syncAll()
		}
		close(synced)
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-synced:
		return true
	case <-t.C:
		return false
	}
}

// frozenErr is the error of a write after Freeze.
func (j *Journal) frozenErr(op string) error {
	return fmt.Errorf("%s: journal %s is frozen: the process is exiting", op, j.dir)
}

// LastSeq returns the sequence number of the newest entry (0: empty).
func (j *Journal) LastSeq() uint64 {
	j.wmu.Lock()
	defer j.wmu.Unlock()
	return j.last
}

// FirstSeq returns the sequence number of the oldest entry kept.
func (j *Journal) FirstSeq() (uint64, error) {
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if j.log == nil {
		return 0, j.closedErr("first entry")
	}
	return j.log.FirstIndex()
}

// ReadFrom calls fn for every entry from seq on, in order, up to the last
// one appended when it was called.
func (j *Journal) ReadFrom(seq uint64, fn func(*Event) error) error {
	return j.Read(ScanOptions{From: seq}, fn)
}

// Read is ReadFrom(opts.From, fn) with the other options of a Scan
// (Types, NoDefinition, Select); it is always Strict.
func (j *Journal) Read(opts ScanOptions, fn func(*Event) error) error {
	opts.Strict = true
	return scan(j.dir, opts, j.LastSeq(), fn)
}

// TruncateFront removes every entry before seq (retention). The newest
// entry is always kept.
func (j *Journal) TruncateFront(seq uint64) error {
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if j.frozen.Load() {
		return j.frozenErr("truncate")
	}
	if j.log == nil {
		return j.closedErr("truncate")
	}
	if seq > j.last {
		seq = j.last
	}
	first, err := j.log.FirstIndex()
	if err != nil {
		return fmt.Errorf("truncate journal before %d: %w", seq, err)
	}
	if j.last == 0 || seq <= first {
		return nil // nothing before seq is left
	}
	j.dropTail() // the wal may replace the tail under its name
	if err := j.log.TruncateFront(seq); err != nil {
		return fmt.Errorf("truncate journal before %d: %w", seq, err)
	}
	// The wal removed files and may have replaced one under the same name.
	j.dirNames = ""
	return j.syncDirIfChanged()
}

// Stats returns the journal's counters.
func (j *Journal) Stats() Stats {
	return Stats{Entries: j.entries.Load(), BytesWritten: j.bytes.Load(), Fsyncs: j.fsyncs.Load()}
}

// Close syncs and closes the journal and releases its lock.
func (j *Journal) Close() error {
	j.wmu.Lock()
	defer j.wmu.Unlock()
	j.dropTail()
	var err error
	if j.log != nil {
		// The wal's Close fsyncs the tail segment itself: what makes lazy
		// entries durable (with the directory when the wal may have
		// started a segment). When every entry is durable already that
		// fsync finds nothing dirty; tidwall/wal has no Close without it.
		if j.unsynced {
			err = j.maybeSyncDir()
		}
		if cerr := j.fsync(j.log.Close); err == nil {
			err = cerr
		}
		j.log = nil
		// Every name is durable (dirNames is set once they were: never
		// while an Open that failed had not fsynced them): the next Open
		// needs no fsync for them.
		if err == nil && j.failed == nil && j.dirNames != "" && j.lockFile != nil {
			releaseClean(j.lockFile)
		}
	}
	j.unlock()
	return err
}
