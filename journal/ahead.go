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
// Instead, before the replay reads segment i, ahead has read segment i and
// each segment after it up to the one where the last run started in
// segment i finishes (or the end of the journal), calling Finished with
// the run of every run_finished that verifies. It keeps the first
// aheadKeep segments it read for the replay, which does not read them
// again and does not checksum their records again when their walk found
// no bad region (walkClean). A run of a small workflow rarely spans two
// segments: each segment is read once. A run of 100,000 tasks spans ~50:
// ahead reads them through to its end, and the replay reads those it did
// not keep a second time, as the first scan did. An unfinished run reads
// ahead to the end of the journal once.

// aheadKeep bounds the segments read ahead and kept for the replay: the
// segment replayed next and the one after it, where a run started at the
// end of the first finishes.
const aheadKeep = 2

// ahead is the read-ahead of one Open's replay over segs.
type ahead struct {
	segs     []segment
	next     int            // the segment to read next
	kept     []aheadSeg     // segments read and not yet replayed, in order
	open     map[string]int // runs started in the segments read and not finished: the segment of their start
	openIn   []int          // per segment, how many of its runs are open
	finished func(run string)
	en       Entry
}

// aheadSeg is a segment ahead read and kept.
type aheadSeg struct {
	i       int
	buf     []byte
	release func() // hands buf back (readWhole)
	clean   bool   // its walk met no bad region: every frame verified
}

func newAhead(segs []segment, finished func(string)) *ahead {
	a := &ahead{segs: segs, open: make(map[string]int), openIn: make([]int, len(segs)), finished: finished}
	a.en.reuse()
	return a
}

// segment reads ahead as far as the replay of segment i needs and returns
// segment i when it was kept (buf nil: the replay reads it).
func (a *ahead) segment(i int) (aheadSeg, error) {
	for a.next <= i || a.next < len(a.segs) && a.openIn[i] > 0 {
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

// close hands back the buffers of the segments kept and not replayed (the
// replay stopped early).
func (a *ahead) close() {
	for _, k := range a.kept {
		k.release()
	}
	a.kept = nil
}

// read reads the next segment and notes the runs that start and finish in
// its records that verify.
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
		a.note(i, r)
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

// note notes the run of record r, of segment i, when it starts or
// finishes one.
func (a *ahead) note(i int, r record) {
	t := Type(binary.LittleEndian.Uint16(r.env[2:]))
	if t != RunStarted && t != RunFinished || a.en.resetRecord(r) != nil {
		return
	}
	run := a.en.Run()
	switch {
	case run == "":
	case t == RunStarted:
		if _, dup := a.open[run]; !dup {
			a.open[run] = i
			a.openIn[i]++
		}
	default:
		if s, ok := a.open[run]; ok {
			delete(a.open, run)
			a.openIn[s]--
		}
		a.finished(run)
	}
}

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
