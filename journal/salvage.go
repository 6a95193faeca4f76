package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tidwall/wal"
)

// SalvageOptions tune Salvage.
type SalvageOptions struct {
	// Owner is written into the lock file (see Options.Owner).
	Owner string
	// SegmentSize of the new journal's segments; 0 means DefaultSegmentSize.
	SegmentSize int
	// Keep, when set, is called for every entry that verifies and decodes,
	// in order, with its old sequence number; returning false leaves the
	// entry out of the new journal (it stays in the copy under
	// DIR/damaged/). The CLI uses it for events of a run whose run_started
	// was lost, which no reducer can replay.
	Keep func(*Event) bool
	// Finish, when set, is called once the entries kept are written to the
	// new journal in ndir (a journal directory Scan can read) and before
	// the switch; the events it returns are appended to the new journal,
	// so that they are committed with it or not at all. The CLI marks the
	// runs whose events may be missing this way.
	Finish func(ndir string, rep *SalvageReport) ([]*Event, error)
}

// Gap is a place in the salvaged journal where entries were lost. Before
// and After are new sequence numbers: Before is the entry kept just before
// the gap (0: the gap is at the start), After the entry kept just after it
// (0: the gap is at the end).
type Gap struct {
	Before, After uint64
	Damage        DamageError // the damaged region that made the gap
}

// SalvageReport says what Salvage kept, dropped and where it put copies.
type SalvageReport struct {
	Dir        string
	Kept       uint64        // entries of the old journal in the new one
	Added      uint64        // events Finish appended after them
	Left       uint64        // entries that verified but Keep left out
	Lost       uint64        // entries the damaged regions held, as far as their numbers tell
	Damage     []DamageError // every damaged region found
	Torn       *TornTail     // the torn tail dropped, if any
	Gaps       []Gap         // where entries were lost, in new sequence numbers
	Copies     []string      // copies of the old journal's files under DIR/damaged/
	Renumbered bool          // sequence numbers changed: projections keyed on seq must be rebuilt
}

// Files of a salvage in progress, inside the journal directory: the new
// journal is written to salvageNew, then renamed to salvageReady (the
// commit point), whose manifest lists the files that replace the old
// segments.
const (
	salvageNew      = "salvage.new"
	salvageReady    = "salvage.ready"
	salvageManifest = "MANIFEST"
)

// salvageCrash, set by tests, makes Salvage stop as if the process died
// right before the named step.
var salvageCrash string

var errSalvageCrash = errors.New("simulated crash")

func crashPoint(step string) error {
	if salvageCrash == step {
		return errSalvageCrash
	}
	return nil
}

// Salvage rewrites the journal in dir keeping every entry that verifies,
// renumbered so that each entry's sequence number equals its wal index
// again. It takes the journal lock, copies the old segment files to
// DIR/damaged/salvage-UNIXNANO/ first, writes the new journal aside,
// fsyncs it and switches to it through one rename: a crash leaves either
// the old journal or the new one, and the next Open or Salvage finishes or
// rolls back the switch (readers see the new journal as soon as the rename
// is done). The report lists the gaps so that the caller can mark runs
// whose events may be missing.
func Salvage(dir string, opts SalvageOptions) (SalvageReport, error) {
	rep := SalvageReport{Dir: dir}
	lock, err := LockFile(filepath.Join(dir, "LOCK"), opts.Owner)
	var le *LockedError
	if errors.As(err, &le) {
		le.What = "journal " + dir
	}
	if err != nil {
		return rep, err
	}
	defer lock.Close()
	if err := finishSalvage(dir); err != nil {
		return rep, err
	}
	segs, err := listSegments(dir)
	if err != nil {
		return rep, fmt.Errorf("salvage journal: %w", err)
	}
	v, _, err := checkSegments(dir, segs, nil)
	if err != nil {
		return rep, err
	}
	rep.Damage, rep.Torn = v.Damage, v.Torn
	if rep.Copies, err = copyAside(dir); err != nil {
		return rep, err
	}
	if err := crashPoint("write"); err != nil {
		return rep, err
	}
	if err := writeSalvaged(dir, opts, &rep); err != nil {
		return rep, err
	}
	if err := crashPoint("commit"); err != nil {
		return rep, err
	}
	if err := os.Rename(filepath.Join(dir, salvageNew), filepath.Join(dir, salvageReady)); err != nil {
		return rep, fmt.Errorf("salvage journal: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return rep, err
	}
	if err := crashPoint("switch"); err != nil {
		return rep, err
	}
	return rep, finishSalvage(dir)
}

// writeSalvaged writes every entry that verifies (and that Keep keeps) to
// a new journal in dir/salvage.new, fsynced, with its manifest.
func writeSalvaged(dir string, opts SalvageOptions, rep *SalvageReport) error {
	ndir := filepath.Join(dir, salvageNew)
	if opts.SegmentSize == 0 {
		opts.SegmentSize = DefaultSegmentSize
	}
	if err := os.RemoveAll(ndir); err != nil {
		return fmt.Errorf("salvage journal: %w", err)
	}
	log, err := wal.Open(ndir, &wal.Options{NoSync: true, SegmentSize: opts.SegmentSize,
		LogFormat: wal.Binary, DirPerms: 0o750, FilePerms: 0o640})
	if err != nil {
		return fmt.Errorf("salvage journal: %w", err)
	}
	w := &salvageWriter{log: log, rep: rep, keep: opts.Keep}
	err = w.copyEntries(dir)
	if err == nil {
		err = w.flush()
	}
	if err == nil && opts.Finish != nil {
		err = w.finish(ndir, opts.Finish)
	}
	if err == nil {
		err = log.Sync()
	}
	if cerr := log.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = writeManifest(ndir)
	}
	if err != nil {
		return fmt.Errorf("salvage journal: write %s: %w", ndir, err)
	}
	return nil
}

