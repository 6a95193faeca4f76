package journal

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unicode/utf8"
)

// A run_started event carries the whole definition: 7–10 MB for a
// 100,000-task workflow. json.Encoder builds an entry in a buffer of its
// own that grows by doubling (up to twice the definition while it grows)
// before the entry is copied out of it, and the journal copies the entry
// twice more (the wal's batch, the wal's segment): the encoder's buffer was
// a big DAG's peak. newBigEntry writes the same bytes straight into one
// buffer of the exact size: the event's other fields through json.Marshal,
// the definition escaped piece by piece by json.Marshal too, so that the
// bytes are those json.Marshal gives for the whole event (TestBigEntry).

// bigDefinition is the definition length from which newEntry splices the
// definition in instead of encoding it with the rest.
const bigDefinition = 256 << 10

// definitionChunk is how much of the definition one json.Marshal escapes.
const definitionChunk = 64 << 10

// defPlaceholder stands for the definition while the other fields are
// encoded; json.Marshal writes it as `"\u0000"`. Only a key is a quoted
// string followed by a colon without a backslash before its quotes, so the
// first match of defKey is the definition's.
const (
	defPlaceholder = "\x00"
	defKey         = `"definition":"\u0000"`
)

// newBigEntry is newEntry for an event with a big definition.
func newBigEntry(e *Event) ([]byte, error) {
	c := *e
	c.Definition = defPlaceholder
	head, err := json.Marshal(&c)
	if err != nil {
		return nil, err
	}
	at := bytes.Index(head, []byte(defKey))
	if at < 0 {
		return nil, fmt.Errorf("encode definition: no %s in the encoded event", defKey)
	}
	at += len(`"definition":`)
	rest := head[at+len(`"\u0000"`):]
	n := 2 // the quotes
	if err := escapeString(e.Definition, func(q []byte) { n += len(q) }); err != nil {
		return nil, err
	}
	b := make([]byte, headerSize, headerSize+at+n+len(rest))
	b = append(b, head[:at]...)
	b = append(b, '"')
	if err := escapeString(e.Definition, func(q []byte) { b = append(b, q...) }); err != nil {
		return nil, err
	}
	b = append(b, '"')
	return append(b, rest...), nil
}

// escapeString calls fn with the JSON escaping of s, without its quotes,
// piece by piece, as json.Marshal writes it: each piece is the encoding of
// a part of s that ends before a rune's first byte (a rune is never split;
// an invalid byte escapes alone either way), by one json.Encoder into one
// buffer, so that escaping megabytes makes no garbage (fn must not keep
// the piece).
func escapeString(s string, fn func([]byte)) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf) // escapes HTML as json.Marshal does
	for len(s) > 0 {
		k := min(len(s), definitionChunk)
		for k < len(s) && !utf8.RuneStart(s[k]) {
			k++
		}
		buf.Reset()
		if err := enc.Encode(s[:k]); err != nil {
			return err
		}
		q := buf.Bytes() // "...", then Encode's newline
		fn(q[1 : len(q)-2])
		s = s[k:]
	}
	return nil
}

// alone returns the entry of a group that is one entry bigger than a
// segment and than bigDefinition (a run_started with a big definition),
// nil otherwise.
func (j *Journal) alone(group []*commit) []byte {
	if len(group) != 1 || len(group[0].entries) != 1 || len(group[0].entries[0]) <= max(j.opts.SegmentSize, bigDefinition) {
		return nil
	}
	return group[0].entries[0]
}

// commitAlone commits c, one entry bigger than a segment, with writeAlone:
// durably, whether c asked for it or not.
func (j *Journal) commitAlone(c *commit) error {
	seq, e, entry := j.last+1, c.events[0], c.entries[0]
	c.entries[0] = nil
	e.Seq = seq
	sealEnvelope(entry, e.Type, seq)
	if err := j.writeAlone(seq, entry); err != nil {
		return err
	}
	j.fsyncs.Add(2) // the two segment files (the wal's Close and the directory are counted)
	j.entries.Add(1)
	j.bytes.Add(uint64(uvarintLen(uint64(len(entry))) + len(entry)))
	j.last = seq
	j.unsynced = false
	return nil
}

