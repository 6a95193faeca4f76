package engine

import (
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/picoflow/picoflow/journal"
)

// dumpOutputs is a task command that saves the upstream outputs it sees.
const dumpOutputs = `env | grep '^PICOFLOW_OUT_' | sort > "$T/$PICOFLOW_TASK.env" || true`

// TestOutputsPassToDirectDependents checks the $PICOFLOW_OUTPUT contract:
// KEY=VALUE lines become PICOFLOW_OUT_<TASK>_<KEY> (both parts upper-cased,
// anything but letters and digits made '_') in the direct dependents only,
// and lines that are not KEY=VALUE are reported.
func TestOutputsPassToDirectDependents(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	wf := parse(t, wfYAML("outputs", "", "",
		task{name: "make-archive", cmd: `printf 'FILE=/tmp/a b.tgz\nbytes=42\nEMPTY=\nnot a pair\nEQ=a=b\n' > "$PICOFLOW_OUTPUT"`},
		task{name: "verify", cmd: dumpOutputs + `; echo "CHECKED=$PICOFLOW_OUT_MAKE_ARCHIVE_FILE" >> "$PICOFLOW_OUTPUT"`,
			deps: []string{"make-archive"}},
		task{name: "report", cmd: dumpOutputs, deps: []string{"verify"}},
	))
	r := h.start(wf)
	if r.Status != RunSuccess {
		t.Fatalf("run %s: %s", r.Status, failures(r))
	}
	tests := []struct {
		task string
		want []string
	}{
		{"verify", []string{
			"PICOFLOW_OUT_MAKE_ARCHIVE_BYTES=42",
			"PICOFLOW_OUT_MAKE_ARCHIVE_EMPTY=",
			"PICOFLOW_OUT_MAKE_ARCHIVE_EQ=a=b",
			"PICOFLOW_OUT_MAKE_ARCHIVE_FILE=/tmp/a b.tgz",
		}},
		// report depends on verify only: make-archive's outputs are not its.
		{"report", []string{"PICOFLOW_OUT_VERIFY_CHECKED=/tmp/a b.tgz"}},
	}
	for _, tc := range tests {
		b, err := os.ReadFile(filepath.Join(h.work, tc.task+".env"))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Split(strings.TrimRight(string(b), "\n"), "\n"); !slices.Equal(got, tc.want) {
			t.Errorf("%s saw\n  %s\nwant\n  %s", tc.task, strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
		}
	}
	fin := filter(h.events(), journal.TaskFinished, "make-archive")
	if len(fin) != 1 {
		t.Fatalf("make-archive finished %d times", len(fin))
	}
	want := map[string]string{"FILE": "/tmp/a b.tgz", "bytes": "42", "EMPTY": "", "EQ": "a=b"}
	if !maps.Equal(fin[0].Outputs, want) {
		t.Errorf("journaled outputs %v, want %v", fin[0].Outputs, want)
	}
	if !strings.Contains(fin[0].Reason, "1 line(s) of $PICOFLOW_OUTPUT are not KEY=VALUE") {
		t.Errorf("reason %q, want a warning about the bad line", fin[0].Reason)
	}
}

// TestLargeOutputIsCapped checks that a 1 MB $PICOFLOW_OUTPUT neither hangs
// the run nor reaches the journal or the environment whole: it is cut to
// OutputCap at a line boundary, with a warning in the event's reason.
func TestLargeOutputIsCapped(t *testing.T) {
	const line = 58 // "K00000=" + 50 digits + "\n"
	tests := []struct {
		name string
		cmd  string
		keys int
	}{
		{name: "many-lines", cmd: `awk 'BEGIN { for (i = 0; i < 20000; i++) printf "K%05d=%050d\n", i, i }' > "$PICOFLOW_OUTPUT"`,
			keys: OutputCap / line},
		{name: "one-long-line", cmd: `printf 'BIG=' > "$PICOFLOW_OUTPUT"; head -c 1048576 /dev/zero | tr '\0' x >> "$PICOFLOW_OUTPUT"`,
			keys: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHome(t)
			wf := parse(t, wfYAML("big", "", "",
				task{name: "big", cmd: tc.cmd},
				task{name: "next", cmd: `env | grep -c '^PICOFLOW_OUT_BIG_' > "$T/count" || true`, deps: []string{"big"}}))
			r := h.start(wf)
			if r.Status != RunSuccess {
				t.Fatalf("run %s: %s", r.Status, failures(r))
			}
			fin := filter(h.events(), journal.TaskFinished, "big")
			if len(fin) != 1 {
				t.Fatalf("big finished %d times", len(fin))
			}
			e := fin[0]
			if !strings.Contains(e.Reason, "larger than 64 KiB") {
				t.Errorf("reason %q, want the cap warning", e.Reason)
			}
			if len(e.Outputs) != tc.keys {
				t.Errorf("%d outputs kept, want %d", len(e.Outputs), tc.keys)
			}
			if p, _ := json.Marshal(e); len(p) > OutputCap+OutputCap/2 {
				t.Errorf("the event is %d bytes in the journal", len(p))
			}
			b, err := os.ReadFile(filepath.Join(h.work, "count"))
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := strconv.Atoi(strings.TrimSpace(string(b))); n != tc.keys {
				t.Errorf("the dependent saw %d outputs, want %d", n, tc.keys)
			}
		})
	}
}

// TestFailedAttemptsLeaveNoOutputFile: only a success passes its outputs
// on; what a failed or timed-out attempt wrote to
// $PICOFLOW_OUTPUT (a secret's value, say) does not stay in the logs.
func TestFailedAttemptsLeaveNoOutputFile(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	wf := parse(t, wfYAML("leftovers", "", "",
		task{name: "fails", cmd: `echo token=s3cret >> "$PICOFLOW_OUTPUT"; exit 1`},
		task{name: "times-out", cmd: `echo token=s3cret >> "$PICOFLOW_OUTPUT"; exec sleep 60`, extra: "timeout: 200ms"},
		task{name: "ok", cmd: `echo token=s3cret >> "$PICOFLOW_OUTPUT"`},
	))
	if r := h.start(wf); r.Status != RunFailed {
		t.Fatalf("run %s, want failed", r.Status)
	}
	var left []string
	err := filepath.WalkDir(filepath.Join(h.dir, "logs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".out") {
			left = append(left, filepath.Base(p))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("output files left in the logs: %v", left)
	}
}

// TestUserTaskOutputs: a task that runs as another user passes its outputs
// on like any other, although the run's log directory is root's alone.
func TestUserTaskOutputs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root")
	}
	t.Parallel()
	h := newHome(t)
	wf := parse(t, wfYAML("user-outputs", "", "",
		task{name: "a", cmd: `echo k=v >> "$PICOFLOW_OUTPUT"`, extra: "user: nobody"},
		task{name: "b", cmd: `test "$PICOFLOW_OUT_A_K" = v`, deps: []string{"a"}},
	))
	if r := h.start(wf); r.Status != RunSuccess {
		t.Fatalf("run %s: %s", r.Status, failures(r))
	}
}
