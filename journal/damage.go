package journal

import (
	"errors"
	"fmt"
	"path/filepath"
)

// ErrDamaged is matched (errors.Is) by every *DamageError: a record that
// fails its checks while a valid record follows it, or any bad record in a
// segment that is not the last. Damage is never truncated away; it is
// reported until an operator runs Salvage.
var ErrDamaged = errors.New("journal is damaged")

// DamageError names one damaged region of a journal: the segment file, the
// byte offset of the first bad record and the index of the entry that should
// have been stored there.
type DamageError struct {
	Dir     string // the journal directory
	Segment string // path of the segment file
	Offset  int64  // byte offset of the bad record in Segment
	Index   uint64 // wal index of the first entry that does not verify
	Reason  string // why it was rejected
}

func (e *DamageError) Error() string {
	return fmt.Sprintf("journal %s is damaged: segment %s, offset %d, entry %d: %s",
		e.Dir, filepath.Base(e.Segment), e.Offset, e.Index, e.Reason)
}

// Is makes errors.Is(err, ErrDamaged) true for a *DamageError.
func (e *DamageError) Is(target error) bool { return target == ErrDamaged }
