package journal

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// ScanOptions tune Scan.
type ScanOptions struct {
	// From is the first sequence number wanted (0 or 1: from the start).
	From uint64
	// Strict makes a torn or damaged tail an error instead of the end of
	// the journal. Readers of a live journal leave it off: the writer may
	// be in the middle of a record.
	Strict bool
	// OnDamage, when set, makes the scan go on past damage: every entry
	// that verifies is delivered, before and after a damaged region, and
	// each damaged region is passed to OnDamage (in order, between the
	// entries around it). Returning an error from OnDamage ends the scan
	// with it. Read-only commands use it to keep working on what verifies.
	OnDamage func(*DamageError) error
	// Types, when set, limits fn to the entries of these types: the others
	// are verified as every entry is, but neither decoded nor delivered.
	// A reader that needs a few small entries (engine: which runs finish)
	// reads the journal without decoding a definition of megabytes.
	Types []Type
	// NoDefinition, when set, is asked for the run of every run_started:
	// when it says true, the event is delivered without its definition,
	// whose bytes are checked but never copied out (a fold that keeps no
	// finished run's definition: 7–10 MB, and twice that while decoded,
	// for a 100,000-task workflow).
	NoDefinition func(run string) bool
	// Select, when set, is asked about each verified entry of Types before
	// its payload is decoded: how much of it to decode (Whole, Lean), or
	// to Skip it. A fold reads the events of its finished runs lean
	// (engine.State.FoldDir). NoDefinition applies to what it leaves whole.
	Select func(*Entry) Decoding
}

// ErrStop may be returned by a Scan callback to end the scan early.
var ErrStop = errors.New("stop scan")

// Scan reads the journal in dir without opening it for writing, without
// locking it and without changing any file: it is what readers in other
// processes, `picoflow replay --journal` and the projector use. Entries are
// verified; fn is called for each in order. A torn tail of the last segment
// ends the scan (see ScanOptions.Strict); damage is a *DamageError naming
// the file, the offset and the entry, or is reported to
// ScanOptions.OnDamage and skipped.
func Scan(dir string, opts ScanOptions, fn func(*Event) error) error {
	return scan(dir, opts, math.MaxUint64, fn)
}

// scan is Scan ending after entry last. The writer reads its own journal up
// to the last entry it has finished writing: a record it is writing at the
// same moment may be seen half-written, and is not damage.
//
// A concurrent TruncateFront deletes segment files and moves the entries it
// keeps from one file to another (through a .START file). When a segment
// vanishes, when segments do not follow each other or while a move is
// under way, the scan lists the directory again and goes on from the next
// entry it wants: it may begin later than asked (those entries are gone)
// but never skips one that is kept.
func scan(dir string, opts ScanOptions, last uint64, fn func(*Event) error) error {
	sc := &scanner{dir: dir, opts: opts, last: last, fn: fn, next: max(opts.From, 1)}
	sc.en.reuse()
	for {
		gap, err := sc.listAndScan()
		if err != nil || gap == nil {
			return err
		}
		// Segment files that do not follow each other, and stay so.
		if err := sc.damage(gap); err != nil {
			return err
		}
		first, _ := strconv.ParseUint(filepath.Base(gap.Segment), 10, 64)
		sc.next = max(sc.next, first) // go on after the gap
	}
}

// listAndScan scans the segments as listed, listing them again while a
// concurrent truncation changes them. It returns a gap between segment
// files that stays.
func (sc *scanner) listAndScan() (*DamageError, error) {
	dir := sc.dir
	var changed error
	var prev []segment
	for attempt := 0; attempt <= scanRetries; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Millisecond)
		}
		segs, moving, err := readSegmentDir(dir)
		if err != nil {
			if os.IsNotExist(err) {
				return nil, nil
			}
			return nil, fmt.Errorf("scan journal: %w", err)
		}
		if moving && attempt < scanRetries {
			continue
		}
		if changed != nil && !errors.Is(changed, errGone) && slices.Equal(segs, prev) {
			break // the same gap between the same files: damage, not a truncation
		}
		changed, err = sc.segments(segs)
		if errors.Is(err, ErrStop) {
			return nil, nil
		}
		if err != nil || changed == nil {
			return nil, err
		}
		prev = segs
	}
	if d, ok := changed.(*DamageError); ok {
		return d, nil
	}
	return nil, fmt.Errorf("scan journal: %w", changed)
}

