package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/picoflow/picoflow/projector"
	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name:    "reindex",
		summary: "rebuild the history database (HOME/picoflow.db) from the journal",
		long: `Drops every table of HOME/picoflow.db and applies the whole journal again,
in one transaction: queries see the old data until the new is complete.
The database is only a projection of the journal, so this loses nothing;
use it after a downgrade ("schema is newer") or if the database is damaged
(a damaged file, or one that is not a database, is replaced).`,
		setup: func(fs *pflag.FlagSet) runFunc {
			return func(ctx context.Context, m *Main, g *globals, args []string) error {
				if len(args) != 0 {
					return exitf(ExitUsage, "reindex takes no arguments")
				}
				return m.reindex(ctx, g)
			}
		},
	})
}

func (m *Main) reindex(ctx context.Context, g *globals) error {
	h := home(g.home)
	start := time.Now()
	db, err := m.reindexDB(h, g, nil)
	if err != nil {
		return err
	}
	n, err := db.RebuildAll(ctx, h.journals)
	if projector.IsCorrupt(err) && ctx.Err() == nil {
		// Damage in a page Open does not read (a table's): dropping the
		// tables meets it. The file is replaced, as a damaged header is.
		db.Close()
		if db, err = m.reindexDB(h, g, err); err != nil {
			return err
		}
		n, err = db.RebuildAll(ctx, h.journals)
	}
	defer db.Close()
	if err != nil {
		if ctx.Err() != nil {
			return exitf(ExitInterrupted, "reindex interrupted; the database is unchanged")
		}
		return withCode(ExitInternal, err)
	}
	ids, err := db.RunIDs(ctx)
	if err != nil {
		return withCode(ExitInternal, err)
	}
	fmt.Fprintf(m.Stdout, "rebuilt %s: %d journal entries, %d runs, in %s\n", h.db(), n, len(ids),
		time.Since(start).Round(time.Millisecond))
	return nil
}

// reindexDB opens HOME/picoflow.db for reindex, replacing the file when it
// is damaged or of a newer schema; damage is an error already met in it
// (nil: none yet).
func (m *Main) reindexDB(h home, g *globals, damage error) (*projector.DB, error) {
	var db *projector.DB
	err := damage
	if err == nil {
		db, err = projector.Open(h.db(), projector.Options{Logger: g.log})
	}
	if projector.IsCorrupt(err) || errors.Is(err, projector.ErrNewerSchema) {
		fmt.Fprintf(m.Stderr, "replacing %s: %v\n", h.db(), err)
		if err := projector.Remove(h.db()); err != nil {
			return nil, withCode(ExitInternal, err)
		}
		db, err = projector.Open(h.db(), projector.Options{Logger: g.log})
	}
	if err != nil {
		return nil, withCode(ExitInternal, err)
	}
	return db, nil
}
