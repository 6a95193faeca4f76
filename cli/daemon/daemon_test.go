package daemon

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
)

const slowTick = `name: tick
schedule: "* * * * * *"
overlap: skip
tasks:
  - name: work
    type: shell
    config: {command: "sleep 2.5"}
`

// TestScheduleSkipsOverlap: a workflow fired every second whose task takes
// 2.5s runs, the fires that come while it runs are journaled as skipped,
// and no two of its runs overlap in time.
func TestScheduleSkipsOverlap(t *testing.T) {
	td := newTestDaemon(t, map[string]string{"tick.yaml": slowTick})
	td.start(nil)
	waitFor(t, 20*time.Second, "two finished runs", func() bool { return len(finished(td.events())) >= 2 })
	if err := td.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	evs := td.events()
	type span struct{ start, end int64 }
	runs := map[string]*span{}
	fired := map[int64]bool{}
	for _, e := range evs {
		switch e.Type {
		case journal.ScheduleFired:
			if e.Workflow != "tick" || e.FireTime == 0 || e.Trigger != "schedule" {
				t.Errorf("ScheduleFired %+v", e)
			}
			fired[e.FireTime] = true
		case journal.RunStarted:
			if e.Trigger != "schedule" || !fired[e.FireTime] {
				t.Errorf("RunStarted trigger %q fire %d: no ScheduleFired before it", e.Trigger, e.FireTime)
			}
			runs[e.Run] = &span{start: e.Time}
		case journal.RunFinished:
			runs[e.Run].end = e.Time
		}
	}
	skips := count(evs, func(e *journal.Event) bool {
		return e.Type == journal.ScheduleSkipped && e.FireTime > 0 && strings.HasPrefix(e.Reason, "overlap")
	})
	if skips == 0 {
		t.Error("no ScheduleSkipped(overlap) event")
	}
	var spans []*span
	for _, s := range runs {
		if s.end == 0 { // interrupted by the stop: it ran until then
			s.end = 1<<63 - 1
		}
		spans = append(spans, s)
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			t.Errorf("runs overlap: one started at %d before the previous ended at %d", spans[i].start, spans[i-1].end)
		}
	}
	t.Logf("%d runs, %d skipped fires", len(spans), skips)
}

const manualWF = `name: manual
env:
  WHO: world
tasks:
  - name: hello
    type: shell
    config: {command: "echo hello $WHO"}
`

const longWF = `name: long
tasks:
  - name: wait
    type: shell
    config: {command: "sleep 30"}
`

func TestTrigger(t *testing.T) {
	td := newTestDaemon(t, map[string]string{"manual.yaml": manualWF, "long.yaml": longWF})
	sock := filepath.Join(td.home, "daemon.sock")
	ctx := context.Background()
	if _, err := Call(ctx, sock, Request{Op: OpTrigger, Workflow: "manual"}); !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("before the daemon: %v, want ErrNoDaemon", err)
	}
	td.start(nil)
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v", fi, err)
	}

	resp, err := Call(ctx, sock, Request{Op: OpTrigger, Workflow: "manual", Params: map[string]string{"WHO": "test"}})
	if err != nil || !resp.OK || resp.Run == "" {
		t.Fatalf("trigger: %+v %v", resp, err)
	}
	// The answer comes after RunStarted is durable.
	started := count(td.events(), func(e *journal.Event) bool {
		return e.Type == journal.RunStarted && e.Run == resp.Run && e.Trigger == "manual" && e.Params["WHO"] == "test" && e.FireTime == 0
	})
	if started != 1 {
		t.Fatalf("RunStarted of %s not in the journal when trigger answered", resp.Run)
	}
	waitFor(t, 10*time.Second, "the triggered run to succeed", func() bool { return finished(td.events())[resp.Run] == "success" })

	for _, tc := range []struct {
		name string
		req  Request
		code string
	}{
		{"unknown workflow", Request{Op: OpTrigger, Workflow: "nope"}, CodeNotFound},
		{"undeclared parameter", Request{Op: OpTrigger, Workflow: "manual", Params: map[string]string{"NOPE": "1"}}, CodeInvalid},
		{"unknown op", Request{Op: "explode"}, CodeInvalid},
	} {
		resp, err := Call(ctx, sock, tc.req)
		if err != nil || resp.OK || resp.Code != tc.code {
			t.Errorf("%s: %+v %v, want code %s", tc.name, resp, err, tc.code)
		}
	}

	first, err := Call(ctx, sock, Request{Op: OpTrigger, Workflow: "long"})
	if err != nil || !first.OK {
		t.Fatalf("trigger long: %+v %v", first, err)
	}
	if busy, err := Call(ctx, sock, Request{Op: OpTrigger, Workflow: "long"}); err != nil || busy.Code != CodeBusy {
		t.Errorf("second trigger while running: %+v %v, want busy", busy, err)
	}
	if forced, err := Call(ctx, sock, Request{Op: OpTrigger, Workflow: "long", Force: true}); err != nil || !forced.OK {
		t.Errorf("forced trigger: %+v %v", forced, err)
	}
	st, err := Call(ctx, sock, Request{Op: OpStatus})
	if err != nil || !st.OK || st.Status.PID != os.Getpid() || st.Status.Running != 2 || len(st.Status.Workflows) != 2 {
		t.Errorf("status: %+v %v", st.Status, err)
	}
}

