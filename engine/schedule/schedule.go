package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is a parsed cron schedule in its time zone. It is immutable and
// safe for concurrent use.
type Schedule struct {
	spec     string
	loc      *time.Location
	every    time.Duration      // @every; 0 for cron fields
	wall     *cron.SpecSchedule // the fields, evaluated in UTC on wall-clock values
	wildcard bool               // follows real time across DST changes (see the package doc)
}

// parser accepts five fields, an optional leading seconds field, and
// descriptors such as @daily and @every 10m. It is the one cron parser of
// PicoFlow: the workflow loader validates with Parse, the daemon fires with
// it, so the two cannot disagree.
var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Parse parses a schedule. A CRON_TZ=Zone (or TZ=Zone) prefix overrides
// loc; a nil loc means time.Local. The cron library panics on some
// malformed zone prefixes and reads a second prefix itself, so prefixes are
// handled here: one at most, naming a zone, followed by the schedule.
func Parse(spec string, loc *time.Location) (s *Schedule, err error) {
	spec = strings.TrimSpace(spec)
	zone, rest, hasZone, err := splitZone(spec)
	if err != nil {
		return nil, err
	}
	if hasZone {
		if loc, err = time.LoadLocation(zone); err != nil {
			return nil, fmt.Errorf("unknown time zone %q in schedule: %w", zone, err)
		}
	}
	if loc == nil {
		loc = time.Local
	}
	if rest == "" {
		return nil, errors.New("empty schedule")
	}
	if _, _, again, _ := splitZone(rest); again {
		return nil, fmt.Errorf("invalid schedule %q: more than one time zone prefix", spec)
	}
	var cs cron.Schedule
	func() {
		defer func() {
			if recover() != nil { // the library panics on some malformed input
				cs, err = nil, errors.New("malformed")
			}
		}()
		cs, err = parser.Parse(rest)
	}()
	if err != nil {
		return nil, fmt.Errorf("invalid schedule %q: %w", spec, err)
	}
	s = &Schedule{spec: spec, loc: loc}
	switch c := cs.(type) {
	case cron.ConstantDelaySchedule:
		s.every = c.Delay
	case *cron.SpecSchedule:
		w := *c
		w.Location = time.UTC // wall-clock arithmetic: UTC has no DST
		s.wall = &w
		s.wildcard = isWildcard(rest)
	default:
		return nil, fmt.Errorf("schedule %q: unsupported kind %T", spec, cs)
	}
	return s, nil
}

// MustParse is Parse for tests and constants; it panics on an error.
func MustParse(spec string, loc *time.Location) *Schedule {
	s, err := Parse(spec, loc)
	if err != nil {
		panic(err)
	}
	return s
}

// HasZone reports whether spec starts with a CRON_TZ= or TZ= prefix.
func HasZone(spec string) bool {
	_, _, ok, _ := splitZone(spec)
	return ok
}

// splitZone splits a "CRON_TZ=Zone rest" (or "TZ=Zone rest") prefix off a
// schedule. ok is false when there is no prefix.
func splitZone(spec string) (zone, rest string, ok bool, err error) {
	var after string
	switch {
	case strings.HasPrefix(spec, "CRON_TZ="):
		after = spec[len("CRON_TZ="):]
	case strings.HasPrefix(spec, "TZ="):
		after = spec[len("TZ="):]
	default:
		return "", spec, false, nil
	}
	zone, rest, found := strings.Cut(after, " ")
	if zone == "" {
		return "", "", true, fmt.Errorf("time zone prefix of %q names no zone", spec)
	}
	if !found || strings.TrimSpace(rest) == "" {
		return zone, "", true, fmt.Errorf("time zone prefix %q must be followed by a space and the schedule", spec)
	}
	return zone, strings.TrimSpace(rest), true, nil
}

// isWildcard reports whether a field schedule follows real time across
// DST changes: ISC cron's rule, a minute or hour field (or here a seconds
// field) that starts with "*".
func isWildcard(spec string) bool {
	if strings.HasPrefix(spec, "@") {
		return spec == "@hourly"
	}
	f := strings.Fields(spec)
	if len(f) == 5 {
		f = append([]string{"0"}, f...)
	}
	for _, x := range f[:min(3, len(f))] {
		if strings.HasPrefix(x, "*") || strings.HasPrefix(x, "?") {
			return true
		}
	}
	return false
}

// String returns the schedule as written.
func (s *Schedule) String() string { return s.spec }

// Location returns the time zone the schedule is evaluated in.
func (s *Schedule) Location() *time.Location { return s.loc }

// Every returns the interval of an @every schedule, 0 for others.
func (s *Schedule) Every() time.Duration { return s.every }

