package web

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
)

func TestBars(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)
	at := func(ms int) int64 { return t0.Add(time.Duration(ms) * time.Millisecond).UnixNano() }
	evs := []*journal.Event{
		{Type: journal.TaskStarted, Time: at(0), Task: "a", Attempt: 1},
		{Type: journal.TaskRetrying, Time: at(100), Task: "a", Attempt: 1, Status: "failed", ExitCode: 2, RetryAt: at(300)},
		{Type: journal.TaskStarted, Time: at(300), Task: "a", Attempt: 2},
		{Type: journal.TaskFinished, Time: at(400), Task: "a", Attempt: 2, Status: "success"},
		{Type: journal.TaskStarted, Time: at(400), Task: "b", Attempt: 1},
		{Type: journal.TaskRetrying, Time: at(450), Task: "b", Attempt: 1, Status: "timeout", ExitCode: -1, RetryAt: at(2000)},
		{Type: journal.TaskStarted, Time: at(400), Task: "c", Attempt: 1},
		{Type: journal.TaskFinished, Time: at(9), Task: "unknown", Attempt: 1, Status: "failed"},
	}
	got := bars(evs, t0.Add(500*time.Millisecond))
	str := func(bs []bar) string {
		var out []string
		for _, b := range bs {
			out = append(out, fmt.Sprintf("%s#%d %d-%d", b.status, b.attempt, b.from.Sub(t0).Milliseconds(), b.to.Sub(t0).Milliseconds()))
		}
		return strings.Join(out, ", ")
	}
	for task, want := range map[string]string{
		"a":       "failed#1 0-100, backoff#1 100-300, success#2 300-400",
		"b":       "timeout#1 400-450, backoff#1 450-2000", // the planned wait, past the as-of time
		"c":       "running#1 400-500",                     // open: until the as-of time
		"unknown": "",
	} {
		if s := str(got[task]); s != want {
			t.Errorf("%s: %s, want %s", task, s, want)
		}
	}
	var b strings.Builder
	gantt(&b, []string{"a", "b", "c"}, evs, t0, t0.Add(500*time.Millisecond))
	svg := b.String()
	if n := strings.Count(svg, `class="bar attempt"`); n != 4 {
		t.Errorf("%d attempt bars, want 4", n)
	}
	if n := strings.Count(svg, `class="bar backoff"`); n != 2 {
		t.Errorf("%d backoff bars, want 2", n)
	}
}