func TestSecondInstanceRefused(t *testing.T) {
	td := newTestDaemon(t, map[string]string{"manual.yaml": manualWF})
	td.start(nil)
	second := New(td.options())
	err := second.Run(context.Background())
	var le *LockedError
	if !errors.As(err, &le) || le.PID != os.Getpid() || !strings.Contains(err.Error(), "pid ") {
		t.Fatalf("second daemon: %v, want a LockedError naming pid %d", err, os.Getpid())
	}
	if got := Holder(filepath.Join(td.home, "daemon.lock")); got != os.Getpid() {
		t.Errorf("Holder = %d, want %d", got, os.Getpid())
	}
	if err := td.stop(); err != nil {
		t.Fatal(err)
	}
	if got := Holder(filepath.Join(td.home, "daemon.lock")); got != 0 {
		t.Errorf("Holder after stop = %d, want 0", got)
	}
}

// TestReloadKeepsGoodVersion: a file that stops validating is logged and
// its previous definition keeps firing; a fixed file takes effect.
func TestReloadKeepsGoodVersion(t *testing.T) {
	const quick = "name: quick\nschedule: \"* * * * * *\"\ntasks:\n  - {name: a, type: shell, config: {command: \"true\"}}\n"
	td := newTestDaemon(t, map[string]string{"quick.yaml": quick})
	td.start(nil)
	fires := func() int {
		return count(td.events(), func(e *journal.Event) bool { return e.Type == journal.ScheduleFired && e.Workflow == "quick" })
	}
	waitFor(t, 10*time.Second, "a first fire", func() bool { return fires() >= 1 })
	td.write("quick.yaml", "name: quick\nschedule: [broken\n")
	waitFor(t, 10*time.Second, "the invalid file to be logged", func() bool { return logHas(td, "invalid workflow file") })
	n := fires()
	waitFor(t, 10*time.Second, "fires of the old definition after the broken reload", func() bool { return fires() >= n+2 })

	td.write("quick.yaml", strings.Replace(quick, `"* * * * * *"`, `"0 0 1 1 *"`, 1))
	waitFor(t, 10*time.Second, "the fixed file to load", func() bool {
		return strings.Count(td.logs.String(), `"msg":"workflow loaded"`) >= 2
	})
	if err := td.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestCatchupFromJournal: the last fire recorded in the journal survives
// the daemon; missed fires are caught up with trigger catchup.
func TestCatchupFromJournal(t *testing.T) {
	const hourly = "name: hourly\nschedule: \"0 * * * *\"\ntimezone: UTC\ncatchup: {policy: all, window: 3h}\n" +
		"overlap: queue\ntasks:\n  - {name: a, type: shell, config: {command: \"true\"}}\n"
	td := newTestDaemon(t, map[string]string{"hourly.yaml": hourly})
	now := time.Now().UTC()
	last := now.Truncate(time.Hour).Add(-5 * time.Hour) // fires since: -4h .. 0h (the hour)
	j, err := journal.Open(filepath.Join(td.home, "journal"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Append(&journal.Event{Type: journal.ScheduleFired, Time: last.UnixNano(), Workflow: "hourly", FireTime: last.UnixNano()}); err != nil {
		t.Fatal(err)
	}
	j.Close()
	td.start(nil)
	catchups := func() []time.Time {
		var out []time.Time
		for _, e := range td.events() {
			if e.Type == journal.RunStarted && e.Trigger == "catchup" {
				out = append(out, time.Unix(0, e.FireTime).UTC())
			}
		}
		return out
	}
	// within 3h of now: the fires at -2h, -1h and 0h (-3h only if now is on the hour)
	waitFor(t, 20*time.Second, "three catch-up runs", func() bool { return len(catchups()) >= 3 })
	got := catchups()
	want := now.Truncate(time.Hour)
	if !got[len(got)-1].Equal(want) || len(got) > 4 {
		t.Errorf("catch-up fires %v, want ending at %v", got, want)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Sub(got[i-1]) != time.Hour {
			t.Errorf("catch-up fires %v: not in order, one hour apart", got)
		}
	}
}

// TestStopAndResume: a stop while a task runs lets it finish within the
// grace and exits cleanly; a task that outlives the grace is interrupted
// and the next daemon resumes its run.
func TestStopAndResume(t *testing.T) {
	const resumable = `name: resumable
tasks:
  - name: work
    type: shell
    config:
      command: |
        if [ -f "$MARK" ]; then exit 0; fi
        touch "$MARK"; sleep 30
env:
  MARK: ""
`
	td := newTestDaemon(t, map[string]string{"r.yaml": resumable})
	mark := filepath.Join(t.TempDir(), "mark")
	td.write("r.yaml", strings.Replace(resumable, `MARK: ""`, "MARK: "+mark, 1))
	td.start(func(o *Options) { o.Engine.Grace = 200 * time.Millisecond })
	resp, err := Call(context.Background(), filepath.Join(td.home, "daemon.sock"), Request{Op: OpTrigger, Workflow: "resumable"})
	if err != nil || !resp.OK {
		t.Fatalf("trigger: %+v %v", resp, err)
	}
	waitFor(t, 10*time.Second, "the task to start", func() bool { _, err := os.Stat(mark); return err == nil })
	if err := td.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if st := finished(td.events())[resp.Run]; st != "" {
		t.Fatalf("run finished as %s; want it interrupted", st)
	}
	td.start(nil)
	waitFor(t, 15*time.Second, "the resumed run to finish", func() bool { return finished(td.events())[resp.Run] == "success" })
	if n := count(td.events(), func(e *journal.Event) bool { return e.Type == journal.RunResumed && e.Run == resp.Run }); n != 1 {
		t.Errorf("%d RunResumed events, want 1", n)
	}
	if !logHas(td, `"msg":"resuming an interrupted run"`) || !logHas(td, `"interrupted_tasks":"work"`) {
		t.Errorf("the resume log does not name the interrupted task:\n%s", td.logs)
	}
}

func TestNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	td := newTestDaemon(t, map[string]string{"manual.yaml": manualWF})
	td.start(func(o *Options) { o.NotifySocket = sock })
	if err := td.stop(); err != nil {
		t.Fatal(err)
	}
	var got []string
	buf := make([]byte, 512)
	_ = l.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(got) < 2 {
		n, err := l.Read(buf)
		if err != nil {
			t.Fatalf("read notify: %v (got %q)", err, got)
		}
		got = append(got, strings.SplitN(string(buf[:n]), "\n", 2)[0])
	}
	if got[0] != "READY=1" || got[1] != "STOPPING=1" {
		t.Errorf("sd_notify messages %q, want READY=1 then STOPPING=1", got)
	}
}

func TestCheckListen(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		public bool
		want   string // "" = error
	}{
		{":9090", false, "127.0.0.1:9090"},
		{"127.0.0.1:9090", false, "127.0.0.1:9090"},
		{"[::1]:9090", false, "[::1]:9090"},
		{"localhost:9090", false, "localhost:9090"},
		{"0.0.0.0:9090", false, ""},
		{"192.0.2.1:9090", false, ""},
		{"0.0.0.0:9090", true, "0.0.0.0:9090"},
		{"9090", false, ""},
	} {
		got, err := CheckListen(tc.addr, tc.public)
		if (err != nil) != (tc.want == "") || got != tc.want {
			t.Errorf("CheckListen(%q, %v) = %q, %v; want %q", tc.addr, tc.public, got, err, tc.want)
		}
	}
}
