package workflow

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"
)

// durationHint explains the two accepted duration forms.
const durationHint = `an integer is seconds; a string is a Go duration such as "90s", "5m" or "1h30m"`

// duration decodes a duration: an integer number of seconds or a string
// accepted by time.ParseDuration. With positive set, zero is rejected too;
// negative durations are always rejected.
func (d *decoder) duration(n *yaml.Node, path string, positive bool) (time.Duration, bool) {
	r := resolve(n)
	if r == nil || r.Kind != yaml.ScalarNode {
		d.report(n, path, Problem{Msg: "expected a duration, got " + describe(n), Hint: durationHint})
		return 0, false
	}
	var v time.Duration
	switch r.ShortTag() {
	case "!!int":
		var secs int64
		if err := r.Decode(&secs); err != nil || secs > math.MaxInt64/int64(time.Second) || secs < math.MinInt64/int64(time.Second) {
			d.errorf(n, path, "duration %s seconds is out of range", r.Value)
			return 0, false
		}
		v = time.Duration(secs) * time.Second
	case "!!str":
		s := strings.TrimSpace(r.Value)
		var err error
		v, err = time.ParseDuration(s)
		if err != nil {
			p := Problem{Msg: fmt.Sprintf("invalid duration %q", r.Value), Hint: durationHint}
			if _, numErr := strconv.ParseFloat(s, 64); numErr == nil {
				p.Hint = `a number needs a unit when quoted: write ` + s + ` (seconds) without quotes, or "` + s + `s"`
			}
			d.report(n, path, p)
			return 0, false
		}
	case "!!float":
		d.report(n, path, Problem{
			Msg:  "expected a duration, got " + describe(n),
			Hint: fmt.Sprintf(`fractional seconds need a unit: write "%ss"`, r.Value),
		})
		return 0, false
	default:
		d.report(n, path, Problem{Msg: "expected a duration, got " + describe(n), Hint: durationHint})
		return 0, false
	}
	switch {
	case v < 0:
		d.errorf(n, path, "duration must not be negative, got %s", v)
		return 0, false
	case v == 0 && positive:
		d.report(n, path, Problem{Msg: "duration must be greater than zero", Hint: "leave the key out to use the default"})
		return 0, false
	}
	return v, true
}

// timeout decodes a timeout: a positive duration, or none for no timeout
// at all (which overrides a default from the workflow or global config).
func (d *decoder) timeout(n *yaml.Node, path string) (time.Duration, bool) {
	if r := resolve(n); r != nil && r.Kind == yaml.ScalarNode && r.ShortTag() == "!!str" && strings.TrimSpace(r.Value) == "none" {
		return 0, true
	}
	if r := resolve(n); r != nil && r.Kind == yaml.ScalarNode && (r.Value == "0" || r.Value == "0s") {
		d.report(n, path, Problem{Msg: "a timeout must be greater than zero",
			Hint: "write none for no timeout, or leave the key out for the default"})
		return 0, false
	}
	return d.duration(n, path, true)
}

// cronParser accepts the standard five fields, an optional leading seconds
// field, and descriptors such as @daily and @every 10m.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

const scheduleHint = `five fields "minute hour day-of-month month day-of-week" such as "0 2 * * *", ` +
	`an optional leading seconds field, or @hourly, @daily, @every 10m`

// splitCronTZ splits a "CRON_TZ=Zone rest" (or "TZ=Zone rest") prefix off a
// schedule. ok is false when there is no prefix.
func splitCronTZ(spec string) (zone, rest string, ok bool, err error) {
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

// parseSchedule validates a schedule and returns the cron schedule in loc
// (or in the zone of its CRON_TZ prefix). The cron library panics on some
// malformed zone prefixes, so the prefix is handled here.
func parseSchedule(spec string, loc *time.Location) (s cron.Schedule, err error) {
	zone, rest, hasZone, err := splitCronTZ(spec)
	if err != nil {
		return nil, err
	}
	if hasZone {
		if loc, err = time.LoadLocation(zone); err != nil {
			return nil, fmt.Errorf("unknown time zone %q in schedule: %w", zone, err)
		}
	}
	if rest == "" {
		return nil, fmt.Errorf("empty schedule")
	}
	if _, _, again, _ := splitCronTZ(rest); again {
		return nil, fmt.Errorf("invalid schedule %q: more than one time zone prefix", spec)
	}
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("invalid schedule %q", spec)
		}
	}()
	if loc == nil {
		loc = time.Local
	}
	// The parser takes the zone from a prefix only; hand it a name that
	// loads the same location.
	s, err = cronParser.Parse("CRON_TZ=" + loc.String() + " " + rest)
	if err != nil {
		return nil, fmt.Errorf("invalid schedule %q: %w", spec, err)
	}
	return s, nil
}

// Cron returns the parsed schedule of the workflow in its time zone, or
// nil when the workflow has no schedule. The schedule was validated by
// Load, so an error here means the time zone database changed since.
func (w *Workflow) Cron() (cron.Schedule, error) {
	if w.Schedule == "" {
		return nil, nil
	}
	loc := time.Local
	if w.Timezone != "" {
		var err error
		if loc, err = time.LoadLocation(w.Timezone); err != nil {
			return nil, fmt.Errorf("workflow %s: load time zone: %w", w.Name, err)
		}
	}
	s, err := parseSchedule(w.Schedule, loc)
	if err != nil {
		return nil, fmt.Errorf("workflow %s: %w", w.Name, err)
	}
	return s, nil
}
