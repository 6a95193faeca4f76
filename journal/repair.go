package journal

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// RepairReport says what Repair found and did.
type RepairReport struct {
	Segment   string // path of the damaged segment, "" when nothing was wrong
	Offset    int64  // where the file was truncated
	Dropped   int64  // bytes removed
	LastGood  uint64 // index of the last entry kept (0: none)
	Copy      string // where the damaged file was preserved
	Cause     string // why the first dropped record was rejected
	Truncated bool
}

// Repair checks the last segment of the journal in dir record by record and
// truncates it at the first record that is torn or whose envelope does not
// verify. Everything before that point is kept. The damaged file is copied
// to dir/damaged/ first; the truncated file and the directory are fsynced.
// Repair must only run while holding the journal lock: a live writer's
// half-written record looks exactly like a torn one.
func Repair(dir string) (RepairReport, error) {
	var rep RepairReport
	segs, err := listSegments(dir)
	if err != nil || len(segs) == 0 {
		if os.IsNotExist(err) {
			err = nil
		}
		return rep, err
	}
	last := segs[len(segs)-1]
	buf, err := os.ReadFile(last.path)
	if err != nil {
		return rep, fmt.Errorf("read segment %s: %w", filepath.Base(last.path), err)
	}
	off, idx := 0, last.first
	var cause error
	for off < len(buf) {
		f, err := nextFrame(buf, off)
		if err != nil {
			err = fmt.Errorf("entry %d: %w", idx, err)
		} else {
			_, err = decodeHeader(f.data, idx)
		}
		if err != nil {
			cause = err
			break
		}
		off, idx = f.end, idx+1
	}
	rep.LastGood = idx - 1
	if cause == nil {
		return rep, nil
	}
	rep.Segment, rep.Offset, rep.Dropped, rep.Cause = last.path, int64(off), int64(len(buf)-off), cause.Error()
	if rep.Copy, err = preserve(dir, last.path, buf); err != nil {
		return rep, err
	}
	if err := truncateFile(last.path, int64(off)); err != nil {
		return rep, err
	}
	rep.Truncated = true
	return rep, syncDir(dir)
}

// decodeHeader verifies the envelope of the entry stored at idx without
// decoding the payload. An unknown type is not damage: a newer version may
// have written it, and it must be reported, not cut away.
func decodeHeader(b []byte, idx uint64) (Type, error) {
	t, seq, _, err := verify(b)
	if err != nil {
		return 0, fmt.Errorf("entry %d: %w", idx, err)
	}
	if seq != idx {
		return 0, fmt.Errorf("entry %d: %w: sequence number %d", idx, ErrCorrupt, seq)
	}
	return t, nil
}

// preserve writes a copy of a damaged segment under dir/damaged/.
func preserve(dir, path string, buf []byte) (string, error) {
	ddir := filepath.Join(dir, "damaged")
	if err := os.MkdirAll(ddir, 0o750); err != nil {
		return "", fmt.Errorf("preserve damaged segment: %w", err)
	}
	dst := filepath.Join(ddir, fmt.Sprintf("%s.%d", filepath.Base(path), time.Now().UnixNano()))
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return "", fmt.Errorf("preserve damaged segment: %w", err)
	}
	_, err = f.Write(buf)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("preserve damaged segment: %w", err)
	}
	if err := syncDir(ddir); err != nil {
		return "", err
	}
	return dst, syncDir(dir)
}

func truncateFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("truncate %s: %w", filepath.Base(path), err)
	}
	err = f.Truncate(size)
	if err == nil {
		_, err = f.Seek(0, io.SeekEnd)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("truncate %s: %w", filepath.Base(path), err)
	}
	return nil
}