// salvageWriter appends the entries kept to the new journal and records
// where entries were lost.
type salvageWriter struct {
	log     *wal.Log
	batch   wal.Batch
	pending int
	rep     *SalvageReport
	keep    func(*Event) bool
	oldLast uint64       // the old number of the last entry seen
	gap     *DamageError // entries were lost since the last entry kept
}

func (w *salvageWriter) copyEntries(dir string) error {
	segs, err := listSegments(dir)
	if err != nil {
		return err
	}
	for i, s := range segs {
		if i > 0 && s.first > w.oldLast+1 && w.gap == nil {
			w.lose(&DamageError{Dir: dir, Segment: s.path, Index: w.oldLast + 1,
				Reason: fmt.Sprintf("segment %s does not follow entry %d", filepath.Base(s.path), w.oldLast)}, s.first)
		}
		buf, err := os.ReadFile(s.path)
		if err != nil {
			return err
		}
		last := i == len(segs)-1
		err = walkSegment(buf, s.first, w.add, func(g region) error {
			d := &DamageError{Dir: dir, Segment: s.path, Offset: int64(g.off), Index: g.idx, Reason: g.reason}
			switch {
			case g.next != 0:
				w.lose(d, g.next)
			case last && g.torn:
			case last:
				w.lose(d, g.idx+1) // at least the entry it held
			case i+1 < len(segs):
				w.lose(d, segs[i+1].first)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if w.gap != nil {
		w.rep.Gaps = append(w.rep.Gaps, Gap{Before: w.rep.Kept, Damage: *w.gap})
	}
	return nil
}

// lose records a damaged region whose entries, from d.Index up to before
// next, are lost.
func (w *salvageWriter) lose(d *DamageError, next uint64) {
	if next <= d.Index {
		return // the region held no entry (a damaged length prefix)
	}
	w.rep.Lost += next - d.Index
	if w.gap == nil {
		w.gap = d
	}
}

func (w *salvageWriter) add(r record) error {
	if w.oldLast != 0 && r.seq <= w.oldLast {
		return nil // a stale copy of an entry already kept
	}
	w.oldLast = r.seq
	t, _, payload, err := verify(r.env)
	if err != nil {
		return err
	}
	if w.keep != nil {
		if e, err := decode(r.env, r.seq); err == nil && !w.keep(e) {
			w.rep.Left++
			return nil
		}
	}
	w.rep.Kept++
	seq := w.rep.Kept
	if seq != r.seq {
		w.rep.Renumbered = true
	}
	if w.gap != nil {
		w.rep.Gaps = append(w.rep.Gaps, Gap{Before: seq - 1, After: seq, Damage: *w.gap})
		w.gap = nil
	}
	w.batch.Write(seq, appendEnvelope(nil, t, seq, payload))
	if w.pending++; w.pending == 256 {
		return w.flush()
	}
	return nil
}

// finish appends the events of the caller's Finish after the entries kept.
func (w *salvageWriter) finish(ndir string, fn func(string, *SalvageReport) ([]*Event, error)) error {
	if err := w.log.Sync(); err != nil {
		return err
	}
	evs, err := fn(ndir, w.rep)
	if err != nil {
		return err
	}
	for _, e := range evs {
		p, err := marshalEvent(e)
		if err != nil {
			return err
		}
		w.rep.Added++
		e.Seq = w.rep.Kept + w.rep.Added
		w.batch.Write(e.Seq, appendEnvelope(nil, e.Type, e.Seq, p))
	}
	return w.flush()
}

func (w *salvageWriter) flush() error {
	w.pending = 0
	return w.log.WriteBatch(&w.batch)
}

// writeManifest lists the files of the new journal in ndir/MANIFEST and
// fsyncs the files, the manifest and the directory.
func writeManifest(ndir string) error {
	ents, err := os.ReadDir(ndir)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
			if err := syncFile(filepath.Join(ndir, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := writeSynced(filepath.Join(ndir, salvageManifest), []byte(strings.Join(names, "\n")+"\n")); err != nil {
		return err
	}
	return syncDir(ndir)
}

// finishSalvage completes a salvage that reached its commit point (the
// rename to salvage.ready) and removes one that did not. Idempotent: a
// crash in the middle of it is finished by the next call.
func finishSalvage(dir string) error {
	if err := os.RemoveAll(filepath.Join(dir, salvageNew)); err != nil {
		return fmt.Errorf("roll back salvage: %w", err)
	}
	rdir := filepath.Join(dir, salvageReady)
	names, err := readManifest(rdir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("finish salvage: %w", err)
	}
	keep := map[string]bool{}
	for _, name := range names {
		keep[name] = true
		err := os.Rename(filepath.Join(rdir, name), filepath.Join(dir, name))
		if err != nil && !os.IsNotExist(err) { // moved before a crash
			return fmt.Errorf("finish salvage: %w", err)
		}
		if err := crashPoint("moved-one"); err != nil {
			return err
		}
	}
	if err := removeOldFiles(dir, keep); err != nil {
		return fmt.Errorf("finish salvage: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	if err := os.RemoveAll(rdir); err != nil {
		return fmt.Errorf("finish salvage: %w", err)
	}
	return syncDir(dir)
}

// readManifest returns the file names listed in dir/MANIFEST.
func readManifest(dir string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, salvageManifest))
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(b)), nil
}

// removeOldFiles removes the old journal's files (segments and the wal's
// .START/.END files) that the new journal does not replace.
func removeOldFiles(dir string, keep map[string]bool) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		n := e.Name()
		wal := strings.HasSuffix(n, ".START") || strings.HasSuffix(n, ".END") || isSegmentName(n)
		if e.Type().IsRegular() && wal && !keep[n] {
			if err := os.Remove(filepath.Join(dir, n)); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
	}
	return nil
}

// copyAside copies the old journal's files to dir/damaged/salvage-UNIXNANO/,
// fsynced, and returns their paths.
func copyAside(dir string) ([]string, error) {
	cdir := filepath.Join(dir, "damaged", fmt.Sprintf("salvage-%d", time.Now().UnixNano()))
	if err := os.MkdirAll(cdir, 0o750); err != nil {
		return nil, fmt.Errorf("salvage journal: keep a copy: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var copies []string
	for _, e := range ents {
		if !e.Type().IsRegular() || e.Name() == "LOCK" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err == nil {
			err = writeSynced(filepath.Join(cdir, e.Name()), b)
		}
		if err != nil {
			return copies, fmt.Errorf("salvage journal: keep a copy: %w", err)
		}
		copies = append(copies, filepath.Join(cdir, e.Name()))
	}
	if err := syncDir(cdir); err != nil {
		return copies, err
	}
	if err := syncDir(filepath.Dir(cdir)); err != nil {
		return copies, err
	}
	return copies, syncDir(dir)
}

// writeSynced creates path with b and fsyncs it.
func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncFile(path string) error { return openSync(path, os.O_RDWR) }

// openSync opens the file at path with flag, fsyncs and closes it.
func openSync(path string, flag int) error {
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
