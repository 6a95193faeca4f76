package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ScanOptions tune Scan.
type ScanOptions struct {
	// From is the first sequence number wanted (0 or 1: from the start).
	From uint64
	// Strict makes a torn or damaged tail an error instead of the end of
	// the journal. Readers of a live journal leave it off: the writer may
	// be in the middle of a record.
	Strict bool
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
	segs, err := listSegments(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return fmt.Errorf("scan journal: %w", err)
	}
	start := 0
	for i, s := range segs {
		if s.first <= opts.From {
			start = i
		}
	}
	for i := start; i < len(segs); i++ {
		last := i == len(segs)-1
		err := scanSegment(segs[i], opts.From, last && !opts.Strict, fn)
		if errors.Is(err, ErrStop) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func scanSegment(s segment, from uint64, tolerateTail bool, fn func(*Event) error) error {
	buf, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // removed by a concurrent TruncateFront
	}
	if err != nil {
		return fmt.Errorf("read segment %s: %w", filepath.Base(s.path), err)
	}
	idx := s.first
	for off := 0; off < len(buf); idx++ {
		f, err := nextFrame(buf, off)
		if err != nil {
			if tolerateTail {
				return nil
			}
			return fmt.Errorf("segment %s: entry %d: %w", filepath.Base(s.path), idx, err)
		}
		off = f.end
		if idx < from {
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
	}
	return nil
}
