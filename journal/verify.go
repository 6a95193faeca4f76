package journal

// TornTail describes an incomplete last record of the last segment: the
// unfinished write a crash or power loss left. Open repairs it.
type TornTail struct {
	Segment string // path of the last segment
	Offset  int64  // where the incomplete record starts
	Bytes   int64  // bytes from Offset to the end of the file
	Index   uint64 // the entry it would have been
	Reason  string
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Dir      string
	Segments int    // segment files read
	Entries  uint64 // entries that verify
	First    uint64 // index of the first entry (0: empty journal)
	Last     uint64 // index of the last entry that verifies
	Damage   []DamageError
	Torn     *TornTail // nil when the tail is whole
}

// Clean reports whether the journal has no damage and no torn tail.
func (r VerifyReport) Clean() bool { return len(r.Damage) == 0 && r.Torn == nil }

// Verify reads every segment of the journal in dir and checks every record,
// without locking and without writing anything (it works on a read-only or
// full file system). It lists every damaged region and a torn tail, if any.
// The error is for a journal that cannot be read at all, not for damage.
func Verify(dir string) (VerifyReport, error) {
	return checkDir(dir)
}

// Err returns the first damage as a *DamageError, or nil.
func (r VerifyReport) Err() error {
	if len(r.Damage) == 0 {
		return nil
	}
	d := r.Damage[0]
	return &d
}
