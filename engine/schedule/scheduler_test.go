package schedule

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// step is one event of a scheduler scenario, at a time of 2026-01-01 UTC.
type step struct {
	at   string   // "15:04:05"
	op   string   // tick, end WF, trigger WF, force WF, resumed WF, set (jobs of the step)
	wf   string   //
	jobs []Job    // for set
	want []string // actions: "start WF 15:04:05 TRIGGER", "skip WF 15:04:05 REASON", "queue WF 15:04:05 TRIGGER"
	err  error    // for trigger
}

func day(t testing.TB, hms string) time.Time { return utc(t, "2026-01-01 "+hms) }

func fmtActions(acts []Action) []string {
	var out []string
	for _, a := range acts {
		what := a.Fire.Trigger
		if a.Kind == Skip {
			what = a.Reason
		}
		out = append(out, fmt.Sprintf("%s %s %s %s", a.Kind, a.Fire.Workflow, a.Fire.Time.UTC().Format(time.TimeOnly), what))
	}
	return out
}

func everyMinute(name string, o Overlap) Job {
	return Job{Name: name, Schedule: MustParse("* * * * *", time.UTC), Overlap: o}
}

// A schedulerCase is a scheduler scenario: steps applied in order to a
// scheduler made by New(lastFire), each checked against its wanted actions.
type schedulerCase struct {
	name     string
	lastFire map[string]time.Time
	queueCap int
	steps    []step
}

func TestScheduler(t *testing.T) {
	tests := append(append(overlapCases(), catchupCases(t)...), triggerCases()...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(tc.lastFire)
			if tc.queueCap > 0 {
				s.QueueCap = tc.queueCap
			}
			for i, st := range tc.steps {
				schedulerStep(t, s, i, st)
			}
		})
	}
}

// schedulerStep applies step i to s and checks its error and actions.
func schedulerStep(t *testing.T, s *Scheduler, i int, st step) {
	t.Helper()
	now := day(t, st.at)
	var acts []Action
	var err error
	switch st.op {
	case "set":
		acts = s.Set(st.jobs, now)
	case "tick":
		acts = s.Tick(now)
	case "end":
		acts = s.Ended(st.wf)
	case "resumed":
		s.Resumed(st.wf)
	case "trigger", "force":
		var a Action
		if a, err = s.Trigger(st.wf, now, st.op == "force"); err == nil {
			acts = []Action{a}
		}
	default:
		t.Fatalf("step %d: unknown op %q", i, st.op)
	}
	if !errors.Is(err, st.err) {
		t.Fatalf("step %d (%s %s at %s): error %v, want %v", i, st.op, st.wf, st.at, err, st.err)
	}
	if got := fmtActions(acts); !equal(got, st.want) {
		t.Fatalf("step %d (%s %s at %s):\n got  %q\n want %q", i, st.op, st.wf, st.at, got, st.want)
	}
}

// overlapCases are the scenarios of the overlap policies.
func overlapCases() []schedulerCase {
	return []schedulerCase{
		{name: "skip: a fire due while running is skipped", steps: []step{
			{at: "00:00:30", op: "set", jobs: []Job{everyMinute("a", OverlapSkip)}},
			{at: "00:00:59", op: "tick"},
			{at: "00:01:00", op: "tick", want: []string{"start a 00:01:00 schedule"}},
			{at: "00:02:00", op: "tick", want: []string{"skip a 00:02:00 overlap"}},
			{at: "00:02:30", op: "end", wf: "a"},
			{at: "00:03:00", op: "tick", want: []string{"start a 00:03:00 schedule"}},
		}},
		{name: "queue: fires wait and run in order", steps: []step{
			{at: "00:00:30", op: "set", jobs: []Job{everyMinute("a", OverlapQueue)}},
			{at: "00:01:00", op: "tick", want: []string{"start a 00:01:00 schedule"}},
			{at: "00:02:00", op: "tick", want: []string{"queue a 00:02:00 schedule"}},
			{at: "00:03:00", op: "tick", want: []string{"queue a 00:03:00 schedule"}},
			{at: "00:03:10", op: "end", wf: "a", want: []string{"start a 00:02:00 schedule"}},
			{at: "00:03:20", op: "end", wf: "a", want: []string{"start a 00:03:00 schedule"}},
			{at: "00:03:30", op: "end", wf: "a"},
			{at: "00:04:00", op: "tick", want: []string{"start a 00:04:00 schedule"}},
		}},
		{name: "queue: a full queue skips", queueCap: 1, steps: []step{
			{at: "00:00:30", op: "set", jobs: []Job{everyMinute("a", OverlapQueue)}},
			{at: "00:01:00", op: "tick", want: []string{"start a 00:01:00 schedule"}},
			{at: "00:02:00", op: "tick", want: []string{"queue a 00:02:00 schedule"}},
			{at: "00:03:00", op: "tick", want: []string{"skip a 00:03:00 queue_full"}},
		}},
		{name: "allow: runs overlap", steps: []step{
			{at: "00:00:30", op: "set", jobs: []Job{everyMinute("a", OverlapAllow)}},
			{at: "00:01:00", op: "tick", want: []string{"start a 00:01:00 schedule"}},
			{at: "00:02:00", op: "tick", want: []string{"start a 00:02:00 schedule"}},
		}},
		{name: "workflows are independent", steps: []step{
			{at: "00:00:30", op: "set", jobs: []Job{everyMinute("a", OverlapSkip), everyMinute("b", OverlapSkip),
				{Name: "c", Schedule: MustParse("*/2 * * * *", time.UTC)}}},
			{at: "00:01:00", op: "tick", want: []string{"start a 00:01:00 schedule", "start b 00:01:00 schedule"}},
			{at: "00:01:30", op: "end", wf: "b"},
			{at: "00:02:00", op: "tick", want: []string{"skip a 00:02:00 overlap", "start b 00:02:00 schedule", "start c 00:02:00 schedule"}},
		}},
	}
}

