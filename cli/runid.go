package cli

import (
	"sort"
	"strings"

	"github.com/picoflow/picoflow/engine"
)

// matchRunID returns the run of ids that id names: the run with that exact
// id, else the only one whose id starts with it. Every command that takes
// a RUN_ID accepts a unique prefix this way.
func matchRunID(id string, ids []string) (string, error) {
	if id == "" {
		return "", exitf(ExitUsage, "empty run id")
	}
	var match []string
	for _, r := range ids {
		if r == id {
			return r, nil
		}
		if strings.HasPrefix(r, id) {
			match = append(match, r)
		}
	}
	sort.Strings(match)
	switch len(match) {
	case 0:
		return "", exitf(ExitNotFound, "no run %s in the journal (picoflow history lists the runs)", id)
	case 1:
		return match[0], nil
	}
	if len(match) > 5 {
		match = append(match[:5], "...")
	}
	return "", exitf(ExitUsage, "run id prefix %q is ambiguous: %s", id, strings.Join(match, ", "))
}

// stateRunIDs lists the runs of a replayed journal.
func stateRunIDs(st *engine.State) []string {
	ids := make([]string, 0, len(st.Runs))
	for id := range st.Runs {
		ids = append(ids, id)
	}
	return ids
}
