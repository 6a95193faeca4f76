package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Checking a segment: every record is read in turn; a record that is not
// framed right or whose envelope does not verify at the index it is stored
// at starts a bad region. The region ends where the scan can resynchronise:
// at the next offset where an envelope verifies with a sequence number at
// least the one expected at the start of the region (the length prefix may
// be the damaged byte, so the search looks for envelopes, not frames). A
// region that no verifying envelope follows runs to the end of the segment;
// in the last segment, when it also looks like an unfinished write (see
// looksTorn), it is a torn tail.

// record is one verified record of a segment.
type record struct {
	off, end int    // the frame, length prefix included
	seq      uint64 // its sequence number (== the index it belongs at)
	env      []byte // the envelope
}

// region is a stretch of a segment holding no verified record.
type region struct {
	off, end int    // [off, end)
	idx      uint64 // the entry expected at off
	next     uint64 // sequence number of the record right after it; 0 when none follows in this segment
	reason   string // why the record at off was rejected
	torn     bool   // nothing follows and it looks like an unfinished write
}

// errSegDone ends a walk early without error.
var errSegDone = errors.New("segment done")

// walkSegment checks buf, a segment whose first entry is first, calling rec
// for every verified record and bad for every bad region, in file order.
// Either callback may return errSegDone to stop.
func walkSegment(buf []byte, first uint64, rec func(record) error, bad func(region) error) error {
	err := walk(buf, first, rec, bad)
	if errors.Is(err, errSegDone) {
		return nil
	}
	return err
}

func walk(buf []byte, first uint64, rec func(record) error, bad func(region) error) error {
	off, idx := 0, first
	for off < len(buf) {
		r, err := readRecord(buf, off, idx)
		if err == nil {
			if err := rec(r); err != nil {
				return err
			}
			off, idx = r.end, idx+1
			continue
		}
		g := region{off: off, end: len(buf), idx: idx, reason: err.Error()}
		r, ok := resync(buf, off, idx)
		if !ok {
			g.torn = looksTorn(buf, off)
			return bad(g)
		}
		g.end, g.next = r.off, r.seq
		if err := bad(g); err != nil {
			return err
		}
		if err := rec(r); err != nil {
			return err
		}
		off, idx = r.end, r.seq+1
	}
	return nil
}

// readRecord reads the record at off, which must hold entry idx.
func readRecord(buf []byte, off int, idx uint64) (record, error) {
	f, err := nextFrame(buf, off)
	if err != nil {
		return record{}, err
	}
	if _, err := checkHeader(f.data, idx); err != nil {
		return record{}, err
	}
	return record{off: f.off, end: f.end, seq: idx, env: f.data}, nil
}

// resync finds the first envelope after off that verifies with a sequence
// number of at least idx. The record starts at its length prefix when that
// is intact, else at the envelope (the prefix was the damaged byte).
func resync(buf []byte, off int, idx uint64) (record, bool) {
	for p := off + 1; p+headerSize <= len(buf); p++ {
		if buf[p] != envelopeVersion || buf[p+1] != 0 { // version, reserved flags
			continue
		}
		n := binary.LittleEndian.Uint32(buf[p+12:])
		if uint64(n) > uint64(len(buf)-p-headerSize) {
			continue
		}
		end := p + headerSize + int(n)
		_, seq, _, err := verify(buf[p:end])
		if err != nil || seq < idx {
			continue
		}
		start := p
		prefix := binary.AppendUvarint(nil, uint64(end-p))
		if p-len(prefix) > off && bytes.Equal(buf[p-len(prefix):p], prefix) {
			start = p - len(prefix)
		}
		return record{off: start, end: end, seq: seq, env: buf[p:end]}, true
	}
	return record{}, false
}

// looksTorn reports whether the bad record at off, with nothing valid after
// it, looks like a write that never finished rather than damage: its length
// prefix or its frame is cut off by the end of the file, or it is zero bytes
// (a power loss can leave a file grown over blocks never written), or its
// last byte is zero (the end of the frame was never written: a payload is
// JSON and ends in '}'). A complete record that fails its checks for any
// other reason is damage, even at the end of the journal: it was written
// whole, and may have been fsynced.
func looksTorn(buf []byte, off int) bool {
	size, n := binary.Uvarint(buf[off:])
	switch {
	case n == 0: // the prefix runs to the end of the file
		return true
	case n < 0:
		return false
	case size > uint64(len(buf)-off-n):
		return true
	case size == 0:
		return true
	}
	return buf[off+n+int(size)-1] == 0
}