// writeAlone writes the entry of seq, bigger than a segment, durably in a
// segment of its own, without the wal: through the wal, the entry would
// be in three buffers at once (the entry, the wal's batch, the wal's
// segment), 30 MB for a 100,000-task chain. It writes what the wal would
// leave (A1, A2, A3): the wal is closed (it fsyncs its tail), the entry's
// segment file, named by seq, framed uvarint(len) ‖ entry, is written and
// fsynced (it replaces the tail when that is empty: the wal named it seq,
// for the next entry), then an empty segment named seq+1, where the wal
// goes on (A7), and the directory is fsynced; then the wal is opened
// again. A crash before the fsync of the entry's file leaves a torn tail,
// which Open repairs (the append never returned); after it, the entry is
// whole. An error after the entry's file was written (the file system ran
// out of inodes for seq+1, say) takes the entry back (undoAlone): the
// append fails, so the journal must not hold the entry for the next Open
// (a run that said it could not start would be resumed). Called with wmu
// held.
func (j *Journal) writeAlone(seq uint64, entry []byte) error {
	path := filepath.Join(j.dir, segmentName(seq))
	_, statErr := os.Lstat(path)
	wasTail := statErr == nil // the wal's empty tail, named seq
	wrote := false
	j.dropTail() // the entry's segments follow it
	err := j.fsync(j.log.Close)
	j.log = nil
	if err == nil {
		wrote = true
		err = writeSegment(path, entry)
	}
	if err == nil {
		err = writeSegment(filepath.Join(j.dir, segmentName(seq+1)), nil)
	}
	if err == nil {
		err = j.syncDir()
	}
	if err == nil {
		j.dirNames, _, err = dirNames(j.dir)
		j.tailSize = 0 // the empty segment
	}
	if err == nil {
		j.log, err = openWal(j.dir, j.opts)
	}
	if err != nil {
		if j.log != nil {
			j.log.Close()
			j.log = nil
		}
		j.failed = fmt.Errorf("write entry %d in a segment of its own: %w", seq, err)
		if wrote {
			if uerr := j.undoAlone(seq, wasTail); uerr != nil {
				j.failed = fmt.Errorf("%w; taking the entry back failed too, so the journal may hold it (the next Open keeps it whole or repairs it): %v", j.failed, uerr)
			} else {
				j.failed = fmt.Errorf("%w (taken back: the journal does not hold it)", j.failed)
			}
		}
		return j.failed
	}
	return nil
}

// undoAlone takes back the entry writeAlone wrote for seq: its segment is
// emptied again when it was the wal's empty tail (it keeps its durable
// name), removed otherwise, the segment seq+1 is removed, and the
// directory is fsynced. None of it needs an inode or a free block.
func (j *Journal) undoAlone(seq uint64, wasTail bool) error {
	path := filepath.Join(j.dir, segmentName(seq))
	var err error
	if wasTail {
		err = truncateSynced(path)
	} else if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = rerr
	}
	if rerr := os.Remove(filepath.Join(j.dir, segmentName(seq+1))); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	if err == nil {
		err = j.syncDir()
	}
	return err
}

// truncateSynced empties the file at path and fsyncs it.
func truncateSynced(path string) error { return openSync(path, os.O_WRONLY|os.O_TRUNC) }

// writeSegment creates a segment file holding entry (none when nil), as
// the wal frames it, and fsyncs it.
func writeSegment(path string, entry []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if entry != nil {
		var n [binary.MaxVarintLen64]byte
		_, err = f.Write(n[:binary.PutUvarint(n[:], uint64(len(entry)))])
		if err == nil {
			_, err = f.Write(entry)
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
