package engine

import "github.com/picoflow/picoflow/journal"

// A reader reads a journal with scan options: journal.Scan of a directory,
// or the writer's (*journal.Journal).Read.
type reader func(journal.ScanOptions, func(*journal.Event) error) error

// Fold applies a journal to s as read reads it, as if every event were
// decoded whole, but decoding whole only the events whose run has not
// finished or that s.Detail names. A home keeps weeks of finished runs
// (retention), and decoding each of their events, definition included,
// was most of the cost of `picoflow run` (issue 16); a summary keeps none
// of their big fields (journal.Lean).
//
// It reads the journal twice. The first pass decodes only the run_finished
// events, for their runs, and passes over damage without a word (the
// second reports it); what it fails to read is decoded whole. A run whose
// run_finished is appended between the passes is decoded whole: a run is
// read lean only when its run_finished is in the journal, and then its
// summary is the same either way.
func (s *State) Fold(read reader, opts journal.ScanOptions) error {
	finished := make(map[string]bool)
	first := opts
	first.OnDamage = func(*journal.DamageError) error { return nil }
	first.Select = func(en *journal.Entry) journal.Decoding {
		if en.Type == journal.RunFinished {
			if run := en.Run(); run != "" {
				finished[run] = true
			}
		}
		return journal.Skip
	}
	_ = read(first, nil) // a hint: the second pass reports what goes wrong
	if len(finished) > 0 {
		opts.Select = func(en *journal.Entry) journal.Decoding {
			if run := en.Run(); finished[run] && (s.Detail == nil || !s.Detail(run)) {
				return journal.Lean
			}
			return journal.Whole
		}
	}
	return read(opts, s.Apply)
}

// FoldDir folds the journal in dir (journal.Scan, read-only) into s.
func (s *State) FoldDir(dir string, opts journal.ScanOptions) error {
	return s.Fold(func(o journal.ScanOptions, fn func(*journal.Event) error) error {
		return journal.Scan(dir, o, fn)
	}, opts)
}
