package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Open's replay reads ahead (Options.Finished). A fold keeps a run that
// finishes further on as a summary from its run_started on (engine.State),
// so it must know, when it meets a run_started, whether the journal holds
// that run's run_finished: it used to learn it from a first scan of the
// whole journal before Open, a second read of every segment (issue 16).
// Instead, ahead reads each segment before the replay does and notes the
// run of every run_finished that verifies; when the replay meets a
// run_started whose run it has not noted, it reads further, until it
// notes that run's run_finished or reaches the end of the journal. It
// keeps the first aheadKeep segments it read for the replay, which does
// not read them again and does not checksum their records again when their
// walk found no bad region (walkClean). A run of a small workflow rarely
// spans two segments: each segment is read once. A run of 100,000 tasks
// spans ~50: ahead reads them through to its end, and the replay reads
// those it did not keep a second time, as the first scan did. An
// unfinished run reads ahead to the end of the journal once.

// aheadKeep bounds the segments read ahead and kept for the replay: the
// next one, read before the replay of it or, for a run started at the end
// of the segment the replay is in, while the replay is in the one before.
const aheadKeep = 1

// ahead is the read-ahead of one Open's replay over segs.
type ahead struct {
	segs []segment
	next int        // the segment to read next
	kept []aheadSeg // segments read and not yet replayed, in order
	// fin holds the runs whose run_finished ahead read and whose
	// run_started the replay has not met yet: those in the segments read
	// and not replayed, mostly.
	fin map[string]string
	en  Entry
}

// aheadSeg is a segment ahead read and kept.
type aheadSeg struct {
	i       int
	buf     []byte
	release func() // hands buf back (readWhole)
	clean   bool   // its walk met no bad region: every frame verified
}

func newAhead(segs []segment) *ahead {
	a := &ahead{segs: segs, fin: make(map[string]string)}
	a.en.reuse()
	return a
}

// segment reads ahead up to segment i and returns it when it was kept (buf
// nil: the replay reads it).
func (a *ahead) segment(i int) (aheadSeg, error) {
	for a.next <= i {
		if err := a.read(); err != nil {
			return aheadSeg{}, err
		}
	}
	for len(a.kept) > 0 && a.kept[0].i <= i {
		k := a.kept[0]
		a.kept = a.kept[1:]
		if k.i == i {
			return k, nil
		}
		k.release()
	}
	return aheadSeg{}, nil
}

// finishes reports whether the run of en, a run_started the replay meets,
// finishes further on, reading ahead until it knows, and returns the run.
// The run's string is the one noted with its run_finished, which en then
// hands out too: one copy a run.
func (a *ahead) finishes(en *Entry) (string, bool, error) {
	b, peeked := en.runBytes()
	if !peeked {
		b = []byte(en.Run()) // not in the shape json.Marshal writes: decoded
	}
	for len(b) > 0 {
		if run, ok := a.fin[string(b)]; ok {
			delete(a.fin, run)
			if peeked {
				en.setRun(run)
			}
			return run, true, nil
		}
		if a.next == len(a.segs) {
			break
		}
		if err := a.read(); err != nil {
			return "", false, err
		}
	}
	return "", false, nil
}

// close hands back the buffers of the segments kept and not replayed (the
// replay stopped early).
func (a *ahead) close() {
	for _, k := range a.kept {
		k.release()
	}
	a.kept = nil
}

// read reads the next segment and notes the runs of the run_finished
// entries that verify in it.
func (a *ahead) read() error {
	i := a.next
	s := a.segs[i]
	buf, release, err := readWhole(s.path)
	if err != nil {
		return err
	}
	a.next++
	clean := true
	_ = walkSegment(buf, s.first, func(r record) error {
		if recordType(r) == RunFinished && a.en.resetRecord(r) == nil {
			if run := a.en.Run(); run != "" {
				a.fin[run] = run
			}
		}
		return nil
	}, func(region) error {
		clean = false
		return nil
	})
	if len(a.kept) < aheadKeep {
		a.kept = append(a.kept, aheadSeg{i: i, buf: buf, release: release, clean: clean})
	} else {
		release()
	}
	return nil
}

// recordType is the event type of a verified record.
func recordType(r record) Type { return Type(binary.LittleEndian.Uint16(r.env[2:])) }

// readWhole reads the segment at path whole to check it, into a pooled
// buffer (readSegment) handed back with release: a replay of a long
// history reads megabytes, and a new buffer for each segment was most of
// the garbage it made.
func readWhole(path string) (buf []byte, release func(), err error) {
	buf, release, err = readSegment(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w: %s", errGone, filepath.Base(path))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("verify journal: read segment %s: %w", filepath.Base(path), err)
	}
	return buf, release, nil
}

// walkClean is walkSegment of a segment whose every frame a walk before
// verified (ahead.read): it frames the records again, without computing
// their checksums again.
func walkClean(buf []byte, first uint64, rec func(record) error) error {
	for off, idx := 0, first; off < len(buf); idx++ {
		f, err := nextFrame(buf, off)
		if err != nil {
			return err // the walk before framed it: not reached
		}
		if err := rec(record{off: f.off, end: f.end, seq: idx, env: f.data}); err != nil {
			return err
		}
		off = f.end
	}
	return nil
}
