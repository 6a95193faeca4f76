package schedule

import (
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load zone %s: %v", name, err)
	}
	return loc
}

// utc parses "2006-01-02 15:04:05" as UTC.
func utc(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.DateTime, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParse(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	tests := []struct {
		name, spec string
		loc        *time.Location
		wantZone   string
		wildcard   bool
		every      time.Duration
		wantErr    bool
	}{
		{name: "five fields", spec: "0 3 * * *", loc: time.UTC, wantZone: "UTC"},
		{name: "six fields", spec: "30 0 3 * * *", loc: time.UTC, wantZone: "UTC"},
		{name: "every second", spec: "* * * * * *", loc: time.UTC, wantZone: "UTC", wildcard: true},
		{name: "minute step is a wildcard", spec: "*/15 3 * * *", loc: time.UTC, wantZone: "UTC", wildcard: true},
		{name: "hour step is not", spec: "0 1-5/2 * * *", loc: time.UTC, wantZone: "UTC"},
		{name: "daily", spec: "@daily", loc: berlin, wantZone: "Europe/Berlin"},
		{name: "hourly is a wildcard", spec: "@hourly", loc: berlin, wantZone: "Europe/Berlin", wildcard: true},
		{name: "every", spec: "@every 10m", wantZone: "Local", wildcard: true, every: 10 * time.Minute},
		{name: "prefix overrides", spec: "CRON_TZ=America/New_York 0 3 * * *", loc: berlin, wantZone: "America/New_York"},
		{name: "TZ prefix", spec: "TZ=Europe/Berlin 0 3 * * *", wantZone: "Europe/Berlin"},
		{name: "bad zone", spec: "CRON_TZ=Mars/Olympus 0 3 * * *", wantErr: true},
		{name: "prefix alone", spec: "CRON_TZ=UTC", wantErr: true},
		{name: "four fields", spec: "0 3 * *", wantErr: true},
		{name: "out of range", spec: "0 25 * * *", wantErr: true},
		{name: "empty", spec: "  ", wantErr: true},
		{name: "bad descriptor", spec: "@fortnightly", wantErr: true},
		// Accepted by the daemon's parser before it was the loader's too
		// (validate rejected them): an empty zone read as UTC, a second
		// prefix that the cron library applied itself.
		{name: "prefix without a zone", spec: "CRON_TZ= 0 3 * * *", wantErr: true},
		{name: "two prefixes", spec: "TZ=UTC TZ=Europe/Berlin 0 3 * * *", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.spec, tc.loc)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Parse(%q) = nil error", tc.spec)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Location().String(); got != tc.wantZone {
				t.Errorf("zone = %s, want %s", got, tc.wantZone)
			}
			if s.Wildcard() != tc.wildcard {
				t.Errorf("Wildcard() = %v, want %v", s.Wildcard(), tc.wildcard)
			}
			if s.Every() != tc.every {
				t.Errorf("Every() = %v, want %v", s.Every(), tc.every)
			}
		})
	}
}

