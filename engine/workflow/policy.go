package workflow

import (
	"fmt"
	"github.com/picoflow/picoflow/engine/schedule"
	"github.com/picoflow/picoflow/engine/yamlcheck"

	"go.yaml.in/yaml/v3"
)

// The overlap (`overlap:`) and catch-up (`catchup:`) policies are the
// scheduler's own types, schedule.Overlap and schedule.Catchup: one type
// per policy, decoded here and acted on by the daemon.
var (
	overlapPolicies = names(schedule.OverlapSkip, schedule.OverlapQueue, schedule.OverlapAllow)
	catchupPolicies = names(schedule.CatchupNone, schedule.CatchupLatest, schedule.CatchupAll)
	catchupKeys     = []string{"policy", "window"}
)

func names[T fmt.Stringer](values ...T) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = v.String()
	}
	return out
}

// overlap decodes `overlap:`.
func (d *decoder) overlap(w *Workflow, n *yaml.Node) {
	if s, ok := d.Text(n, "overlap"); ok {
		if s, ok := d.oneOf(n, "overlap", s, "overlap policy", overlapPolicies,
			"skip (the default) drops the fire, queue runs it after the running run, allow runs it alongside"); ok {
			w.Overlap, _ = schedule.ParseOverlap(s)
		}
	}
}

// catchup decodes the `catchup:` block.
func (d *decoder) catchup(w *Workflow, n *yaml.Node) {
	f, ok := d.Mapping(n, "catchup", catchupKeys, nil)
	if !ok {
		return
	}
	if e, ok := f.Get("policy"); ok {
		if s, ok := d.Text(e.Val, "catchup.policy"); ok {
			if s, ok := d.oneOf(e.Val, "catchup.policy", s, "catch-up policy", catchupPolicies,
				"none (the default), latest runs the newest missed fire, all runs each missed fire"); ok {
				w.Catchup.Policy, _ = schedule.ParseCatchupPolicy(s)
			}
		}
	}
	if e, ok := f.Get("window"); ok {
		w.Catchup.Window, _ = d.duration(e.Val, "catchup.window", true)
	}
}

// oneOf checks that s is one of the values, and reports it otherwise with
// the closest one as a suggestion.
func (d *decoder) oneOf(n *yaml.Node, path, s, what string, values []string, hint string) (string, bool) {
	if yamlcheck.IsKnown(s, values) {
		return s, true
	}
	d.Report(n, path, Problem{Msg: fmt.Sprintf("unknown %s %q", what, s), Suggest: yamlcheck.Suggest(s, values), Hint: hint})
	return "", false
}
