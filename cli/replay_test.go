package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
)

var updateReplay = flag.Bool("update-replay", false, "rewrite the replay golden files")

const replayDef = `name: nightly
tasks:
  - name: fetch
    type: shell
    config: {command: "true"}
  - name: build
    type: shell
    depends_on: [fetch]
    retry: 2
    config: {command: "make"}
  - name: publish
    type: shell
    depends_on: [build]
    idempotent: false
    config: {command: "publish"}
  - name: notify
    type: shell
    depends_on: [publish]
    config: {command: "notify"}
`

// writeReplayFixture writes the journal of a run that retried, was
// interrupted by a crash, resumed, and finished. It is generated only when
// absent: once committed it is a compatibility fixture.
func writeReplayFixture(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); err == nil {
		return
	}
	j, err := journal.Open(dir, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(dir, "LOCK")) // a fixture holds entries only
	}()
	base := time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)
	at := func(ms int) int64 { return base.Add(time.Duration(ms) * time.Millisecond).UnixNano() }
	const run = "20261125-020000-a1b2"
	evs := []*journal.Event{
		{Type: journal.RunStarted, Time: at(0), Run: run, Workflow: "nightly", DefHash: "5d41402abc4b2a76b9719d911017c592aaaa", Definition: replayDef, Source: "/etc/picoflow/workflows/nightly.yaml", Trigger: "schedule"},
		{Type: journal.TaskStarted, Time: at(1), Run: run, Task: "fetch", Attempt: 1, LogPath: "/var/lib/picoflow/logs/nightly/" + run + "/fetch.1.log"},
		{Type: journal.TaskProcess, Time: at(3), Run: run, Task: "fetch", Attempt: 1, PGID: 4242},
		{Type: journal.TaskFinished, Time: at(850), Run: run, Task: "fetch", Attempt: 1, Status: journal.StatusSuccess, DurationMS: 849, Outputs: map[string]string{"REV": "abc123"}},
		{Type: journal.TaskStarted, Time: at(851), Run: run, Task: "build", Attempt: 1, LogPath: "/var/lib/picoflow/logs/nightly/" + run + "/build.1.log"},
		{Type: journal.TaskRetrying, Time: at(2100), Run: run, Task: "build", Attempt: 1, Status: journal.StatusFailed, ExitCode: 2, Error: "exit status 2", DurationMS: 1249, Tail: "cc -c main.c\nmain.c:3: error: expected ';'\n", RetryAt: at(3100), BackoffMS: 1000},
		{Type: journal.TaskStarted, Time: at(3101), Run: run, Task: "build", Attempt: 2, LogPath: "/var/lib/picoflow/logs/nightly/" + run + "/build.2.log"},
		{Type: journal.TaskFinished, Time: at(5000), Run: run, Task: "build", Attempt: 2, Status: journal.StatusSuccess, DurationMS: 1899},
		{Type: journal.TaskStarted, Time: at(5001), Run: run, Task: "publish", Attempt: 1, LogPath: "/var/lib/picoflow/logs/nightly/" + run + "/publish.1.log"},
		// power loss here; the next process takes over a minute later
		{Type: journal.RunResumed, Time: at(65000), Run: run},
		{Type: journal.TaskInDoubt, Time: at(65000), Run: run, Task: "publish", Attempt: 1, Reason: "interrupted while running and not idempotent: settle it with picoflow resolve"},
		{Type: journal.TaskResolved, Time: at(90000), Run: run, Task: "publish", Attempt: 1, Status: "rerun", Reason: "checked: nothing was published"},
		{Type: journal.RunResumed, Time: at(91000), Run: run},
		{Type: journal.TaskStarted, Time: at(91001), Run: run, Task: "publish", Attempt: 2, Resumed: true, LogPath: "/var/lib/picoflow/logs/nightly/" + run + "/publish.2.log"},
		{Type: journal.TaskFinished, Time: at(93000), Run: run, Task: "publish", Attempt: 2, Status: journal.StatusSuccess, DurationMS: 1999},
		{Type: journal.TaskStarted, Time: at(93001), Run: run, Task: "notify", Attempt: 1, LogPath: "/var/lib/picoflow/logs/nightly/" + run + "/notify.1.log"},
		{Type: journal.TaskFinished, Time: at(93200), Run: run, Task: "notify", Attempt: 1, Status: journal.StatusSuccess, DurationMS: 199},
		{Type: journal.RunFinished, Time: at(93201), Run: run, Status: journal.StatusSuccess, DurationMS: 93201},
	}
	for _, e := range evs {
		if err := j.Append(e); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReplayGolden(t *testing.T) {
	local := time.Local
	time.Local = time.UTC
	t.Cleanup(func() { time.Local = local })
	src := filepath.Join("testdata", "replay", "journal")
	writeReplayFixture(t, src)
	// Replay reads a copy: it must never need to write, and the fixture
	// must stay byte-identical.
	before := dirBytes(t, src)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"text", nil},
		{"json", []string{"--json"}},
		{"until-seq", []string{"--until", "9"}},
		{"until-time", []string{"--until", "2026-11-25T02:00:03Z"}},
		{"prefix", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "20261125-020000-a1b2"
			if tc.name == "prefix" {
				id = "20261125-02"
			}
			var out, errb bytes.Buffer
			m := &Main{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
			args := append([]string{"replay", "--journal", src, "--home", t.TempDir(), id}, tc.args...)
			if code := m.Run(context.Background(), args); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			golden := filepath.Join("testdata", "replay", tc.name+".golden")
			if tc.name == "prefix" {
				golden = filepath.Join("testdata", "replay", "text.golden")
			}
			if *updateReplay && tc.name != "prefix" {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("output differs from %s (-update-replay to accept):\n%s", golden, out.String())
			}
		})
	}
	if after := dirBytes(t, src); !bytes.Equal(before, after) {
		t.Error("replay changed the journal it read")
	}
}

