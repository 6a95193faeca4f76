package workflow

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// Overlap policies (`overlap:`): what the daemon does when the schedule
// fires while the previous run of the workflow still runs.
const (
	OverlapSkip  = "skip"  // the fire is skipped (and journaled); the default
	OverlapQueue = "queue" // the fire waits for the running run
	OverlapAllow = "allow" // the fire starts a run alongside
)

// Catch-up policies (`catchup.policy:`): which fires missed while the
// daemon was not running are run when it comes back.
const (
	CatchupNone   = "none"   // none; the default
	CatchupLatest = "latest" // the newest missed fire within the window
	CatchupAll    = "all"    // every missed fire within the window, one at a time
)

// Catchup is the `catchup:` block.
type Catchup struct {
	Policy string        // CatchupNone, CatchupLatest or CatchupAll
	Window time.Duration // how old a missed fire may be and still run; 0 = no bound
}

var (
	overlapPolicies = []string{OverlapSkip, OverlapQueue, OverlapAllow}
	catchupPolicies = []string{CatchupNone, CatchupLatest, CatchupAll}
	catchupKeys     = []string{"policy", "window"}
)

// overlap decodes `overlap:`.
func (d *decoder) overlap(w *Workflow, n *yaml.Node) {
	if s, ok := d.text(n, "overlap"); ok {
		w.Overlap, _ = d.oneOf(n, "overlap", s, "overlap policy", overlapPolicies,
			"skip (the default) drops the fire, queue runs it after the running run, allow runs it alongside")
	}
}

// catchup decodes the `catchup:` block.
func (d *decoder) catchup(w *Workflow, n *yaml.Node) {
	f, ok := d.mapping(n, "catchup", catchupKeys, nil)
	if !ok {
		return
	}
	if e, ok := f.get("policy"); ok {
		if s, ok := d.text(e.val, "catchup.policy"); ok {
			w.Catchup.Policy, _ = d.oneOf(e.val, "catchup.policy", s, "catch-up policy", catchupPolicies,
				"none (the default), latest runs the newest missed fire, all runs each missed fire")
		}
	}
	if e, ok := f.get("window"); ok {
		w.Catchup.Window, _ = d.duration(e.val, "catchup.window", true)
	}
}

// oneOf checks that s is one of the values, and reports it otherwise with
// the closest one as a suggestion.
func (d *decoder) oneOf(n *yaml.Node, path, s, what string, values []string, hint string) (string, bool) {
	if isKnown(s, values) {
		return s, true
	}
	d.report(n, path, Problem{Msg: fmt.Sprintf("unknown %s %q", what, s), Suggest: suggest(s, values), Hint: hint})
	return "", false
}
