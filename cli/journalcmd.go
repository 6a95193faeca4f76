package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/journal"
	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name:    "journal",
		args:    "verify [WORKFLOW] | salvage WORKFLOW",
		summary: "check a journal for damage, or salvage a damaged one",
		long: `picoflow journal verify [WORKFLOW] reads every record of the journal and
checks it, without locking or writing anything (it works next to running
processes, on a full disk and on a read-only home). It names each damaged
record by file, byte offset and entry, and a torn tail (the unfinished last
write of a crash, repaired automatically by the next command that writes).
Exit 0: no damage; exit 7: damage found.

picoflow journal salvage WORKFLOW rewrites a damaged journal keeping every
entry that verifies. The old files are kept under JOURNAL/damaged/salvage-*/.
Entries are renumbered (the history database is rebuilt from the journal on
its next use). Each run whose events may be missing is marked damaged: it is
never resumed automatically, and picoflow run FILE starts a new run. Events
of a run whose start was lost cannot be replayed and are left out (they stay
in the copy).
Salvage needs the journal to itself: stop the daemon and runs first.`,
		setup: func(fs *pflag.FlagSet) runFunc {
			asJSON := fs.Bool("json", false, "print the report as JSON")
			return func(ctx context.Context, m *Main, g *globals, args []string) error {
				switch {
				case len(args) >= 1 && args[0] == "verify" && len(args) <= 2:
					return m.journalVerify(g, strings.Join(args[1:], ""), *asJSON)
				case len(args) == 2 && args[0] == "salvage":
					return m.journalSalvage(g, args[1], *asJSON)
				}
				return exitf(ExitUsage, "usage: picoflow journal verify [WORKFLOW] | picoflow journal salvage WORKFLOW")
			}
		},
	})
}

// journalsOf returns the journals of a home by workflow name ("" for the
// single journal of an earlier release's home that no writer converted
// yet).
func journalsOf(homeDir string) map[string]string {
	srcs, _ := home(homeDir).journals()
	out := make(map[string]string, len(srcs))
	for _, s := range srcs {
		out[s.Name] = s.Dir
	}
	return out
}

// openJournal is the one way a journal is opened for writing, by the
// commands and by the daemon (daemon.Options.OpenJournal): damage comes
// back with the salvage hint, so that run, gc, upgrade and the daemon say
// the same.
func openJournal(dir, workflow string, opts journal.Options) (*journal.Journal, error) {
	j, err := journal.Open(dir, opts)
	return j, damageHint(err, workflow)
}

// hintedError is journal damage with what to do about it.
type hintedError struct {
	err  error
	hint string
}

func (e *hintedError) Error() string { return e.err.Error() + "\n  " + e.hint }
func (e *hintedError) Unwrap() error { return e.err }

// damageHint adds to journal damage (exit 7: file, offset, entry) the
// hint to verify and salvage the journal of workflow; other errors, and
// damage that has its hint, come back as they are.
func damageHint(err error, workflow string) error {
	var he *hintedError
	if !errors.Is(err, journal.ErrDamaged) || errors.As(err, &he) {
		return err
	}
	wf := workflow
	if wf == "" {
		wf = "WORKFLOW"
	}
	return &hintedError{err: err, hint: fmt.Sprintf("nothing was changed; picoflow journal verify %s lists the damage, picoflow journal salvage %s keeps every entry that verifies", wf, wf)}
}

// journalErr maps a journal error of a command that writes: damage is exit
// 7 naming file, offset and entry with the salvage hint; a held lock exit 5.
func journalErr(err error, workflow string) error {
	if err == nil {
		return nil
	}
	var le *journal.LockedError
	if errors.As(err, &le) {
		return withCode(ExitLocked, err)
	}
	return withCode(ExitInternal, damageHint(err, workflow))
}

// verifyJSON is one journal in journal verify --json.
type verifyJSON struct {
	Workflow string       `json:"workflow"`
	Dir      string       `json:"dir"`
	Clean    bool         `json:"clean"`
	Segments int          `json:"segments"`
	Entries  uint64       `json:"entries"`
	First    uint64       `json:"first"`
	Last     uint64       `json:"last"`
	Damage   []damageJSON `json:"damage"`
	Torn     *damageJSON  `json:"torn_tail"`
}

type damageJSON struct {
	Segment string `json:"segment"`
	Offset  int64  `json:"offset"`
	Entry   uint64 `json:"entry"`
	Bytes   int64  `json:"bytes,omitempty"`
	Reason  string `json:"reason"`
}

func damagesJSON(ds []journal.DamageError) []damageJSON {
	out := []damageJSON{}
	for _, d := range ds {
		out = append(out, damageJSON{Segment: d.Segment, Offset: d.Offset, Entry: d.Index, Reason: d.Reason})
	}
	return out
}