// TestNext pins fire times, including across the 2026 DST transitions of
// two zones:
//
//	Europe/Berlin     2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC)
//	                  2026-10-25 03:00 CEST -> 02:00 CET (01:00 UTC)
//	America/New_York  2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC)
//	                  2026-11-01 02:00 EDT -> 01:00 EST (06:00 UTC)
//
// want lists the successive fires after from, in UTC.
func TestNext(t *testing.T) {
	tests := []struct {
		name, zone, spec, from string
		want                   []string
	}{
		{"five fields", "UTC", "0 3 * * *", "2026-01-01 12:00:00",
			[]string{"2026-01-02 03:00:00", "2026-01-03 03:00:00"}},
		{"six fields", "UTC", "*/20 * * * * *", "2026-01-01 12:00:05",
			[]string{"2026-01-01 12:00:20", "2026-01-01 12:00:40", "2026-01-01 12:01:00"}},
		{"day of week", "UTC", "0 9 * * MON", "2026-01-01 00:00:00", // a Thursday
			[]string{"2026-01-05 09:00:00", "2026-01-12 09:00:00"}},
		{"daily in a zone", "Europe/Berlin", "@daily", "2026-01-01 12:00:00",
			[]string{"2026-01-01 23:00:00", "2026-01-02 23:00:00"}},
		{"every keeps fractions out", "UTC", "@every 10m", "2026-01-01 12:00:00.7",
			[]string{"2026-01-01 12:10:00", "2026-01-01 12:20:00"}},

		// Berlin spring-forward: 02:00-03:00 does not exist on 03-29.
		{"berlin fixed time in the gap runs once after it", "Europe/Berlin", "30 2 * * *", "2026-03-28 12:00:00",
			[]string{"2026-03-29 01:00:00", "2026-03-30 00:30:00"}},
		{"berlin two fixed times in the gap run once", "Europe/Berlin", "0,30 2 * * *", "2026-03-28 12:00:00",
			[]string{"2026-03-29 01:00:00", "2026-03-30 00:00:00", "2026-03-30 00:30:00"}},
		{"berlin fixed time at the gap end", "Europe/Berlin", "0 3 * * *", "2026-03-28 12:00:00",
			[]string{"2026-03-29 01:00:00", "2026-03-30 01:00:00"}},
		{"berlin 6-field fixed time in the gap", "Europe/Berlin", "15 45 2 * * *", "2026-03-29 00:00:00",
			[]string{"2026-03-29 01:00:00", "2026-03-30 00:45:15"}},
		{"berlin hourly follows real time over the gap", "Europe/Berlin", "0 * * * *", "2026-03-28 23:30:00",
			[]string{"2026-03-29 00:00:00", "2026-03-29 01:00:00", "2026-03-29 02:00:00"}},
		{"berlin wildcard in the gap does not run", "Europe/Berlin", "*/30 2 * * *", "2026-03-28 12:00:00",
			[]string{"2026-03-30 00:00:00", "2026-03-30 00:30:00"}},

		// Berlin fall-back: 02:00-03:00 happens twice on 10-25.
		{"berlin fixed time in the repeated hour runs once", "Europe/Berlin", "30 2 * * *", "2026-10-24 12:00:00",
			[]string{"2026-10-25 00:30:00", "2026-10-26 01:30:00"}},
		{"berlin fixed time asked in the second pass", "Europe/Berlin", "30 2 * * *", "2026-10-25 01:10:00",
			[]string{"2026-10-26 01:30:00"}},
		{"berlin hourly fires in both passes", "Europe/Berlin", "@hourly", "2026-10-24 23:30:00",
			[]string{"2026-10-25 00:00:00", "2026-10-25 01:00:00", "2026-10-25 02:00:00"}},
		{"berlin wildcard in the repeated hour fires in both passes", "Europe/Berlin", "*/30 2 * * *", "2026-10-24 12:00:00",
			[]string{"2026-10-25 00:00:00", "2026-10-25 00:30:00", "2026-10-25 01:00:00", "2026-10-25 01:30:00", "2026-10-26 01:00:00"}},

		// New York spring-forward: 02:00-03:00 does not exist on 03-08.
		{"new york fixed time in the gap runs once after it", "America/New_York", "30 2 * * *", "2026-03-07 12:00:00",
			[]string{"2026-03-08 07:00:00", "2026-03-09 06:30:00"}},
		{"new york gap start", "America/New_York", "0 2 * * *", "2026-03-07 12:00:00",
			[]string{"2026-03-08 07:00:00", "2026-03-09 06:00:00"}},
		{"new york a date-only schedule in the gap", "America/New_York", "CRON_TZ=America/New_York 15 2 8 3 *", "2026-01-01 00:00:00",
			[]string{"2026-03-08 07:00:00", "2027-03-08 07:15:00"}},

		// New York fall-back: 01:00-02:00 happens twice on 11-01.
		{"new york fixed time in the repeated hour runs once", "America/New_York", "30 1 * * *", "2026-10-31 12:00:00",
			[]string{"2026-11-01 05:30:00", "2026-11-02 06:30:00"}},
		{"new york fixed time just after the repeated hour", "America/New_York", "0 2 * * *", "2026-10-31 12:00:00",
			[]string{"2026-11-01 07:00:00", "2026-11-02 07:00:00"}},
		{"new york every minute crosses the repeated hour in real time", "America/New_York", "* * * * *", "2026-11-01 05:58:30",
			[]string{"2026-11-01 05:59:00", "2026-11-01 06:00:00", "2026-11-01 06:01:00"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := MustParse(tc.spec, mustLoad(t, tc.zone))
			at := utc(t, tc.from[:19])
			if len(tc.from) > 19 {
				frac, _ := time.ParseDuration("0" + tc.from[19:] + "s")
				at = at.Add(frac)
			}
			for i, w := range tc.want {
				next := s.Next(at)
				if got := next.UTC().Format(time.DateTime); got != w {
					t.Fatalf("fire %d after %s: got %s (%s), want %s", i+1, at.UTC().Format(time.DateTime), got, next.Format("15:04:05 MST"), w)
				}
				at = next
			}
		})
	}
}

