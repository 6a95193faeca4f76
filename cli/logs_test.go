package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
	"github.com/picoflow/picoflow/projector/projectortest"
)

func TestLogs(t *testing.T) {
	home := scenarioHome(t)
	if err := os.Remove(filepath.Join(home, "logs", "backup", projectortest.BackupOK, "upload.1.log")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string // the whole output
		stderr string // a part of it
	}{
		{"latest run and attempt", []string{"logs", "report", "fetch"}, 0,
			"fetch attempt 1: working\nfetch attempt 1: done\n", "run " + projectortest.ReportOK + ", fetch attempt 1 (success)"},
		{"latest attempt of a run", []string{"logs", "report", "fetch", "--run", projectortest.ReportFailed}, 0,
			"fetch attempt 2: working\nfetch attempt 2: done\n", "fetch attempt 2 (failed)"},
		{"given attempt", []string{"logs", "report", "fetch", "--run", projectortest.ReportFailed, "--attempt", "1"}, 0,
			"fetch attempt 1: working\nfetch attempt 1: done\n", "fetch attempt 1 (failed)"},
		{"skips runs that did not run the task", []string{"logs", "backup", "compress"}, 0,
			"compress attempt 1: working\ncompress attempt 1: done\n", projectortest.BackupLive + ", compress attempt 1 (running)"},
		{"no such task", []string{"logs", "backup", "nope"}, ExitNotFound, "", "no task nope of workflow backup has run"},
		{"no such attempt", []string{"logs", "report", "fetch", "--run", projectortest.ReportOK, "--attempt", "3"}, ExitNotFound, "",
			"no attempt 3 of task fetch of workflow report in run " + projectortest.ReportOK},
		{"log removed", []string{"logs", "backup", "upload"}, ExitNotFound, "", "is gone"},
		{"usage", []string{"logs", "backup"}, ExitUsage, "", "needs WORKFLOW and TASK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := pf(t, home, tc.args...)
			if r.code != tc.code || r.stdout != tc.stdout || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("exit %d, stdout %q, stderr %q\nwant %d, %q, %q", r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

func fastFollow(t *testing.T, home string) {
	tune(t, home, func(m *Main) { m.FollowPoll, m.FollowJournalPoll = 10*time.Millisecond, 50*time.Millisecond })
}

// TestLogsFollow follows the running compress attempt of the live backup
// run while the test, as its picoflow, writes output and then finishes it.
func TestLogsFollow(t *testing.T) {
	home := scenarioHome(t)
	fastFollow(t, home)
	release, err := holdWorkflow(home, "backup")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	logPath := filepath.Join(home, "logs", "backup", projectortest.BackupLive, "compress.1.log")
	go func() {
		time.Sleep(150 * time.Millisecond)
		f, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			return
		}
		f.WriteString("more output\n")
		f.Close()
		time.Sleep(150 * time.Millisecond)
		j, err := journal.Open(filepath.Join(home, "journal"), journal.Options{})
		if err != nil {
			t.Error(err)
			return
		}
		defer j.Close()
		f, _ = os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
		f.WriteString("last words\n")
		f.Close()
		err = j.Append(&journal.Event{Type: journal.TaskFinished, Time: projectortest.T0.Add(3 * time.Hour).UnixNano(),
			Run: projectortest.BackupLive, Task: "compress", Attempt: 1, Status: journal.StatusSuccess})
		if err != nil {
			t.Error(err)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := pfCtx(ctx, t, home, "logs", "backup", "compress", "--follow")
	if ctx.Err() != nil {
		t.Fatal("follow did not stop when the attempt finished")
	}
	want := "compress attempt 1: working\ncompress attempt 1: done\nmore output\nlast words\n"
	if r.code != 0 || r.stdout != want || !strings.Contains(r.stderr, "attempt 1 of compress ended: success") {
		t.Fatalf("exit %d\nstdout %q\nwant   %q\nstderr %s", r.code, r.stdout, want, r.stderr)
	}
}

func TestLogsFollowInterruptedRun(t *testing.T) {
	home := scenarioHome(t)
	fastFollow(t, home)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := pfCtx(ctx, t, home, "logs", "backup", "compress", "-f")
	if ctx.Err() != nil || r.code != 0 || !strings.Contains(r.stderr, "is interrupted: no process runs it") {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
}

func TestLogsFollowStopsOnCancel(t *testing.T) {
	home := scenarioHome(t)
	fastFollow(t, home)
	release, err := holdWorkflow(home, "backup")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := pfCtx(ctx, t, home, "logs", "backup", "compress", "--follow")
	if r.code != 0 || time.Since(start) > 5*time.Second {
		t.Fatalf("exit %d after %s: %s", r.code, time.Since(start), r.stderr)
	}
}
