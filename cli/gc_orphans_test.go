//go:build linux

package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/cli/internal/lazyfs"
	"github.com/picoflow/picoflow/journal"
)

// TestGCOrphanLogDirAfterPowerCut cuts the power under a foreground run
// whose run_started is not durable yet (it is written lazily, and the sync
// window is 1 s) after the directory entries of its log directory reached
// the disk (the task fsyncs them, as the kernel's writeback may at any
// moment): the run is gone, its empty log directory is not. gc --dry-run
// reports it, gc removes it.
func TestGCOrphanLogDirAfterPowerCut(t *testing.T) {
	if why := lazyfs.Unavailable(); why != "" {
		t.Skip("power-cut scenarios skipped: " + why)
	}
	bin := buildPicoflow(t)
	var sum plStats
	for try := 1; ; try++ {
		if try == 6 {
			t.Fatal("the run's run_started was durable before every cut: the 1 s sync window passed each time")
		}
		tr := bareTrial(t, bin, uint64(try), &sum)
		run, orphan := tr.loseLazyStart()
		if orphan == "" {
			t.Logf("try %d: run %s was durable before the cut; again", try, run)
			continue
		}
		cfg := filepath.Join(tr.dir, "config.yaml")
		code, out, errs := tr.cmd("gc", "--dry-run", "--config", cfg)
		if code != ExitOK || !strings.Contains(out, "would remove the log directories of 1 run(s) (orph 1) that never got into the journal") {
			t.Fatalf("gc --dry-run: exit %d\n%s%s", code, out, errs)
		}
		if !exists_(orphan) {
			t.Fatal("gc --dry-run removed the orphan log directory")
		}
		code, out, errs = tr.cmd("gc", "--config", cfg)
		if code != ExitOK || !strings.Contains(out, "removed the log directories of 1 run(s) (orph 1) that never got into the journal") {
			t.Fatalf("gc: exit %d\n%s%s", code, out, errs)
		}
		if exists_(orphan) {
			t.Fatalf("gc left the log directory %s of run %s, which no journal holds", orphan, run)
		}
		t.Logf("try %d: gc removed %s", try, orphan)
		return
	}
}

// loseLazyStart runs a workflow whose task makes its log directory's name
// durable and waits, cuts the power once it did, and returns the run and,
// when the run_started was lost and the directory kept, the directory.
func (tr *trial) loseLazyStart() (run, orphan string) {
	t := tr.t
	synced := filepath.Join(tr.dir, "synced")
	h := tr.home
	// The directories up to the run's: its own name is durable, not what
	// is in it (it comes back empty, rule 2 of lazyfs).
	cmd := fmt.Sprintf(`sync %q %q %q && echo $PICOFLOW_RUN_ID > %q && sleep 600`,
		h, filepath.Join(h, "logs"), filepath.Join(h, "logs", "orph"), synced)
	file := writeWorkflow(t, tr.dir, "orph", "", spec{name: "hold", cmd: cmd})
	cfg := filepath.Join(tr.dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("resources:\n  sync_window: 1s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := tr.start("run", "--config", cfg, file)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pollUntil(ctx, t, "the task never synced its log directory", func() bool {
		b, _ := os.ReadFile(synced)
		run = strings.TrimSpace(string(b))
		return run != "" || p.exited()
	})
	if run == "" {
		t.Fatalf("run exited %d before its task synced\n%s%s", p.code, &p.stdout, &p.stderr)
	}
	tr.fs.Cut()
	tr.killAll()
	if err := tr.fs.PowerCut(lazyfs.Clear, tr.rnd); err != nil {
		t.Fatal(err)
	}
	tr.fs = nil
	tr.mount()
	tr.wait(p)
	dir := filepath.Join(h, "logs", "orph", run)
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Fatalf("after the cut, log directory %s: %v %v; want it there and empty", dir, ents, err)
	}
	lost := true
	err := journal.Scan(journalDir(h, "orph"), journal.ScanOptions{}, func(e *journal.Event) error {
		if e.Run == run {
			lost = false
			return journal.ErrStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, journal.ErrStop) {
		t.Fatal(err)
	}
	if !lost {
		return run, ""
	}
	return run, dir
}

// TestGCKeepsLiveRunLogs runs gc while a foreground run holds its
// workflow's journal, its run_started not fsynced yet (a 1 s sync window)
// and its task running: gc must leave the run's log directory, and the run
// finishes with its log.
func TestGCKeepsLiveRunLogs(t *testing.T) {
	bin := testBinary(t)
	dir := t.TempDir()
	hm := filepath.Join(dir, "home")
	release := filepath.Join(dir, "release")
	file := writeWorkflow(t, dir, "live", "", spec{name: "hold",
		cmd: `echo held; while [ ! -e "$T/release" ]; do sleep 0.01; done; echo released`})
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("resources:\n  sync_window: 1s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := start(t, bin, "run", "--home", hm, "--config", cfg, file)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var logs []string
	pollUntil(ctx, t, "the task never started", func() bool {
		logs, _ = filepath.Glob(filepath.Join(hm, "logs", "live", "*", "hold.1.log"))
		return len(logs) == 1
	})
	gc := start(t, bin, "gc", "--home", hm, "--config", cfg)
	if code := gc.wait(t); code != ExitOK || strings.Contains(gc.stdout.String(), "never got into the journal") {
		t.Fatalf("gc during a live run: exit %d\n%s%s", code, &gc.stdout, &gc.stderr)
	}
	if !exists_(filepath.Dir(logs[0])) {
		t.Fatalf("gc removed the log directory of the live run: %s", filepath.Dir(logs[0]))
	}
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code := c.wait(t); code != ExitOK {
		t.Fatalf("run: exit %d\n%s%s", code, &c.stdout, &c.stderr)
	}
	if b, err := os.ReadFile(logs[0]); err != nil || !strings.Contains(string(b), "released") {
		t.Fatalf("log of the live run after gc: %q %v", b, err)
	}
}
