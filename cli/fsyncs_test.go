//go:build linux

package cli

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/picoflow/picoflow/cli/internal/lazyfs"
)

// TestOneTaskRunFsyncs counts the fsyncs of a one-task run on lazyfs
// (issue 16: at most four). In a new home four directories gain a name,
// and each name is durable only once its directory is fsynced: HOME's
// parent (HOME), HOME (journal), HOME/journal (the layout marker and the
// workflow's journal, one fsync for both) and the workflow's journal (its
// first segment); then the segment once, when the run ends, and once
// more by the wal's Close, which always fsyncs (it finds nothing dirty).
// The directories are the least a power cut allows in this layout
// (TestPowerCutScenarios/first-run-of-a-new-home cuts after each of
// them). In a home that has the journal, which its last writer closed:
// the segment only (the directory's names were durable when it closed).
// The sync window is long here, so that a slow machine adds no fsync the
// window would.
func TestOneTaskRunFsyncs(t *testing.T) {
	if why := lazyfs.Unavailable(); why != "" {
		t.Skip("fsync count skipped: " + why)
	}
	tr := bareTrial(t, buildPicoflow(t), 1, &plStats{})
	cfg := filepath.Join(tr.dir, "config.yaml") // outside the mount
	if err := os.WriteFile(cfg, []byte("resources:\n  sync_window: 1s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := writeWorkflow(t, tr.dir, "one", "", spec{name: "a", cmd: "true"})
	for _, c := range []struct {
		name        string
		dirs, files int
	}{
		{"new-home", 4, 2},
		{"home-with-the-journal", 0, 2},
	} {
		before := tr.fs.Stats()
		if code, out, errs := tr.cmd("run", file, "--config", cfg); code != ExitOK {
			t.Fatalf("%s: run exited %d\n%s%s", c.name, code, out, errs)
		}
		after := tr.fs.Stats()
		dirs, files := after.DirSyncs-before.DirSyncs, after.FileSyncs-before.FileSyncs
		if dirs != c.dirs || files != c.files {
			t.Errorf("%s: %d directory and %d file fsyncs, want %d and %d", c.name, dirs, files, c.dirs, c.files)
		}
	}
}

// TestPowerCutWhileTheFirstTaskRuns cuts the power while the first task
// of a new home's first run is running: a task starts only once every
// directory its run's recovery needs has a durable name (HOME's parent,
// HOME, HOME/journal and the workflow's journal; the layout's fsyncs run
// beside the journal's opening and the engine's start, heldJournal), so
// they and the layout marker are all there when the power comes back.
// The task holds the run by opening a FIFO outside the mount, which the
// test opens too: the open returns once the task is running.
func TestPowerCutWhileTheFirstTaskRuns(t *testing.T) {
	if why := lazyfs.Unavailable(); why != "" {
		t.Skip("power cut skipped: " + why)
	}
	tr := bareTrial(t, buildPicoflow(t), 1, &plStats{})
	fifo := filepath.Join(tr.dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	file := writeWorkflow(t, tr.dir, "first", "", spec{name: "a", cmd: `cat "$T/fifo" >/dev/null`})
	p := tr.start("run", file)
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0) // returns once the task reads it
	if err != nil {
		t.Fatal(err)
	}
	tr.fs.Cut()
	w.Close()
	tr.wait(p)
	tr.powerCut()
	for _, d := range []string{tr.home, filepath.Join(tr.home, "journal"), journalDir(tr.home, "first"), home(tr.home).layoutMarker()} {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			t.Errorf("after a power cut while the first task ran: %s is gone (%v)", d, err)
		}
	}
}
