package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Sync without holding back appends.
//
// tidwall/wal's Sync holds the wal's lock through its fsync, and so did
// Sync the journal's: every append waited for it. A run's loop syncs what
// it wrote without an fsync once per sync window (engine/durable.go), and
// the tasks that ended meanwhile waited a millisecond or more for their
// successors' starts, which need no fsync: ~4 % of the wall time of 1,000
// independent `true` tasks on the bench machine. So Sync fsyncs the tail
// segment through a descriptor of the journal's own, outside both locks:
// fsync(2) makes the file durable, whichever descriptor names it, and it
// covers every write that returned before it began. Appends go on
// meanwhile; what they write is durable with the next Sync or durable
// append.
//
// The descriptor names the tail only while the tail cannot have changed:
// the wal starts a segment only once its tail holds SegmentSize bytes
// (assumption A6: tailSize tells), and every listing that finds the tail
// anew (syncDirIfChanged, after a durable append that filled the tail),
// writeAlone, TruncateFront and a failure drop it (dropTail). Without it, Sync does it all under the
// locks, as before (syncAll: the tail, and the directory when the wal may
// have started a segment), then opens the tail it finds.

// syncOutside makes every entry appended before it durable. Called with
// wmu held; returns with wmu held, after releasing it for the fsync.
func (j *Journal) syncOutside() error {
	if j.tail == nil || j.tailSize >= int64(j.opts.SegmentSize) {
		if err := j.syncAll(); err != nil {
			return j.fail(fmt.Errorf("sync: %w", err))
		}
		j.openTail()
		return nil
	}
	f, last := j.tail, j.last
	j.wmu.Unlock()
	err := j.fsync(f.Sync)
	j.wmu.Lock()
	if errors.Is(err, os.ErrClosed) && j.log != nil { // dropped meanwhile: the tail may have changed
		return j.syncOutside()
	}
	if err != nil {
		if j.log == nil {
			return j.closedErr("sync")
		}
		return j.fail(fmt.Errorf("sync: fsync %s: %w", f.Name(), err))
	}
	if j.last == last {
		j.unsynced = false
	}
	return nil
}

// openTail opens the tail segment for syncOutside, when it cannot change
// before the next listing; on any error there is none, and Sync stays
// under the locks. Called with wmu held, after the names were fsynced.
func (j *Journal) openTail() {
	j.dropTail()
	if j.tailSize >= int64(j.opts.SegmentSize) {
		return
	}
	_, tail, err := dirNames(j.dir)
	if err != nil || tail == "" {
		return
	}
	f, err := os.Open(filepath.Join(j.dir, tail))
	if err != nil {
		return
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != j.tailSize {
		f.Close() // not the tail the wal writes: stay under the locks
		return
	}
	j.tail = f
}

// dropTail closes the tail's descriptor: the tail may change. Called
// with wmu held.
func (j *Journal) dropTail() {
	if j.tail != nil {
		j.tail.Close()
		j.tail = nil
	}
}