// TestNextYear checks invariants over every fire of 2026: fires strictly
// increase, a fixed daily time fires once on each of the 365 days, a
// wildcard hourly schedule once every real hour.
func TestNextYear(t *testing.T) {
	for _, zone := range []string{"Europe/Berlin", "America/New_York"} {
		loc := mustLoad(t, zone)
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, loc).Add(-time.Second)
		end := time.Date(2027, 1, 1, 0, 0, 0, 0, loc).Add(-time.Second)
		for _, tc := range []struct {
			spec     string
			want     int
			sameWall bool // every fire on a different calendar day
		}{
			{"30 2 * * *", 365, true}, // in the gap in both zones
			{"30 1 * * *", 365, true}, // in New York's repeated hour
			{"30 2 * * 0", 52, true},  // Sundays: both transitions are on Sundays
			{"0 * * * *", 8760, false},
			{"0 0 * * *", 365, true},
		} {
			s := MustParse(tc.spec, loc)
			n := 0
			days := map[string]bool{}
			for at := s.Next(start); !at.After(end); {
				n++
				day := at.Format(time.DateOnly)
				if tc.sameWall && days[day] {
					t.Fatalf("%s %s: two fires on %s", zone, tc.spec, day)
				}
				days[day] = true
				next := s.Next(at)
				if !next.After(at) {
					t.Fatalf("%s %s: Next(%s) = %s", zone, tc.spec, at, next)
				}
				if tc.spec == "0 * * * *" && next.Sub(at) != time.Hour && !next.After(end) {
					t.Fatalf("%s hourly: %s -> %s", zone, at, next)
				}
				at = next
			}
			if n != tc.want {
				t.Errorf("%s %s: %d fires in 2026, want %d", zone, tc.spec, n, tc.want)
			}
		}
	}
}

// TestRobfigDSTBug documents why Next is computed here: the library fires
// a fixed time in a repeated hour twice and drops one in a gap. If this
// test fails, a new version fixed it and our Next may be simplified.
func TestRobfigDSTBug(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	p := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)
	rs, err := p.Parse("CRON_TZ=America/New_York 30 1 * * *")
	if err != nil {
		t.Fatal(err)
	}
	first := rs.Next(time.Date(2026, 10, 31, 12, 0, 0, 0, ny))
	if second := rs.Next(first); second.Sub(first) != time.Hour {
		t.Errorf("robfig/cron no longer fires 01:30 twice on 2026-11-01 (%s, %s): simplify Next", first, second)
	}
	rs, _ = p.Parse("CRON_TZ=America/New_York 30 2 * * *")
	if got := rs.Next(time.Date(2026, 3, 7, 12, 0, 0, 0, ny)); got.Day() != 9 {
		t.Errorf("robfig/cron now fires 02:30 of 2026-03-08 at %s: simplify Next", got)
	}
	ours := MustParse("30 2 * * *", ny).Next(time.Date(2026, 3, 7, 12, 0, 0, 0, ny))
	if want := time.Date(2026, 3, 8, 3, 0, 0, 0, ny); !ours.Equal(want) {
		t.Errorf("Next = %s, want %s", ours, want)
	}
}

func TestAfterKeepsEveryPhase(t *testing.T) {
	s := MustParse("@every 10m", time.UTC)
	anchor := utc(t, "2026-01-01 00:03:00")
	got := s.After(anchor, utc(t, "2026-01-01 05:00:00"))
	if want := utc(t, "2026-01-01 05:03:00"); !got.Equal(want) {
		t.Errorf("After = %s, want %s", got, want)
	}
	got = s.After(anchor, utc(t, "2026-01-01 05:03:00"))
	if want := utc(t, "2026-01-01 05:13:00"); !got.Equal(want) {
		t.Errorf("After on a fire = %s, want %s", got, want)
	}
}

func BenchmarkNext(b *testing.B) {
	s := MustParse("30 2 * * *", mustLoad(b, "Europe/Berlin"))
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		at = s.Next(at)
	}
}

// TestNextPastTransitionTable: Go's ZoneBounds misreports the last day of
// leap years past 2037 (rule-extended zones); Next still progresses.
func TestNextPastTransitionTable(t *testing.T) {
	for _, zone := range []string{"Europe/Berlin", "America/New_York"} {
		s := MustParse("0 0 29 2 *", mustLoad(t, zone))
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for _, want := range []int{2028, 2032, 2036, 2040, 2044} {
			at = s.Next(at)
			if at.Year() != want || at.Month() != 2 || at.Day() != 29 {
				t.Fatalf("%s: got %s, want %d-02-29", zone, at, want)
			}
		}
	}
}
