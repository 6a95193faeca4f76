package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// A segment file holds consecutive wal entries, each framed by tidwall/wal's
// binary format: a uvarint length followed by that many bytes (our envelope).
// Its name is the 20-digit index of its first entry.

type segment struct {
	path  string
	first uint64
}

// listSegments returns the segment files of dir in index order. Leftover
// .START/.END files of an interrupted wal truncation are not segments; the
// wal finishes or rolls those back when it opens.
func listSegments(dir string) ([]segment, error) {
	segs, _, err := readSegmentDir(dir)
	return segs, err
}

// readSegmentDir is listSegments that also reports whether a wal
// truncation is under way (or was cut short): while a .START or .END file
// exists, entries may be on their way from one file to another.
func readSegmentDir(dir string) (segs []segment, moving bool, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, false, err
	}
	if segs, err := salvagedSegments(dir); segs != nil || err != nil {
		return segs, false, err
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".START") || strings.HasSuffix(name, ".END") {
			moving = true
		}
		if e.IsDir() || !isSegmentName(name) {
			continue
		}
		first, _ := strconv.ParseUint(name, 10, 64)
		segs = append(segs, segment{path: filepath.Join(dir, name), first: first})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].first < segs[j].first })
	return segs, moving, nil
}

// isSegmentName reports whether name is that of a wal segment: the 20-digit
// index of its first entry.
func isSegmentName(name string) bool {
	first, err := strconv.ParseUint(name, 10, 64)
	return len(name) == 20 && err == nil && first > 0
}

func segmentName(first uint64) string { return fmt.Sprintf("%020d", first) }

// frame is one wal record found in a segment.
type frame struct {
	off  int    // offset of the record in the file
	end  int    // offset one past its last byte
	data []byte // the envelope
}

// errTorn marks a record whose framing runs past the end of the file or
// cannot be read: the tail of an interrupted write.
var errTorn = errors.New("torn record")

// nextFrame reads the record at off.
func nextFrame(buf []byte, off int) (frame, error) {
	size, n := binary.Uvarint(buf[off:])
	if n <= 0 {
		return frame{}, fmt.Errorf("%w at offset %d: bad length prefix", errTorn, off)
	}
	if size > uint64(len(buf)-off-n) {
		return frame{}, fmt.Errorf("%w at offset %d: length %d runs past the end of the file", errTorn, off, size)
	}
	start := off + n
	return frame{off: off, end: start + int(size), data: buf[start : start+int(size)]}, nil
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// syncDir fsyncs a directory so that created, renamed or removed entries in
// it survive a power loss.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil && !errors.Is(err, fs.ErrInvalid) {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// salvagedSegments returns the segments of a salvaged journal whose switch
// into dir has been committed but not finished (see finishSalvage): each
// file listed in the manifest, still under salvage.ready or already moved.
// It returns nil when no switch is pending.
func salvagedSegments(dir string) ([]segment, error) {
	rdir := filepath.Join(dir, salvageReady)
	names, err := readManifest(rdir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read salvaged journal: %w", err)
	}
	segs := []segment{}
	for _, name := range names {
		if !isSegmentName(name) {
			continue
		}
		first, _ := strconv.ParseUint(name, 10, 64)
		path := filepath.Join(rdir, name)
		if _, err := os.Stat(path); err != nil {
			path = filepath.Join(dir, name)
		}
		segs = append(segs, segment{path: path, first: first})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].first < segs[j].first })
	return segs, nil
}

// listing is one listing of a journal directory, taken with its lock held.
type listing struct {
	names   string    // every name, sorted and joined (as dirNames)
	segs    []segment // the segments, in index order
	moving  bool      // a wal truncation was cut short (a .START or .END file)
	salvage bool      // a salvage to finish or roll back (salvage.new or salvage.ready)
}

// listJournal lists the journal directory dir once.
func listJournal(dir string) (listing, error) {
	ents, err := os.ReadDir(dir) // sorted: segment names sort in index order
	if err != nil {
		return listing{}, err
	}
	var l listing
	names := make([]string, len(ents))
	for i, e := range ents {
		n := e.Name()
		names[i] = n
		switch {
		case n == salvageNew || n == salvageReady:
			l.salvage = true
		case strings.HasSuffix(n, ".START") || strings.HasSuffix(n, ".END"):
			l.moving = true
		case !e.IsDir() && isSegmentName(n):
			first, _ := strconv.ParseUint(n, 10, 64)
			l.segs = append(l.segs, segment{path: filepath.Join(dir, n), first: first})
		}
	}
	l.names = strings.Join(names, "/")
	return l, nil
}
