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

// Decide applies a trigger rule to the outcomes of a task's upstream tasks
// (Airflow's meanings). It is pure: the same outcomes always give the same
// verdict. reason says why, when the verdict is Skip. A task without
// upstream tasks always runs.
func Decide(rule string, ups []Upstream) (v Verdict, reason string) {
	var ok, failed, skipped, open int
	var firstFailed string
	var firstSkipped *Upstream
	for k := range ups {
		u := ups[k]
		switch u.Outcome {
		case OutcomeSuccess:
			ok++
		case OutcomeFailed:
			failed++
			if firstFailed == "" {
				firstFailed = u.Name
			}
		case OutcomeSkipped:
			skipped++
			if firstSkipped == nil {
				firstSkipped = &u
			}
		default:
			open++
		}
	}
	if len(ups) == 0 || rule == workflow.RuleAlways {
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
		if skipped > 0 && firstSkipped.Cause != "" {
			return skip("upstream task %s failed (via %s)", firstSkipped.Cause, firstSkipped.Name)
		}
		if skipped > 0 {
			return skip("upstream task %s was skipped", firstSkipped.Name)
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