func TestReplayErrors(t *testing.T) {
	src := filepath.Join("testdata", "replay", "journal")
	writeReplayFixture(t, src)
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"unknown run", []string{"nope"}, ExitNotFound},
		{"bad until", []string{"20261125-020000-a1b2", "--until", "yesterday"}, ExitUsage},
		{"no args", nil, ExitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			m := &Main{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
			args := append([]string{"replay", "--journal", src}, tc.args...)
			if code := m.Run(context.Background(), args); code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, errb.String())
			}
			if errb.Len() == 0 {
				t.Error("no message on stderr")
			}
		})
	}
}

// dirBytes concatenates the names and contents of a directory's files.
func dirBytes(t *testing.T, dir string) []byte {
	t.Helper()
	var b bytes.Buffer
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		b.WriteString(p)
		b.Write(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestReplayJSONFields checks what replay --json says of a run with a
// parameter, a retried failure and a skipped task: the params in
// run_started, no exit code for the skipped task, and each task's duration
// (first start to end) and attempt durations, as history has them.
func TestReplayJSONFields(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	file := writeWorkflow(t, dir, "fields", "{backoff: {initial: 1s}}",
		spec{name: "bad", cmd: "exit 3", extra: "retry: 1"},
		spec{name: "after", cmd: "true", deps: []string{"bad"}})
	res := picoflow(t, "run", "--home", home, "--param", "T="+dir, file)
	m := runIDRe.FindStringSubmatch(res.stdout)
	if res.code != ExitFailed || m == nil {
		t.Fatalf("run: %s", res)
	}
	res = picoflow(t, "replay", "--home", home, "--json", m[1])
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	var start replayEvent
	var final struct {
		Tasks []map[string]any `json:"tasks"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &start); err != nil || start.Params["T"] != dir {
		t.Errorf("run_started %s: params missing (%v)", lines[0], err)
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &final); err != nil || len(final.Tasks) != 2 {
		t.Fatalf("final state %s: %v", lines[len(lines)-1], err)
	}
	bad, after := final.Tasks[0], final.Tasks[1]
	if code, ok := after["exit_code"]; !ok || code != nil {
		t.Errorf("skipped task: exit_code %v, want null", code)
	}
	durs, _ := bad["attempt_durations_ms"].([]any)
	if bad["exit_code"] != float64(3) || len(durs) != 2 || bad["duration_ms"] == nil {
		t.Errorf("failed task %v: want exit 3, two attempt durations and a duration", bad)
	}
	hist := picoflow(t, "history", "--home", home, "--json")
	var runs []runJSON
	if err := json.Unmarshal([]byte(hist.stdout), &runs); err != nil || len(runs) != 1 {
		t.Fatalf("history: %v\n%s", err, hist.stdout)
	}
	ht := runs[0].Tasks[0]
	if ht.DurationMS == nil || float64(*ht.DurationMS) != bad["duration_ms"] || len(ht.AttemptDurationsMS) != 2 ||
		float64(ht.AttemptDurationsMS[1]) != durs[1] {
		t.Errorf("history and replay disagree on task bad: %+v vs %v", ht, bad)
	}
}
