package workflow

import (
	"fmt"
	"slices"

	"github.com/picoflow/picoflow/engine/yamlcheck"
	"go.yaml.in/yaml/v3"
)

// Trigger rules: when a task runs, given how its upstream tasks ended
// (Airflow's meanings; the engine's reducer is engine.Decide).
const (
	RuleAllSuccess              = "all_success" // the default
	RuleAllDone                 = "all_done"
	RuleAllFailed               = "all_failed"
	RuleOneFailed               = "one_failed"
	RuleOneSuccess              = "one_success"
	RuleNoneFailed              = "none_failed"
	RuleNoneFailedMinOneSuccess = "none_failed_min_one_success"
	RuleAlways                  = "always"
)

// TriggerRules lists every rule, the default first.
var TriggerRules = []string{RuleAllSuccess, RuleAllDone, RuleAllFailed, RuleOneFailed, RuleOneSuccess,
	RuleNoneFailed, RuleNoneFailedMinOneSuccess, RuleAlways}

// Run handler lists: workflow-level task lists that run once the DAG has
// settled, chosen by the run's status; on_exit runs last, always.
const (
	HandlerOnSuccess = "on_success"
	HandlerOnFailure = "on_failure"
	HandlerOnCancel  = "on_cancel"
	HandlerOnExit    = "on_exit"
)

// HandlerLists lists the handler keys in the order they are decoded.
var HandlerLists = []string{HandlerOnSuccess, HandlerOnFailure, HandlerOnCancel, HandlerOnExit}

// IsHandler reports whether t is a run handler rather than a task of the DAG.
func (t *Task) IsHandler() bool { return t.handler != 0 }

// Handler is "" for a task of the DAG, else the run handler list it
// belongs to (HandlerOnSuccess...): it runs after the DAG has settled.
func (t *Task) Handler() string {
	if t.handler == 0 {
		return ""
	}
	return HandlerLists[t.handler-1]
}

// Rule returns the task's trigger rule (handlers.go), RuleAllSuccess when
// it sets none.
func (t *Task) Rule() string { return TriggerRules[t.rule] }

// DAG returns the tasks of the workflow's DAG: Tasks without its run
// handlers, which Load appends after them.
func (w *Workflow) DAG() []*Task {
	for i, t := range w.Tasks {
		if t.IsHandler() {
			return w.Tasks[:i]
		}
	}
	return w.Tasks
}

// triggerRule decodes a task's `trigger_rule`.
func (d *decoder) triggerRule(t *Task, e yamlcheck.Field, path string) bool {
	s, ok := d.Str(e.Val, path)
	if !ok {
		return false
	}
	k := slices.Index(TriggerRules, s)
	if k < 0 {
		p := Problem{Msg: fmt.Sprintf("unknown trigger rule %q", s), Suggest: yamlcheck.Suggest(s, TriggerRules)}
		if p.Suggest == "" {
			p.Hint = "use one of all_success (default), all_done, all_failed, one_failed, one_success, none_failed, none_failed_min_one_success, always"
		}
		d.Report(e.Val, path, p)
		return false
	}
	t.rule = uint8(k)
	return true
}

// handlers decodes the run handler lists (on_success, on_failure,
// on_cancel, on_exit): ordinary task definitions without depends_on or
// trigger_rule, since they run after the whole DAG. They are appended to
// w.Tasks, after the DAG, with Handler set; names are unique across both.
func (d *decoder) handlers(w *Workflow, f yamlcheck.Fields) []taskNode {
	var nodes []taskNode
	for h, key := range HandlerLists {
		e, ok := f.Get(key)
		if !ok {
			continue
		}
		r := yamlcheck.Resolve(e.Val)
		if r == nil || r.Kind != yaml.SequenceNode {
			d.Report(e.Val, key, Problem{Msg: "expected a list of tasks, got " + yamlcheck.Describe(e.Val),
				Hint: `write each handler as a list item starting with "- name:"`})
			continue
		}
		for i, item := range r.Content {
			if !d.Visit(item) {
				return nodes
			}
			path := yamlcheck.Index(key, i)
			t := &Task{handler: uint8(h + 1)}
			tn := d.task(t, item, path)
			tn.list, tn.item = uint8(h+1), int32(i)
			if tn.ndeps > 0 {
				d.reportAt(d.deps[tn.deps].pos, yamlcheck.Join(path, "depends_on"), Problem{
					Msg:  "a run handler cannot have depends_on",
					Hint: "handlers run after every task of the DAG has settled; list them in the order they should start",
				})
				tn.ndeps, d.deps = 0, d.deps[:tn.deps] // its entries are the last ones
			}
			if d.rule != nil {
				d.Errorf(d.rule, yamlcheck.Join(path, "trigger_rule"), "a run handler has no trigger_rule: %s decides when it runs", key)
				t.rule = 0
			}
			w.Tasks = append(w.Tasks, t)
			nodes = append(nodes, tn)
		}
	}
	return nodes
}

// checkRootRule reports a trigger rule that waits for upstream outcomes on
// a task that has no upstream tasks: it would never mean anything. It runs
// right after the task is decoded, while d.rule is the task's.
func (d *decoder) checkRootRule(t *Task, tn *taskNode, i int) {
	if tn.ndeps > 0 || d.rule == nil || t.Rule() == RuleAllSuccess || t.Rule() == RuleAlways {
		return
	}
	d.Report(d.rule, yamlcheck.Join(tn.path(i), "trigger_rule"), Problem{
		Msg:  fmt.Sprintf("trigger rule %s on a task without depends_on", t.Rule()),
		Hint: "a trigger rule decides from the outcomes of the tasks in depends_on; add them, or remove trigger_rule",
	})
}
