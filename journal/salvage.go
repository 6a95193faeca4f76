package journal

import "errors"

// SalvageOptions tune Salvage.
type SalvageOptions struct {
	// Owner is written into the lock file (see Options.Owner).
	Owner string
	// Keep, when set, is called for every entry that verifies, in order,
	// with its old sequence number; returning false leaves the entry out of
	// the new journal (it stays in the copy under DIR/damaged/). The CLI
	// uses it for events of a run whose run_started was lost, which no
	// reducer can replay.
	Keep func(*Event) bool
}

// Gap is a place in the salvaged journal where entries were lost. Before
// and After are new sequence numbers: Before is the entry kept just before
// the gap (0: the gap is at the start), After the entry kept just after it
// (0: the gap is at the end).
type Gap struct {
	Before, After uint64
	Damage        DamageError // the damaged region that made the gap
}

// SalvageReport says what Salvage kept, dropped and where it put copies.
type SalvageReport struct {
	Dir        string
	Kept       uint64        // entries in the new journal
	Left       uint64        // entries that verified but Keep left out
	Damage     []DamageError // every damaged region found
	Torn       *TornTail     // the torn tail dropped, if any
	Gaps       []Gap         // where entries were lost, in new sequence numbers
	Copies     []string      // copies of the old segment files under DIR/damaged/
	Renumbered bool          // sequence numbers changed: projections keyed on seq must be rebuilt
}

// Salvage rewrites the journal in dir keeping every entry that verifies,
// renumbered so that each entry's sequence number equals its wal index
// again. It takes the journal lock, copies the old segment files to
// DIR/damaged/ first, writes the new journal aside, fsyncs it and renames it
// into place: a crash leaves either the old journal or the new one, and the
// next Open or Salvage finishes or rolls back. The report lists the gaps so
// that the caller can mark runs whose events may be missing.
func Salvage(dir string, opts SalvageOptions) (SalvageReport, error) {
	return SalvageReport{Dir: dir}, errors.New("journal.Salvage: not implemented yet")
}
