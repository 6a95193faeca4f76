package engine

import (
	"fmt"

	"github.com/picoflow/picoflow/engine/workflow"
)

// Outcome is how an upstream task counts for a trigger rule.
type Outcome uint8

const (
	OutcomeNotDone Outcome = iota // pending, running, retrying or in doubt
	// OutcomeSuccess: succeeded, or failed/timed out with continue_on_failure
	// (that flag means "go on as if it had succeeded").
	OutcomeSuccess
	OutcomeFailed  // failed or timed out for good
	OutcomeSkipped // skipped (or canceled): it never ran
)

// Verdict is what a trigger rule decides for a pending task.
type Verdict uint8

const (
	VerdictWait Verdict = iota // not decided yet: an upstream outcome still counts
	VerdictRun                 // start the task
	VerdictSkip                // the rule can no longer be met: skip the task
)

// Upstream is one dependency of a task as the rules see it.
type Upstream struct {
	Name    string
	Outcome Outcome
	// Cause is, for a skipped upstream, the failed task its skip traces
	// back to ("" when none did): reasons name the root of a cascade.
	Cause string
}

// OutcomeOf maps a task's state to its outcome for the rules of its
// downstream tasks.
func OutcomeOf(s TaskStatus, continueOnFailure bool) Outcome {
	switch s {
	case Success:
		return OutcomeSuccess
	case Failed, TimedOut:
		if continueOnFailure {
			return OutcomeSuccess
		}
		return OutcomeFailed
	case Skipped, Canceled:
		return OutcomeSkipped
	}
	return OutcomeNotDone
}

// Tally counts the outcomes of a task's upstream tasks: what its trigger
// rule decides from. The run loop keeps one per task and updates it as
// each upstream task ends, so a decision costs O(1) whatever the fan-in.
// It is 24 bytes: the names its reasons give are kept apart, once an
// upstream task failed or was skipped.
type Tally struct {
	OK, Failed, Skipped, Open int32
	names                     *tallyNames // nil until an upstream failed or was skipped
}

type tallyNames struct {
	failed                string // the first upstream counted as failed
	skipped, skippedCause string // the first counted as skipped, and its Cause
}

// FailedName is the first upstream task counted as failed ("" if none).
func (t *Tally) FailedName() string {
	if t.names == nil {
		return ""
	}
	return t.names.failed
}

// SkippedName is the first upstream task counted as skipped, and
// SkippedCause the Cause it had ("" if none).
func (t *Tally) SkippedName() (name, cause string) {
	if t.names == nil {
		return "", ""
	}
	return t.names.skipped, t.names.skippedCause
}

// Add counts one upstream task.
func (t *Tally) Add(u Upstream) {
	switch u.Outcome {
	case OutcomeSuccess:
		t.OK++
	case OutcomeFailed:
		t.Failed++
		if t.FailedName() == "" {
			t.setNames(func(n *tallyNames) { n.failed = u.Name })
		}
	case OutcomeSkipped:
		t.Skipped++
		if name, _ := t.SkippedName(); name == "" {
			t.setNames(func(n *tallyNames) { n.skipped, n.skippedCause = u.Name, u.Cause })
		}
	default:
		t.Open++
	}
}

// setNames changes a copy of the names, which copies of t may share.
func (t *Tally) setNames(set func(*tallyNames)) {
	n := new(tallyNames)
	if t.names != nil {
		*n = *t.names
	}
	set(n)
	t.names = n
}

// Ended moves an upstream task counted as not done to its outcome.
func (t *Tally) Ended(u Upstream) {
	t.Open--
	t.Add(u)
}

// Decide applies a trigger rule to the outcomes of a task's upstream tasks
// (Airflow's meanings). It is pure: the same outcomes always give the same
// verdict. reason says why, when the verdict is Skip. A task without
// upstream tasks always runs.
func Decide(rule string, ups []Upstream) (v Verdict, reason string) {
	var t Tally
	for _, u := range ups {
		t.Add(u)
	}
	return DecideTally(rule, t)
}

// DecideTally is Decide over counted outcomes.
func DecideTally(rule string, t Tally) (v Verdict, reason string) {
	ok, failed, skipped, open := t.OK, t.Failed, t.Skipped, t.Open
	firstFailed := t.FailedName()
	skippedName, skippedCause := t.SkippedName()
	if ok+failed+skipped+open == 0 || rule == workflow.RuleAlways {
		return VerdictRun, ""
	}
	skip := func(why string, args ...any) (Verdict, string) {
		return VerdictSkip, fmt.Sprintf("trigger rule %s not met: ", rule) + fmt.Sprintf(why, args...)
	}
	switch rule {
	case workflow.RuleAllDone:
	case workflow.RuleAllFailed:
		if ok > 0 || skipped > 0 {
			return skip("an upstream task did not fail")
		}
	case workflow.RuleOneFailed:
		if failed > 0 {
			return VerdictRun, ""
		}
		if open == 0 {
			return skip("no upstream task failed")
		}
	case workflow.RuleOneSuccess:
		if ok > 0 {
			return VerdictRun, ""
		}
		if open == 0 {
			return skip("no upstream task succeeded")
		}
	case workflow.RuleNoneFailed, workflow.RuleNoneFailedMinOneSuccess:
		if failed > 0 {
			return skip("upstream task %s failed", firstFailed)
		}
		if open == 0 && ok == 0 && rule == workflow.RuleNoneFailedMinOneSuccess {
			return skip("no upstream task succeeded")
		}
	default: // all_success
		if failed > 0 {
			return skip("upstream task %s failed", firstFailed)
		}
		if skipped > 0 && skippedCause != "" {
			return skip("upstream task %s failed (via %s)", skippedCause, skippedName)
		}
		if skipped > 0 {
			return skip("upstream task %s was skipped", skippedName)
		}
	}
	if open > 0 {
		return VerdictWait, ""
	}
	return VerdictRun, ""
}

func (v Verdict) String() string {
	return [...]string{"wait", "run", "skip"}[v]
}