// checkDir checks every segment of dir. It reads and never writes. While a
// concurrent TruncateFront moves or removes segments, it starts again.
func checkDir(dir string) (VerifyReport, error) {
	for attempt := 0; ; attempt++ {
		segs, moving, err := readSegmentDir(dir)
		if os.IsNotExist(err) {
			return VerifyReport{Dir: dir}, nil
		}
		if err != nil {
			return VerifyReport{Dir: dir}, fmt.Errorf("verify journal %s: %w", dir, err)
		}
		var rep VerifyReport
		if !moving || attempt == scanRetries {
			rep, _, err = checkSegments(dir, segs, nil)
		}
		if (moving || errors.Is(err, errGone)) && attempt < scanRetries {
			time.Sleep(time.Millisecond)
			continue
		}
		return rep, err
	}
}

// checkSegments checks segs, the segments of dir in index order. It
// returns what it found and the size of the last segment. With apply set,
// it decodes every entry that verifies and passes it to apply, in order,
// until the first damage (Open replays a journal while it checks it: one
// read instead of two). A torn tail's records are not entries: apply never
// sees them.
func checkSegments(dir string, segs []segment, apply *replayer) (VerifyReport, int64, error) {
	rep := VerifyReport{Dir: dir}
	rep.Segments = len(segs)
	var open *DamageError // a damaged region that ran to the end of its segment
	var expect uint64     // the entry the next segment should start with
	var size int64
	defer apply.close()
	for i, s := range segs {
		if open != nil {
			rep.Damage = append(rep.Damage, *open)
			open = nil
		} else if i > 0 && s.first != expect {
			rep.Damage = append(rep.Damage, DamageError{Dir: dir, Segment: s.path, Index: expect,
				Reason: fmt.Sprintf("segment %s does not follow entry %d", filepath.Base(s.path), expect-1)})
		}
		expect = s.first
		k, err := apply.segment(i)
		if err == nil && k.buf == nil {
			k.buf, k.release, err = readWhole(s.path)
		}
		if err != nil {
			return rep, 0, err
		}
		buf := k.buf
		size = int64(len(buf))
		last := i == len(segs)-1
		rec := func(r record) error {
			if rep.First == 0 {
				rep.First = r.seq
			}
			rep.Entries++
			rep.Last, expect = r.seq, r.seq+1
			if apply == nil || len(rep.Damage) > 0 || open != nil {
				return nil // damage fails Open: an entry after it must not make a replay error of it
			}
			return replayRecord(r, s.path, apply)
		}
		if k.clean {
			err = walkClean(buf, s.first, rec)
		} else {
			err = walkSegment(buf, s.first, rec, func(g region) error {
				d := DamageError{Dir: dir, Segment: s.path, Offset: int64(g.off), Index: g.idx, Reason: g.reason}
				switch {
				case g.next != 0:
					rep.Damage = append(rep.Damage, d)
				case last && g.torn:
					rep.Torn = &TornTail{Segment: s.path, Offset: int64(g.off), Bytes: int64(g.end - g.off),
						Index: g.idx, Reason: g.reason}
				default:
					open = &d
				}
				return nil
			})
		}
		k.release() // decoding copies what it keeps
		if err != nil {
			return rep, 0, err
		}
	}
	if open != nil {
		rep.Damage = append(rep.Damage, *open)
	}
	return rep, size, nil
}

// replayer is what Open replays into (Options.Replay), the runs whose
// definition it does not want (Options.NoDefinition), how much of each
// entry it wants (Options.Select) and its read-ahead for the runs that
// finish (Options.Finished; nil: none).
type replayer struct {
	apply        func(*Event) error
	noDefinition func(run string) bool
	sel          func(*Entry) Decoding
	finished     func(run string)
	ahead        *ahead
	en           Entry
}

// segment returns segment i of the replay as its read-ahead kept it (buf
// nil: to be read).
func (rp *replayer) segment(i int) (aheadSeg, error) {
	if rp == nil || rp.ahead == nil {
		return aheadSeg{}, nil
	}
	return rp.ahead.segment(i)
}

// close hands back what the read-ahead kept and the replay did not read.
func (rp *replayer) close() {
	if rp != nil && rp.ahead != nil {
		rp.ahead.close()
	}
}

// replayRecord decodes a verified record of the segment at path and
// passes it to rp.
func replayRecord(r record, path string, rp *replayer) error {
	en := &rp.en
	err := en.resetRecord(r)
	if err == nil && rp.ahead != nil && en.Type == RunStarted {
		run, ok, err := rp.ahead.finishes(en)
		if err != nil {
			return err
		}
		if ok {
			rp.finished(run)
		}
	}
	var e *Event
	if err == nil {
		e, err = en.decodeAs(rp.sel, rp.noDefinition)
	}
	if err != nil {
		return &replayError{fmt.Errorf("segment %s: %w", filepath.Base(path), err)}
	}
	if e == nil {
		return nil // skipped
	}
	if err := rp.apply(e); err != nil {
		return &replayError{err}
	}
	return nil
}

// replayError is an error of an entry that verifies, in its decoding or
// its replay: not damage.
type replayError struct{ err error }

func (e *replayError) Error() string { return e.err.Error() }
func (e *replayError) Unwrap() error { return e.err }
