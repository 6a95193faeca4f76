package projector

import (
	"database/sql"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/picoflow/picoflow/journal"
)

// Definitions are read from the journal only when they are stored.
//
// A run_started carries its workflow's definition: the YAML as written,
// 7 MB for a 100,000-task workflow, and three copies of it while it is
// decoded (the segment read, encoding/json's unquoting, the string). A scan
// that decoded it with every run_started, then kept it in a batch of
// events until the batch was applied, made the first `status` after a few
// big runs the peak of the process (~40 MB of Go heap, ~64 MiB RSS), and
// every run of the same workflow after the first stores nothing: the
// definition is keyed by its hash. So the projector scans with
// NoDefinition, and folding a run_started whose definition the database
// does not hold yet reads that one entry again, stores its definition at
// once and drops it.

// bigDefinition is the size from which storing a definition first hands
// the memory its reading took back to the system.
const bigDefinition = 1 << 20

// noDefinition is ScanOptions.NoDefinition for every scan of the projector.
func noDefinition(string) bool { return true }

// storeDefinition stores the definition of run_started e unless the
// database has it.
func (a *applier) storeDefinition(e *journal.Event) error {
	if e.DefHash == "" {
		return nil
	}
	var one int
	err := a.definitionKnown.QueryRowContext(a.ctx, e.DefHash).Scan(&one)
	if err == nil {
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	body, err := readDefinition(a.dir, e)
	if err != nil || body == "" {
		return err
	}
	if len(body) >= bigDefinition {
		// Reading it left two more copies of its size behind (the segment,
		// the unquoting) and set the collector's goal to twice all three;
		// the driver and SQLite are about to make two more, in C. Give the
		// garbage back first: a 7 MB definition peaked at ~61 MiB RSS
		// without this, ~39 MiB with it (scripts/scale.sh's history home).
		debug.FreeOSMemory()
	}
	// A statement of its own: the driver's copy of the arguments (C
	// memory, as big as the definition) is freed when it is closed, at
	// once, instead of with the transaction's statements.
	_, err = a.tx.ExecContext(a.ctx, sqlDefinition, e.DefHash, body)
	return err
}

// readDefinition reads the definition of run_started e (delivered without
// it) from entry e.Seq of the journal in dir. The entry is the one just
// applied: when the journal no longer holds it (a gc cut its front
// meanwhile, or it was replaced), the projection is rebuilt.
func readDefinition(dir string, e *journal.Event) (string, error) {
	var got *journal.Event
	// Damage was reported by the scan that delivered e: go on past it.
	opts := journal.ScanOptions{From: e.Seq, OnDamage: func(*journal.DamageError) error { return nil }}
	err := journal.Scan(dir, opts, func(ev *journal.Event) error {
		got = ev
		return journal.ErrStop
	})
	if err != nil {
		return "", fmt.Errorf("read the definition of run %s: %w", e.Run, err)
	}
	if got == nil || got.Seq != e.Seq || got.Type != e.Type || got.Time != e.Time || got.DefHash != e.DefHash {
		return "", fmt.Errorf("%w: entry %d of %s, the start of run %s, is gone", errRewound, e.Seq, dir, e.Run)
	}
	return got.Definition, nil
}
