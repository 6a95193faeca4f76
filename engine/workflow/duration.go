package workflow

import (
	"fmt"
	"github.com/picoflow/picoflow/engine/yamlcheck"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// durationHint explains the two accepted duration forms.
const durationHint = `an integer is seconds; a string is a Go duration such as "90s", "5m" or "1h30m"`

// duration decodes a duration: an integer number of seconds or a string
// accepted by time.ParseDuration. With positive set, zero is rejected too;
// negative durations are always rejected.
func (d *decoder) duration(n *yaml.Node, path string, positive bool) (time.Duration, bool) {
	r := yamlcheck.Resolve(n)
	if r == nil || r.Kind != yaml.ScalarNode {
		d.Report(n, path, Problem{Msg: "expected a duration, got " + yamlcheck.Describe(n), Hint: durationHint})
		return 0, false
	}
	var v time.Duration
	switch r.ShortTag() {
	case "!!int":
		var secs int64
		if err := r.Decode(&secs); err != nil || secs > math.MaxInt64/int64(time.Second) || secs < math.MinInt64/int64(time.Second) {
			d.Errorf(n, path, "duration %s seconds is out of range", r.Value)
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
			d.Report(n, path, p)
			return 0, false
		}
	case "!!float":
		d.Report(n, path, Problem{
			Msg:  "expected a duration, got " + yamlcheck.Describe(n),
			Hint: fmt.Sprintf(`fractional seconds need a unit: write "%ss"`, r.Value),
		})
		return 0, false
	default:
		d.Report(n, path, Problem{Msg: "expected a duration, got " + yamlcheck.Describe(n), Hint: durationHint})
		return 0, false
	}
	switch {
	case v < 0:
		d.Errorf(n, path, "duration must not be negative, got %s", v)
		return 0, false
	case v == 0 && positive:
		d.Report(n, path, Problem{Msg: "duration must be greater than zero", Hint: "leave the key out to use the default"})
		return 0, false
	}
	return v, true
}

// timeout decodes a timeout: a positive duration, or none for no timeout
// at all (which overrides a default from the workflow or global config).
func (d *decoder) timeout(n *yaml.Node, path string) (time.Duration, bool) {
	if r := yamlcheck.Resolve(n); r != nil && r.Kind == yaml.ScalarNode && r.ShortTag() == "!!str" && strings.TrimSpace(r.Value) == "none" {
		return 0, true
	}
	if r := yamlcheck.Resolve(n); r != nil && r.Kind == yaml.ScalarNode && (r.Value == "0" || r.Value == "0s") {
		d.Report(n, path, Problem{Msg: "a timeout must be greater than zero",
			Hint: "write none for no timeout, or leave the key out for the default"})
		return 0, false
	}
	return d.duration(n, path, true)
}

const scheduleHint = `five fields "minute hour day-of-month month day-of-week" such as "0 2 * * *", ` +
	`an optional leading seconds field, or @hourly, @daily, @every 10m`
