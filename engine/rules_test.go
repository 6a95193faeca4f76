package engine

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/picoflow/picoflow/engine/workflow"
)

// upstreamCase is one way an upstream task can end, as its state and its
// continue_on_failure flag.
type upstreamCase struct {
	name   string
	status TaskStatus
	cof    bool
}

var upstreamCases = []upstreamCase{
	{"success", Success, false},
	{"failed", Failed, false},
	{"timeout", TimedOut, false},
	{"skipped", Skipped, false},
	{"failed-cof", Failed, true},
}

// TestDecideTruthTable checks every trigger rule against every combination
// of two upstream outcomes. Each grid has one row per outcome of the first
// upstream and one column per outcome of the second, in the order of
// upstreamCases: R runs, S skips. Written by hand from the rules'
// definitions (README, "Trigger rules"), not from the code.
func TestDecideTruthTable(t *testing.T) {
	//             a\b:   success failed timeout skipped failed-cof
	grids := map[string][5]string{
		workflow.RuleAllSuccess:              {"RSSSR", "SSSSS", "SSSSS", "SSSSS", "RSSSR"},
		workflow.RuleAllDone:                 {"RRRRR", "RRRRR", "RRRRR", "RRRRR", "RRRRR"},
		workflow.RuleAllFailed:               {"SSSSS", "SRRSS", "SRRSS", "SSSSS", "SSSSS"},
		workflow.RuleOneFailed:               {"SRRSS", "RRRRR", "RRRRR", "SRRSS", "SRRSS"},
		workflow.RuleOneSuccess:              {"RRRRR", "RSSSR", "RSSSR", "RSSSR", "RRRRR"},
		workflow.RuleNoneFailed:              {"RSSRR", "SSSSS", "SSSSS", "RSSRR", "RSSRR"},
		workflow.RuleNoneFailedMinOneSuccess: {"RSSRR", "SSSSS", "SSSSS", "RSSSR", "RSSRR"},
		workflow.RuleAlways:                  {"RRRRR", "RRRRR", "RRRRR", "RRRRR", "RRRRR"},
	}
	if len(grids) != len(workflow.TriggerRules) {
		t.Fatalf("%d grids for %d rules", len(grids), len(workflow.TriggerRules))
	}
	for _, rule := range workflow.TriggerRules {
		grid, ok := grids[rule]
		if !ok {
			t.Fatalf("no grid for rule %s", rule)
		}
		for i, a := range upstreamCases {
			for j, b := range upstreamCases {
				t.Run(rule+"/"+a.name+"+"+b.name, func(t *testing.T) {
					ups := []Upstream{{Name: "a", Outcome: OutcomeOf(a.status, a.cof)}, {Name: "b", Outcome: OutcomeOf(b.status, b.cof)}}
					v, reason := Decide(rule, ups)
					want := VerdictRun
					if grid[i][j] == 'S' {
						want = VerdictSkip
					}
					if v != want {
						t.Fatalf("verdict %s, want %s", v, want)
					}
					if v == VerdictSkip && !strings.Contains(reason, "trigger rule "+rule+" ") {
						t.Errorf("reason %q does not name the rule", reason)
					}
					if v == VerdictRun && reason != "" {
						t.Errorf("reason %q for a task that runs", reason)
					}
				})
			}
		}
	}
}

// TestDecideWaits checks which rules decide before every upstream task
// has ended: the "one" rules and always do, the others wait.
func TestDecideWaits(t *testing.T) {
	open := Upstream{Name: "slow", Outcome: OutcomeNotDone}
	cases := []struct {
		rule string
		done Outcome
		want Verdict
	}{
		{workflow.RuleAllSuccess, OutcomeSuccess, VerdictWait},
		{workflow.RuleAllSuccess, OutcomeFailed, VerdictSkip},
		{workflow.RuleAllSuccess, OutcomeSkipped, VerdictSkip},
		{workflow.RuleAllDone, OutcomeFailed, VerdictWait},
		{workflow.RuleAllFailed, OutcomeFailed, VerdictWait},
		{workflow.RuleAllFailed, OutcomeSuccess, VerdictSkip},
		{workflow.RuleOneFailed, OutcomeFailed, VerdictRun},
		{workflow.RuleOneFailed, OutcomeSuccess, VerdictWait},
		{workflow.RuleOneSuccess, OutcomeSuccess, VerdictRun},
		{workflow.RuleOneSuccess, OutcomeFailed, VerdictWait},
		{workflow.RuleNoneFailed, OutcomeSuccess, VerdictWait},
		{workflow.RuleNoneFailed, OutcomeFailed, VerdictSkip},
		{workflow.RuleNoneFailedMinOneSuccess, OutcomeSkipped, VerdictWait},
		{workflow.RuleAlways, OutcomeNotDone, VerdictRun},
	}
	for _, c := range cases {
		v, _ := Decide(c.rule, []Upstream{{Name: "done", Outcome: c.done}, open})
		if v != c.want {
			t.Errorf("%s with one upstream %d and one not done: %s, want %s", c.rule, c.done, v, c.want)
		}
	}
	if v, _ := Decide(workflow.RuleOneFailed, nil); v != VerdictRun {
		t.Errorf("a task without upstream tasks: %s, want run", v)
	}
}

// TestTallyIncremental checks that a tally kept up to date as upstream
// tasks end (what the run loop does) decides like a recount of every
// outcome, for every rule, whatever order the tasks end in.
func TestTallyIncremental(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 11))
	outcomes := []Outcome{OutcomeSuccess, OutcomeFailed, OutcomeSkipped}
	for trial := range 2000 {
		n := 1 + rnd.IntN(5)
		final := make([]Upstream, n)
		open := make([]Upstream, n)
		var tl Tally
		for i := range final {
			final[i] = Upstream{Name: string(rune('a' + i)), Outcome: outcomes[rnd.IntN(3)]}
			open[i] = Upstream{Name: final[i].Name, Outcome: OutcomeNotDone}
			tl.Add(open[i])
		}
		for _, k := range rnd.Perm(n) {
			tl.Ended(final[k])
			open[k] = final[k]
			for _, rule := range workflow.TriggerRules {
				v1, _ := DecideTally(rule, tl)
				v2, _ := Decide(rule, open)
				if v1 != v2 {
					t.Fatalf("trial %d, rule %s, outcomes %v: incremental %s, recount %s", trial, rule, open, v1, v2)
				}
			}
		}
	}
}