func (m *Main) journalVerify(g *globals, workflow string, asJSON bool) error {
	dirs := journalsOf(g.home)
	if workflow != "" {
		dirs = map[string]string{workflow: journalDir(g.home, workflow)}
	}
	names := make([]string, 0, len(dirs))
	for n := range dirs {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []verifyJSON
	damaged := 0
	for _, n := range names {
		v, err := journal.Verify(dirs[n])
		if err != nil {
			return withCode(ExitInternal, err)
		}
		vj := verifyJSON{Workflow: n, Dir: v.Dir, Clean: len(v.Damage) == 0, Segments: v.Segments, Entries: v.Entries,
			First: v.First, Last: v.Last, Damage: damagesJSON(v.Damage)}
		if t := v.Torn; t != nil {
			vj.Torn = &damageJSON{Segment: t.Segment, Offset: t.Offset, Entry: t.Index, Bytes: t.Bytes, Reason: t.Reason}
		}
		if !vj.Clean {
			damaged++
		}
		out = append(out, vj)
		if !asJSON {
			printVerify(m.Stdout, vj)
		}
	}
	if asJSON {
		if err := writeJSON(m.Stdout, out); err != nil {
			return withCode(ExitInternal, err)
		}
	}
	if damaged > 0 {
		wf := workflow
		if wf == "" {
			wf = "WORKFLOW"
		}
		return exitf(ExitInternal, "%d journal(s) damaged; picoflow journal salvage %s keeps every entry that verifies", damaged, wf)
	}
	return nil
}

func printVerify(w io.Writer, v verifyJSON) {
	state := "ok"
	if !v.Clean {
		state = "DAMAGED"
	}
	fmt.Fprintf(w, "%s: %s: %d entries (%d..%d) in %d segment(s)\n", v.Dir, state, v.Entries, v.First, v.Last, v.Segments)
	for _, d := range v.Damage {
		fmt.Fprintf(w, "  damage: %s, offset %d, entry %d: %s\n", d.Segment, d.Offset, d.Entry, d.Reason)
	}
	if t := v.Torn; t != nil {
		fmt.Fprintf(w, "  torn tail: %s, offset %d, entry %d, %d bytes: %s (the unfinished write of a crash; the next command that writes drops it, keeping a copy)\n",
			t.Segment, t.Offset, t.Entry, t.Bytes, t.Reason)
	}
}

// salvageJSON is journal salvage --json.
type salvageJSON struct {
	Dir        string            `json:"dir"`
	Kept       uint64            `json:"kept"`
	Lost       uint64            `json:"lost"`
	Damage     []damageJSON      `json:"damage"`
	Gaps       []gapJSON         `json:"gaps"`
	Damaged    map[string]string `json:"damaged_runs"`
	LeftOut    map[string]int    `json:"left_out"` // events of runs whose start was lost, per run
	Copies     string            `json:"copies"`
	Renumbered bool              `json:"renumbered"`
}

type gapJSON struct {
	Before uint64 `json:"before"`
	After  uint64 `json:"after"`
}

func (m *Main) journalSalvage(g *globals, workflow string, asJSON bool) error {
	dir := journalDir(g.home, workflow)
	if h := home(g.home); isV1Journal(h.journal()) {
		// An earlier release's single journal (damage stops its upgrade):
		// it holds every workflow; the next writer converts what is kept.
		dir = h.journal()
	}
	orphans := map[string]int{}
	marked := map[string]string{}
	rep, err := journal.Salvage(dir, journal.SalvageOptions{
		Owner: "journal salvage",
		Keep:  engine.SalvageKeep(orphans),
		Finish: func(ndir string, rep *journal.SalvageReport) ([]*journal.Event, error) {
			st, err := engine.Replay(ndir, nil) // DamagedRuns reads no task
			if err != nil {
				return nil, fmt.Errorf("the salvaged journal does not replay: %w", err)
			}
			evs := engine.DamagedRuns(st, rep.Gaps, time.Now())
			for _, e := range evs {
				marked[e.Run] = e.Reason
			}
			return evs, nil
		},
	})
	var le *journal.LockedError
	if errors.As(err, &le) {
		return withCode(ExitLocked, fmt.Errorf("%w; salvage needs the journal to itself: wait for the run of the workflow to end (in a daemon too)", err))
	}
	if err != nil {
		return withCode(ExitInternal, fmt.Errorf("salvage %s: %w (the journal is unchanged unless the message says otherwise)", dir, err))
	}
	out := salvageJSON{Dir: dir, Kept: rep.Kept, Lost: rep.Lost, Damage: damagesJSON(rep.Damage), Gaps: []gapJSON{},
		Damaged: marked, LeftOut: orphans, Renumbered: rep.Renumbered}
	for _, gp := range rep.Gaps {
		out.Gaps = append(out.Gaps, gapJSON{Before: gp.Before, After: gp.After})
	}
	if len(rep.Copies) > 0 {
		out.Copies = filepath.Dir(rep.Copies[0])
	}
	if asJSON {
		return withCode(ExitInternal, writeJSON(m.Stdout, out))
	}
	printSalvage(m.Stdout, out)
	return nil
}

func printSalvage(w io.Writer, s salvageJSON) {
	fmt.Fprintf(w, "salvaged %s: kept %d entries; about %d lost in %d damaged region(s)\n", s.Dir, s.Kept, s.Lost, len(s.Damage))
	for _, d := range s.Damage {
		fmt.Fprintf(w, "  damage: %s, offset %d, entry %d: %s\n", d.Segment, d.Offset, d.Entry, d.Reason)
	}
	fmt.Fprintf(w, "  copy of the old journal: %s\n", s.Copies)
	for _, id := range sortedKeys(s.Damaged) {
		fmt.Fprintf(w, "  run %s marked damaged: %s\n", id, s.Damaged[id])
	}
	for _, id := range sortedKeys(s.LeftOut) {
		fmt.Fprintf(w, "  run %s: its start was lost; its %d surviving event(s) were left out (they stay in the copy)\n", id, s.LeftOut[id])
	}
	if s.Renumbered {
		fmt.Fprintln(w, "  entries were renumbered: the history database is rebuilt from the journal on its next use")
	}
	if len(s.Damaged) > 0 {
		fmt.Fprintln(w, "  damaged runs are never resumed automatically: check what they did; picoflow run FILE starts a new run")
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
