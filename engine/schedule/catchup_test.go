package schedule

import (
	"testing"
	"time"
)

func TestComputeMissed(t *testing.T) {
	hourly := MustParse("0 * * * *", time.UTC)
	const last, now = "2026-01-01 00:00:00", "2026-01-01 05:30:00"
	tests := []struct {
		name          string
		sched         *Schedule
		last, now     string
		c             Catchup
		first, latest string   // "" = zero
		run           []string // fires to run
	}{
		{name: "never fired: nothing missed", sched: hourly, last: "", now: now,
			c: Catchup{CatchupAll, 6 * time.Hour}},
		{name: "nothing due yet", sched: hourly, last: last, now: "2026-01-01 00:59:59",
			c: Catchup{CatchupAll, 6 * time.Hour}},
		{name: "none", sched: hourly, last: last, now: now, c: Catchup{CatchupNone, 6 * time.Hour},
			first: "2026-01-01 01:00:00", latest: "2026-01-01 05:00:00"},
		{name: "latest within window", sched: hourly, last: last, now: now, c: Catchup{CatchupLatest, 6 * time.Hour},
			first: "2026-01-01 01:00:00", latest: "2026-01-01 05:00:00", run: []string{"2026-01-01 05:00:00"}},
		{name: "latest outside window", sched: hourly, last: last, now: now, c: Catchup{CatchupLatest, 10 * time.Minute},
			first: "2026-01-01 01:00:00", latest: "2026-01-01 05:00:00"},
		{name: "all within window", sched: hourly, last: last, now: now, c: Catchup{CatchupAll, 6 * time.Hour},
			first: "2026-01-01 01:00:00", latest: "2026-01-01 05:00:00",
			run: []string{"2026-01-01 01:00:00", "2026-01-01 02:00:00", "2026-01-01 03:00:00", "2026-01-01 04:00:00", "2026-01-01 05:00:00"}},
		{name: "all, window cuts the oldest", sched: hourly, last: last, now: now, c: Catchup{CatchupAll, 2 * time.Hour},
			first: "2026-01-01 01:00:00", latest: "2026-01-01 05:00:00",
			run: []string{"2026-01-01 04:00:00", "2026-01-01 05:00:00"}},
		{name: "window edge is inclusive", sched: hourly, last: last, now: now, c: Catchup{CatchupAll, 2*time.Hour + 30*time.Minute},
			first: "2026-01-01 01:00:00", latest: "2026-01-01 05:00:00",
			run: []string{"2026-01-01 03:00:00", "2026-01-01 04:00:00", "2026-01-01 05:00:00"}},
		{name: "no window", sched: hourly, last: "2025-12-31 22:00:00", now: "2026-01-01 00:10:00", c: Catchup{CatchupAll, 0},
			first: "2025-12-31 23:00:00", latest: "2026-01-01 00:00:00",
			run: []string{"2025-12-31 23:00:00", "2026-01-01 00:00:00"}},
		{name: "every keeps its phase", sched: MustParse("@every 10m", time.UTC), last: "2026-01-01 00:03:00", now: "2026-01-01 00:40:00",
			c: Catchup{CatchupAll, time.Hour}, first: "2026-01-01 00:13:00", latest: "2026-01-01 00:33:00",
			run: []string{"2026-01-01 00:13:00", "2026-01-01 00:23:00", "2026-01-01 00:33:00"}},
		{name: "daily across a DST gap", sched: MustParse("CRON_TZ=Europe/Berlin 30 2 * * *", nil),
			last: "2026-03-28 01:30:00", now: "2026-03-30 12:00:00", c: Catchup{CatchupAll, 72 * time.Hour},
			first: "2026-03-29 01:00:00", latest: "2026-03-30 00:30:00",
			run: []string{"2026-03-29 01:00:00", "2026-03-30 00:30:00"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var lastT time.Time
			if tc.last != "" {
				lastT = utc(t, tc.last)
			}
			nowT := utc(t, tc.now)
			m := ComputeMissed(tc.sched, lastT, nowT, nowT, tc.c)
			if got := fmtTime(m.First); got != tc.first {
				t.Errorf("First = %q, want %q", got, tc.first)
			}
			if got := fmtTime(m.Latest); got != tc.latest {
				t.Errorf("Latest = %q, want %q", got, tc.latest)
			}
			if got := fmtTimes(m.Run); !equal(got, tc.run) {
				t.Errorf("Run = %q, want %q", got, tc.run)
			}
		})
	}
}

// TestComputeMissedDense: a per-second schedule missed for a month costs
// about the fires returned, not the 2.6 million that passed.
func TestComputeMissedDense(t *testing.T) {
	s := MustParse("* * * * * *", time.UTC)
	now := utc(t, "2026-02-01 00:00:00")
	start := time.Now()
	m := ComputeMissed(s, utc(t, "2026-01-01 00:00:00"), now, now, Catchup{CatchupAll, 0})
	if len(m.Run) != MaxCatchup || !m.Run[MaxCatchup-1].Equal(now) || !m.Latest.Equal(now) {
		t.Fatalf("Run: %d fires ending %v; Latest %v", len(m.Run), m.Run[len(m.Run)-1], m.Latest)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %s", d)
	}
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.DateTime)
}

func fmtTimes(ts []time.Time) []string {
	var out []string
	for _, t := range ts {
		out = append(out, fmtTime(t))
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