// catchupCases are the scenarios of missed fires: catch-up policies and
// late wake-ups.
func catchupCases(t testing.TB) []schedulerCase {
	return []schedulerCase{
		{name: "catch-up all runs missed fires one at a time", lastFire: map[string]time.Time{"a": utc(t, "2026-01-01 00:00:00")}, steps: []step{
			{at: "00:03:30", op: "set", jobs: []Job{{Name: "a", Schedule: MustParse("* * * * *", time.UTC), Catchup: Catchup{CatchupAll, time.Hour}}},
				want: []string{"start a 00:01:00 catchup", "queue a 00:02:00 catchup", "queue a 00:03:00 catchup"}},
			{at: "00:04:00", op: "tick", want: []string{"skip a 00:04:00 overlap"}},
			{at: "00:04:10", op: "end", wf: "a", want: []string{"start a 00:02:00 catchup"}},
			{at: "00:04:20", op: "end", wf: "a", want: []string{"start a 00:03:00 catchup"}},
			{at: "00:04:30", op: "end", wf: "a"},
			{at: "00:05:00", op: "tick", want: []string{"start a 00:05:00 schedule"}},
		}},
		{name: "catch-up latest", lastFire: map[string]time.Time{"a": utc(t, "2026-01-01 00:00:00")}, steps: []step{
			{at: "00:03:30", op: "set", jobs: []Job{{Name: "a", Schedule: MustParse("* * * * *", time.UTC), Catchup: Catchup{CatchupLatest, time.Hour}}},
				want: []string{"start a 00:03:00 catchup"}},
		}},
		{name: "catch-up none journals one skip", lastFire: map[string]time.Time{"a": utc(t, "2026-01-01 00:00:00")}, steps: []step{
			{at: "00:03:30", op: "set", jobs: []Job{everyMinute("a", OverlapSkip)}, want: []string{"skip a 00:03:00 missed"}},
			{at: "00:04:00", op: "tick", want: []string{"start a 00:04:00 schedule"}},
		}},
		{name: "catch-up latest, outside the window", lastFire: map[string]time.Time{"a": utc(t, "2026-01-01 00:00:00")}, steps: []step{
			{at: "00:03:30", op: "set", jobs: []Job{{Name: "a", Schedule: MustParse("* * * * *", time.UTC), Catchup: Catchup{CatchupLatest, 10 * time.Second}}},
				want: []string{"skip a 00:03:00 missed"}},
		}},
		{name: "a late wake-up is a miss for the catch-up policy", steps: []step{
			{at: "00:00:30", op: "set", jobs: []Job{{Name: "a", Schedule: MustParse("* * * * *", time.UTC), Catchup: Catchup{CatchupLatest, time.Hour}}}},
			{at: "00:05:00", op: "tick", want: []string{"start a 00:03:00 catchup", "skip a 00:04:00 overlap", "skip a 00:05:00 overlap"}},
		}},
		{name: "a slightly late wake-up fires normally", steps: []step{
			{at: "00:00:30", op: "set", jobs: []Job{everyMinute("a", OverlapAllow)}},
			{at: "00:01:50", op: "tick", want: []string{"start a 00:01:00 schedule"}},
			{at: "00:03:00", op: "tick", want: []string{"start a 00:02:00 schedule", "start a 00:03:00 schedule"}},
			{at: "00:06:30", op: "tick", want: []string{"skip a 00:05:00 missed", "start a 00:06:00 schedule"}},
		}},
	}
}

