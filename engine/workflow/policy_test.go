package workflow

import (
	"github.com/picoflow/picoflow/engine/schedule"
	"testing"
	"time"
)

func TestPolicies(t *testing.T) {
	tests := []struct {
		name, yaml string
		overlap    schedule.Overlap
		catchup    schedule.Catchup
	}{
		{"defaults", "", schedule.OverlapSkip, schedule.Catchup{}},
		{"queue and latest", "overlap: queue\ncatchup: {policy: latest, window: 6h}\n", schedule.OverlapQueue, schedule.Catchup{Policy: schedule.CatchupLatest, Window: 6 * time.Hour}},
		{"allow, all without a window", "overlap: allow\ncatchup:\n  policy: all\n", schedule.OverlapAllow, schedule.Catchup{Policy: schedule.CatchupAll}},
		{"window in seconds", "catchup: {policy: none, window: 90}\n", schedule.OverlapSkip, schedule.Catchup{Policy: schedule.CatchupNone, Window: 90 * time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "name: p\nschedule: \"0 3 * * *\"\n" + tc.yaml + "tasks:\n  - {name: a, type: shell, config: {command: \"true\"}}\n"
			w, err := Parse("p.yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			if w.Overlap != tc.overlap || w.Catchup != tc.catchup {
				t.Errorf("overlap %v, catchup %+v; want %v, %+v", w.Overlap, w.Catchup, tc.overlap, tc.catchup)
			}
		})
	}
}
