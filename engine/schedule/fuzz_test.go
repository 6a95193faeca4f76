package schedule

import (
	"testing"
	"time"
)

// FuzzNext: any schedule that parses yields fire times strictly after the
// reference, in every zone, and Parse never panics.
func FuzzNext(f *testing.F) {
	for _, s := range []string{"0 3 * * *", "*/15 * * * *", "30 2 * * 0", "0 30 1 * * *", "@daily", "@hourly",
		"@every 90s", "CRON_TZ=America/New_York 30 1 * * *", "0 0 29 2 *", "5-10/2 1,2 L * *", "CRON_TZ= x"} {
		f.Add(s, int64(1774746000), uint8(0))
	}
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Apia"}
	f.Fuzz(func(t *testing.T, spec string, unix int64, zone uint8) {
		loc, err := time.LoadLocation(zones[int(zone)%len(zones)])
		if err != nil {
			t.Skip(err)
		}
		s, err := Parse(spec, loc)
		if err != nil {
			return
		}
		at := time.Unix(unix%(1<<34), 0) // within a few centuries of 1970
		for range 5 {
			next := s.Next(at)
			if next.IsZero() {
				return
			}
			if !next.After(at) {
				t.Fatalf("%q in %s: Next(%s) = %s", spec, loc, at, next)
			}
			at = next
		}
	})
}