// triggerCases are the scenarios of manual triggers, resumed runs and
// reloads.
func triggerCases() []schedulerCase {
	return []schedulerCase{
		{name: "manual trigger", steps: []step{
			{at: "00:00:30", op: "set", jobs: []Job{everyMinute("a", OverlapSkip), {Name: "b"}}},
			{at: "00:00:40", op: "trigger", wf: "b", want: []string{"start b 00:00:40 manual"}},
			{at: "00:00:41", op: "trigger", wf: "b", err: ErrBusy},
			{at: "00:00:42", op: "force", wf: "b", want: []string{"start b 00:00:42 manual"}},
			{at: "00:00:43", op: "trigger", wf: "nope", err: ErrUnknown},
			{at: "00:00:50", op: "trigger", wf: "a", want: []string{"start a 00:00:50 manual"}},
			{at: "00:01:00", op: "tick", want: []string{"skip a 00:01:00 overlap"}},
		}},
		{name: "a resumed run counts as running", steps: []step{
			{at: "00:00:10", op: "resumed", wf: "a"},
			{at: "00:00:30", op: "set", jobs: []Job{everyMinute("a", OverlapSkip)}},
			{at: "00:01:00", op: "tick", want: []string{"skip a 00:01:00 overlap"}},
			{at: "00:01:30", op: "end", wf: "a"},
			{at: "00:02:00", op: "tick", want: []string{"start a 00:02:00 schedule"}},
		}},
		{name: "reload: changed schedule, removed workflow", steps: []step{
			{at: "00:00:30", op: "set", jobs: []Job{everyMinute("a", OverlapSkip), everyMinute("b", OverlapSkip)}},
			{at: "00:01:00", op: "tick", want: []string{"start a 00:01:00 schedule", "start b 00:01:00 schedule"}},
			{at: "00:01:30", op: "set", jobs: []Job{{Name: "a", Schedule: MustParse("*/5 * * * *", time.UTC)}}},
			{at: "00:02:00", op: "tick"},
			{at: "00:02:10", op: "end", wf: "b"},
			{at: "00:02:20", op: "end", wf: "a"},
			{at: "00:05:00", op: "tick", want: []string{"start a 00:05:00 schedule"}},
			{at: "00:05:10", op: "trigger", wf: "b", err: ErrUnknown},
		}},
	}
}

func TestSchedulerNextWakeAndStatus(t *testing.T) {
	s := New(nil)
	s.Set([]Job{everyMinute("a", OverlapQueue), {Name: "b", Schedule: MustParse("*/10 * * * *", time.UTC)}, {Name: "c"}}, day(t, "00:00:30"))
	if got := s.NextWake(); !got.Equal(day(t, "00:01:00")) {
		t.Errorf("NextWake = %s", got)
	}
	s.Tick(day(t, "00:01:00"))
	s.Tick(day(t, "00:02:00"))
	if s.Queued() != 1 {
		t.Errorf("Queued = %d, want 1", s.Queued())
	}
	st := s.Status()
	if len(st) != 3 || st[0].Name != "a" || st[0].Running != 1 || st[0].Queued != 1 || !st[1].Next.Equal(day(t, "00:10:00")) || !st[2].Next.IsZero() {
		t.Errorf("Status = %+v", st)
	}
}

func TestParsePolicies(t *testing.T) {
	for in, want := range map[string]Overlap{"": OverlapSkip, "skip": OverlapSkip, "queue": OverlapQueue, "allow": OverlapAllow} {
		if got, err := ParseOverlap(in); err != nil || got != want {
			t.Errorf("ParseOverlap(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseOverlap("never"); err == nil {
		t.Error("ParseOverlap(never) = nil error")
	}
	for in, want := range map[string]CatchupPolicy{"": CatchupNone, "none": CatchupNone, "latest": CatchupLatest, "all": CatchupAll} {
		if got, err := ParseCatchupPolicy(in); err != nil || got != want || (in != "" && got.String() != in) {
			t.Errorf("ParseCatchupPolicy(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseCatchupPolicy("some"); err == nil {
		t.Error("ParseCatchupPolicy(some) = nil error")
	}
}
