package engine

import "github.com/picoflow/picoflow/journal"

// A reader reads a journal with scan options: journal.Scan of a directory,
// or the writer's (*journal.Journal).Read.
type reader func(journal.ScanOptions, func(*journal.Event) error) error

// endTypes are the entries the first scan of a fold decodes.
var endTypes = []journal.Type{journal.RunFinished}

// leanEnd is the Select of the first scan: it reads only the run of each
// run_finished (expectEnds), which Lean decodes as Whole does.
func leanEnd(*journal.Entry) journal.Decoding { return journal.Lean }

// FoldDir folds the journal in dir into s, read-only (journal.Scan with
// opts). A first scan decodes only the run_finished entries (the others
// are verified, not decoded): a run that ends in the journal and that
// Detail does not name is then a summary from its run_started on, so that
// a fold never holds a finished run's tasks and definition, not even while
// it reads them, and its events are decoded lean (journal.Lean: not their
// definition, log, error, tail, outputs): a home keeps weeks of finished
// runs, and decoding them whole was most of the cost of `picoflow run`
// (issue 16). The first scan is best effort: a run it missed (damage, a run
// that ended after it) is decoded whole and becomes a summary at its end
// instead; either way the fold is the one Apply over every event decoded
// whole gives.
func (s *State) FoldDir(dir string, opts journal.ScanOptions) error {
	return s.fold(func(o journal.ScanOptions, fn func(*journal.Event) error) error {
		return journal.Scan(dir, o, fn)
	}, opts)
}

// FoldJournal is FoldDir for a journal this process holds open, read from
// its first entry to its last (journal.Journal.Read).
func (s *State) FoldJournal(j *journal.Journal) error {
	return s.fold(j.Read, journal.ScanOptions{})
}

// OpenOptions returns opts for journal.Open by a writer that folds the
// journal into s while Open checks it (Options.Replay: one read of each
// segment). Open reads ahead of its replay for the runs that finish
// (Options.Finished), which are then summaries from their run_started on,
// as after the first scan of FoldDir, without a read of the journal
// before Open's; the events of a summary are read as a fold reads them
// (Options.Select).
func (s *State) OpenOptions(opts journal.Options) journal.Options {
	opts.Replay, opts.Select = s.Apply, s.decoding
	opts.Finished = func(run string) { s.finishing = run }
	return opts
}

func (s *State) fold(read reader, opts journal.ScanOptions) error {
	first := journal.ScanOptions{From: opts.From, Types: endTypes, Select: leanEnd,
		OnDamage: func(*journal.DamageError) error { return nil }} // the fold reports it
	s.expectEnds(func(fn func(*journal.Event) error) error { return read(first, fn) })
	opts.Select = s.decoding
	return read(opts, s.Apply)
}

// decoding is the journal.ScanOptions.Select of a fold: a summary keeps
// none of the big fields of its events, and nothing of its task events but
// that they are its (State.Apply: the run's LastSeq). A run_started is
// whole unless its run is a summary from its start; a later event of a run
// is as whole as its run, the one its previous event left in s (a task
// event of a summary changes nothing, and a run event reads no big field).
func (s *State) decoding(en *journal.Entry) journal.Decoding {
	if en.Type == journal.RunStarted {
		if s.summaryFromStart(en.Run()) {
			return journal.Lean
		}
		return journal.Whole
	}
	if r := s.run(en.Run()); r == nil || !r.summary {
		return journal.Whole
	}
	switch en.Type {
	case journal.TaskStarted, journal.TaskProcess, journal.TaskFinished, journal.TaskRetrying,
		journal.TaskSkipped, journal.TaskInDoubt, journal.TaskResolved:
		return journal.RunOnly // Apply reads only its run of a summary's task event
	}
	return journal.Lean
}

// summaryFromStart reports whether run, of a run_started, is a summary
// from its run_started on: it ends further on, and Detail does not name it.
func (s *State) summaryFromStart(run string) bool {
	return (s.finishing == run || s.ends[run]) && !s.detailed(run)
}

// expectEnds notes the runs whose run_finished scan delivers.
func (s *State) expectEnds(scan func(func(*journal.Event) error) error) {
	if s.ends == nil {
		s.ends = make(map[string]bool)
	}
	_ = scan(func(e *journal.Event) error { // best effort, see FoldDir
		s.ends[e.Run] = true
		return nil
	})
}
