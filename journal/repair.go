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

// Repair checks every segment of the journal in dir and repairs a torn
// tail: an incomplete last record of the last segment (a cut write, zero
// bytes a power loss left, a frame whose end was never written) that no
// verified record follows. The last segment is copied to dir/damaged/ first,
// then truncated where the torn record starts; the file and the directory
// are fsynced. Damage (a bad record that a verified record follows, or any
// bad record outside the last segment) is never truncated: Repair changes
// nothing and returns a *DamageError naming the first damaged record.
// Repair must only run while holding the journal lock: a live writer's
// half-written record looks exactly like a torn one.
func Repair(dir string) (RepairReport, error) {
	segs, err := listSegments(dir) // under the lock: nothing moves them
	if os.IsNotExist(err) {
		return RepairReport{}, nil
	}
	if err != nil {
		return RepairReport{}, fmt.Errorf("repair journal %s: %w", dir, err)
	}
	rep, _, err := repair(dir, segs, nil)
	return rep, err
}

// repair is Repair of the segments segs of dir, listed by the caller. It
// returns the size of the last segment once repaired, and passes every
// entry to apply (see checkSegments).
func repair(dir string, segs []segment, apply *replayer) (RepairReport, int64, error) {
	var rep RepairReport
	v, size, err := checkSegments(dir, segs, apply)
	if err != nil {
		return rep, 0, err
	}
	rep.LastGood = v.Last
	if err := v.Err(); err != nil {
		return rep, 0, err
	}
	if v.Torn == nil {
		return rep, size, nil
	}
	buf, err := os.ReadFile(v.Torn.Segment)
	if err != nil {
		return rep, 0, fmt.Errorf("read segment %s: %w", filepath.Base(v.Torn.Segment), err)
	}
	rep.LastGood = v.Torn.Index - 1
	rep.Segment, rep.Offset, rep.Dropped = v.Torn.Segment, v.Torn.Offset, v.Torn.Bytes
	rep.Cause = fmt.Sprintf("entry %d: %s", v.Torn.Index, v.Torn.Reason)
	if rep.Copy, err = preserve(dir, v.Torn.Segment, buf); err != nil {
		return rep, 0, err
	}
	if err := truncateFile(v.Torn.Segment, v.Torn.Offset); err != nil {
		return rep, 0, err
	}
	rep.Truncated = true
	return rep, v.Torn.Offset, syncDir(dir)
}

// decodeHeader verifies the envelope of the entry stored at idx without
// decoding the payload. An unknown type is not damage: a newer version may
// have written it, and it must be reported, not cut away.
func decodeHeader(b []byte, idx uint64) (Type, error) {
	t, err := checkHeader(b, idx)
	if err != nil {
		return 0, fmt.Errorf("entry %d: %w", idx, err)
	}
	return t, nil
}

// checkHeader is decodeHeader without the entry number in the error.
func checkHeader(b []byte, idx uint64) (Type, error) {
	t, seq, _, err := verify(b)
	if err != nil {
		return 0, err
	}
	if seq != idx {
		return 0, fmt.Errorf("%w: sequence number %d", ErrCorrupt, seq)
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