// scanRetries bounds how often a scan lists the directory again.
const scanRetries = 100

// errGone marks a segment removed while it was being scanned.
var errGone = errors.New("segment removed")

// scanner is the state of one scan: the next entry wanted and where a
// damaged region that ran to the end of a segment began.
type scanner struct {
	dir  string
	opts ScanOptions
	last uint64
	fn   func(*Event) error
	next uint64
	open *DamageError // damage at the end of the previous segment, not yet reported
	en   Entry        // the entry Select is asked about
}

// decode decodes record r as ScanOptions.Types, Select and NoDefinition
// ask (nil: skipped).
func (sc *scanner) decode(r record) (*Event, error) {
	return sc.en.decode(r, sc.opts.Types, sc.opts.Select, sc.opts.NoDefinition)
}

// segments scans the segments from the one holding entry next on. It
// returns a non-nil changed when the listing no longer matches the
// directory.
func (sc *scanner) segments(segs []segment) (changed, err error) {
	sc.open = nil
	start := 0
	for i, s := range segs {
		if s.first <= sc.next {
			start = i
		}
	}
	for i := start; i < len(segs) && segs[i].first <= sc.last; i++ {
		if i > start && segs[i].first != sc.next && sc.next <= sc.last && sc.open == nil {
			return &DamageError{Dir: sc.dir, Segment: segs[i].path, Index: sc.next,
				Reason: fmt.Sprintf("segment %s does not follow entry %d", filepath.Base(segs[i].path), sc.next-1)}, nil
		}
		if sc.open != nil {
			if err := sc.damage(sc.open); err != nil {
				return nil, err
			}
			sc.open, sc.next = nil, max(sc.next, segs[i].first)
		}
		err := sc.segment(segs[i], i == len(segs)-1)
		if errors.Is(err, errGone) {
			return err, nil
		}
		if err != nil {
			return nil, err
		}
	}
	if sc.open != nil {
		d := sc.open
		sc.open = nil
		return nil, sc.damage(d)
	}
	return nil, nil
}

// damage reports d to OnDamage, or returns it when there is none.
func (sc *scanner) damage(d *DamageError) error {
	if sc.opts.OnDamage == nil {
		return d
	}
	return sc.opts.OnDamage(d)
}

func (sc *scanner) segment(s segment, tail bool) error {
	buf, release, err := readSegment(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s", errGone, filepath.Base(s.path))
	}
	if err != nil {
		return fmt.Errorf("read segment %s: %w", filepath.Base(s.path), err)
	}
	defer release() // decode copies what it keeps
	return walkSegment(buf, s.first, func(r record) error {
		if r.seq > sc.last {
			return errSegDone
		}
		if r.seq < sc.next {
			return nil
		}
		e, err := sc.decode(r)
		if err != nil {
			return fmt.Errorf("segment %s: %w", filepath.Base(s.path), err)
		}
		if e != nil {
			if err := sc.fn(e); err != nil {
				return err
			}
		}
		sc.next = r.seq + 1
		return nil
	}, func(g region) error {
		if g.idx > sc.last {
			return errSegDone
		}
		d := &DamageError{Dir: sc.dir, Segment: s.path, Offset: int64(g.off), Index: g.idx, Reason: g.reason}
		switch {
		case g.next != 0:
			if g.idx < sc.next && g.next <= sc.next {
				return nil // entries before From: not wanted, not reported
			}
			sc.next = max(sc.next, g.next)
			return sc.damage(d)
		case tail && g.torn && !sc.opts.Strict:
			return errSegDone // the end of the journal (the writer may be mid-record)
		}
		sc.open = d
		return nil
	})
}
