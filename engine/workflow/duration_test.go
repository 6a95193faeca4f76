package workflow

import (
	"github.com/picoflow/picoflow/engine/schedule"
	"strings"
	"testing"
	"time"
)

// parseTask parses a one-task workflow with extra lines appended to the
// task and returns the problems as text ("" when it loads).
func parseTask(t *testing.T, top, task string) (*Workflow, string) {
	t.Helper()
	src := "name: w\n" + top + "tasks:\n  - name: a\n    type: shell\n    config: {command: x}\n" + task
	w, err := Parse("w.yaml", []byte(src))
	if err != nil {
		return nil, err.Error()
	}
	return w, ""
}

func TestDurations(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "1", want: time.Second},
		{in: "3600", want: time.Hour},
		{in: "0x10", want: 16 * time.Second},
		{in: "90s", want: 90 * time.Second},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "1.5s", want: 1500 * time.Millisecond},
		{in: "' 5m '", want: 5 * time.Minute},
		{in: "0", err: "greater than zero"},
		{in: "0s", err: "greater than zero"},
		{in: "-1", err: "must not be negative"},
		{in: "-1m", err: "must not be negative"},
		{in: "1.5", err: `write "1.5s"`},
		{in: "'300'", err: `"300s"`},
		{in: "5 minutes", err: `invalid duration "5 minutes"`},
		{in: "forever", err: `invalid duration`},
		{in: "99999999999999999", err: "out of range"},
		{in: "true", err: "expected a duration, got boolean true"},
		{in: "{m: 5}", err: "expected a duration, got a mapping"},
		{in: "", err: "expected a duration, got an empty value"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			w, errs := parseTask(t, "", "    timeout: "+tt.in+"\n")
			if tt.err != "" {
				if !strings.Contains(errs, tt.err) || !strings.Contains(errs, "tasks[0].timeout: ") {
					t.Errorf("problems %q, want one at tasks[0].timeout containing %q", errs, tt.err)
				}
				return
			}
			if errs != "" {
				t.Fatal(errs)
			}
			if got := w.Tasks[0].Timeout; got != tt.want {
				t.Errorf("timeout = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSchedules(t *testing.T) {
	tests := []struct {
		schedule, timezone string
		err                string
	}{
		{schedule: "0 2 * * *"},
		{schedule: "*/15 9-17 * * MON-FRI"},
		{schedule: "30 0 2 * * *"},
		{schedule: "@daily"},
		{schedule: "@hourly"},
		{schedule: "@weekly"},
		{schedule: "@every 10m"},
		{schedule: "@every 1h30m"},
		{schedule: "CRON_TZ=UTC 0 2 * * *"},
		{schedule: "TZ=UTC @daily"},
		{schedule: "0 2 * * *", timezone: "UTC"},
		{schedule: "0 2 * * *", timezone: "Local"},
		{schedule: "0 25 * * *", err: "above maximum"},
		{schedule: "0 2 * *", err: "expected 5 to 6 fields"},
		{schedule: "0 0 2 * * * *", err: "expected 5 to 6 fields"},
		{schedule: "@fortnightly", err: "unrecognized descriptor"},
		{schedule: "@every soon", err: "failed to parse duration"},
		{schedule: "CRON_TZ=UTC", err: "must be followed by a space"},
		{schedule: "CRON_TZ= 0 2 * * *", err: "names no zone"},
		{schedule: "TZ=Nowhere/Land 0 2 * * *", err: `unknown time zone "Nowhere/Land"`},
		{schedule: "CRON_TZ=UTC CRON_TZ=UTC 0 2 * * *", err: "more than one time zone prefix"},
		{schedule: "CRON_TZ=UTC 0 2 * * *", timezone: "UTC", err: "timezone is set at line"},
		{schedule: "''", err: "must not be empty"},
		{schedule: "0 2 * * *", timezone: "Nowhere/Land", err: `unknown time zone "Nowhere/Land"`},
		{schedule: "0 2 * * *", timezone: "../../etc/passwd", err: "unknown time zone"},
	}
	for _, tt := range tests {
		t.Run(tt.schedule+" "+tt.timezone, func(t *testing.T) {
			top := "schedule: " + tt.schedule + "\n"
			if !strings.HasPrefix(tt.schedule, "'") {
				top = "schedule: '" + tt.schedule + "'\n"
			}
			if tt.timezone != "" {
				top += "timezone: " + tt.timezone + "\n"
			}
			w, errs := parseTask(t, top, "")
			if tt.err != "" {
				if !strings.Contains(errs, tt.err) {
					t.Errorf("problems %q, want one containing %q", errs, tt.err)
				}
				return
			}
			if errs != "" {
				t.Fatal(errs)
			}
			s, err := cronOf(w)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
			if next := s.Next(now); !next.After(now) {
				t.Errorf("Next(%v) = %v", now, next)
			}
		})
	}
}

// cronOf parses the workflow's schedule in its time zone, as the daemon
// does (cli/daemon.JobOf); nil when the workflow has no schedule.
func cronOf(w *Workflow) (*schedule.Schedule, error) {
	if w.Schedule == "" {
		return nil, nil
	}
	loc := time.Local
	if w.Timezone != "" {
		var err error
		if loc, err = time.LoadLocation(w.Timezone); err != nil {
			return nil, err
		}
	}
	return schedule.Parse(w.Schedule, loc)
}