// Wildcard reports whether the schedule follows real time across DST
// changes rather than firing once per wall-clock time.
func (s *Schedule) Wildcard() bool { return s.wall == nil || s.wildcard }

// Next returns the first fire time strictly after t, in the schedule's
// zone, or the zero time when there is none within five years. For @every
// it is t (to the second) plus the interval; use After to keep the phase
// of an earlier fire.
func (s *Schedule) Next(t time.Time) time.Time {
	if s.every > 0 {
		return t.Truncate(time.Second).Add(s.every).In(s.loc)
	}
	cur := t.In(s.loc).Truncate(time.Second).Add(time.Second)
	limit := cur.AddDate(5, 0, 0)
	for !cur.After(limit) {
		start, end := zoneBounds(cur)
		_, off := cur.Zone()
		prev, hasPrev := 0, !start.IsZero()
		if hasPrev {
			_, prev = start.Add(-time.Nanosecond).Zone()
		}
		// A spring-forward into this period skipped the wall times
		// [start+prev, start+off): a fixed-time schedule fires once for
		// them, at the first instant after the gap.
		if !s.wildcard && hasPrev && prev < off && start.Equal(cur) {
			gapFrom, gapTo := wallAt(start, prev), wallAt(start, off)
			if w := s.wall.Next(gapFrom.Add(-time.Second)); !w.IsZero() && w.Before(gapTo) {
				return start
			}
		}
		// A fall-back into this period repeats the wall times before
		// start+prev: a fixed-time schedule fired for them already.
		var repeatedTo time.Time
		if !s.wildcard && hasPrev && prev > off {
			repeatedTo = wallAt(start, prev)
		}
		from := wallAt(cur, off).Add(-time.Second)
		for {
			w := s.wall.Next(from)
			if w.IsZero() {
				return time.Time{}
			}
			if w.Before(repeatedTo) {
				from = repeatedTo.Add(-time.Second)
				continue
			}
			at := w.Add(-time.Duration(off) * time.Second).In(s.loc)
			if !end.IsZero() && !at.Before(end) {
				break // not in this period; maybe in the next
			}
			return at
		}
		cur = end
	}
	return time.Time{}
}

// zoneBounds is t.ZoneBounds, worked around a Go bug: past a zone's
// transition table (the POSIX rule extension, after 2037), the last day of
// a leap year is reported beyond the end of its period (end <= t). The year
// boundary is no transition, so the real end is that of the period after.
func zoneBounds(t time.Time) (start, end time.Time) {
	start, end = t.ZoneBounds()
	for probe, n := t, 0; !end.IsZero() && !end.After(t) && n < 72; n++ {
		probe = probe.Add(time.Hour)
		_, end = probe.ZoneBounds()
	}
	return start, end
}

// wallAt returns the wall-clock reading of instant i at UTC offset off
// (seconds), as a UTC time with those fields.
func wallAt(i time.Time, off int) time.Time {
	return time.Unix(i.Unix()+int64(off), 0).UTC()
}

// After returns the first fire strictly after t of a schedule whose
// previous fire was at anchor: for @every the fires are anchor + k×interval,
// so a daemon restart keeps their phase. A zero anchor, or one not before
// t, is ignored.
func (s *Schedule) After(anchor, t time.Time) time.Time {
	if s.every > 0 && !anchor.IsZero() && t.After(anchor) {
		n := t.Sub(anchor) / s.every
		t = anchor.Add(n * s.every)
	}
	return s.Next(t)
}

// Fires returns the fires in (from, to], anchored at anchor (see After),
// at most max of them (the oldest).
func (s *Schedule) Fires(anchor, from, to time.Time, max int) []time.Time {
	var out []time.Time
	for f := s.After(anchor, from); !f.IsZero() && !f.After(to) && len(out) < max; f = s.Next(f) {
		out = append(out, f)
	}
	return out
}

// newest returns the newest n fires in (lo, hi], oldest first. It looks
// back from hi in growing steps, so that a dense schedule (every second)
// missed for months costs no more than the fires it returns.
func (s *Schedule) newest(anchor, lo, hi time.Time, n int) []time.Time {
	if !hi.After(lo) || n <= 0 {
		return nil
	}
	span := hi.Sub(lo)
	for d := time.Minute; ; d *= 16 {
		from, final := hi.Add(-d), d >= span
		if final {
			from = lo
		}
		var out []time.Time
		for f := s.After(anchor, from); !f.IsZero() && !f.After(hi); f = s.Next(f) {
			if len(out) == n {
				copy(out, out[1:])
				out = out[:n-1]
			}
			out = append(out, f)
		}
		if len(out) >= n || final {
			return out
		}
	}
}
