package journal

import (
	"errors"
	"io"
	"os"
	"sync"
)

// segBufs keeps the buffers scans read segments into. A scan reads each
// segment whole (up to SegmentSize bytes) and decodes its entries into
// new Events, which keep nothing of the buffer; a daemon scans for every
// page of a run its web UI serves and for every catch-up of the history,
// and a fresh segment-sized buffer for each was the largest part of its
// heap's growth while serving.
var segBufs sync.Pool // of *[]byte

// maxPooled is the largest buffer the pool keeps: a segment of the
// default size with room to spare. A big definition's segment of its own
// (bigentry.go) can be several MiB; its buffer is left to the collector,
// or the daemon would hold that much for good after one scan of it.
const maxPooled = 2 * DefaultSegmentSize

// putSegBuf hands a buffer back to the pool unless it is too big to keep.
func putSegBuf(bp *[]byte) {
	if cap(*bp) <= maxPooled {
		segBufs.Put(bp)
	}
}

// onSegmentRead, set by tests, is called with the path of every segment
// read to check it or to scan it (not the wal's own reads).
var onSegmentRead func(path string)

// readSegment reads the file at path whole, to its end at the time of
// reading (a writer may be appending), into a pooled buffer. The caller
// hands the buffer back with release once nothing refers to it.
func readSegment(path string) (buf []byte, release func(), err error) {
	if onSegmentRead != nil {
		onSegmentRead(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	bp, _ := segBufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	b := (*bp)[:0]
	if fi, err := f.Stat(); err == nil && int64(cap(b)) < fi.Size()+512 {
		b = make([]byte, 0, fi.Size()+512) // room for what a writer adds meanwhile
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			*bp = b
			putSegBuf(bp)
			return nil, nil, err
		}
	}
	*bp = b
	return b, func() { putSegBuf(bp) }, nil
}
