package journal

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
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
}

// ErrStop may be returned by a Scan callback to end the scan early.
var ErrStop = errors.New("stop scan")

// Scan reads the journal in dir without opening it for writing, without
// locking it and without changing any file: it is what readers in other
// processes, `picoflow replay --journal` and the projector use. Entries are
// verified; fn is called for each in order. A record that cannot be read at
// the end of the last segment ends the scan (see ScanOptions.Strict); damage
// anywhere else is an error naming the entry index.
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
	next := max(opts.From, 1) // the next entry wanted
	var changed error
	var prev []segment
	for attempt := 0; attempt <= scanRetries; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Millisecond)
		}
		segs, moving, err := readSegmentDir(dir)
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return fmt.Errorf("scan journal: %w", err)
		}
		if moving && attempt < scanRetries {
			continue
		}
		if changed != nil && !errors.Is(changed, errGone) && slices.Equal(segs, prev) {
			break // the same gap between the same files: damage, not a truncation
		}
		changed, err = scanSegments(segs, &next, last, opts.Strict, fn)
		if errors.Is(err, ErrStop) {
			return nil
		}
		if err != nil || changed == nil {
			return err
		}
		prev = segs
	}
	return fmt.Errorf("scan journal: %w", changed)
}

// scanRetries bounds how often a scan lists the directory again.
const scanRetries = 100

// errGone marks a segment removed while it was being scanned.
var errGone = errors.New("segment removed")

// scanSegments scans the segments from the one holding entry *next on,
// advancing *next past each entry passed to fn. It returns a non-nil
// changed when the listing no longer matches the directory.
func scanSegments(segs []segment, next *uint64, last uint64, strict bool, fn func(*Event) error) (changed, err error) {
	start := 0
	for i, s := range segs {
		if s.first <= *next {
			start = i
		}
	}
	for i := start; i < len(segs) && segs[i].first <= last; i++ {
		if i > start && segs[i].first != *next && *next <= last {
			return fmt.Errorf("segment %s does not follow entry %d", filepath.Base(segs[i].path), *next-1), nil
		}
		tail := i == len(segs)-1
		err := scanSegment(segs[i], next, last, tail && !strict, fn)
		if errors.Is(err, errGone) {
			return err, nil
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func scanSegment(s segment, next *uint64, last uint64, tolerateTail bool, fn func(*Event) error) error {
	buf, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s", errGone, filepath.Base(s.path))
	}
	if err != nil {
		return fmt.Errorf("read segment %s: %w", filepath.Base(s.path), err)
	}
	idx := s.first
	for off := 0; off < len(buf) && idx <= last; idx++ {
		f, err := nextFrame(buf, off)
		if err != nil {
			if tolerateTail {
				return nil
			}
			return fmt.Errorf("segment %s: entry %d: %w", filepath.Base(s.path), idx, err)
		}
		off = f.end
		if idx < *next {
			continue
		}
		e, err := decode(f.data, idx)
		if err != nil {
			if tolerateTail && errors.Is(err, ErrCorrupt) {
				return nil
			}
			return fmt.Errorf("segment %s: %w", filepath.Base(s.path), err)
		}
		if err := fn(e); err != nil {
			return err
		}
		*next = idx + 1
	}
	return nil
}
