//go:build linux

package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/picoflow/picoflow/cli/internal/lazyfs"
)

// TestPowerCutBigDefinition cuts the power right after each fsync of the
// first run of a workflow whose definition is bigger than a journal
// segment: its run_started is written without the wal, in a segment of
// its own (journal/bigentry.go, A7), then the wal goes on in the next
// segment. After each cut the run must go on to its end: the journal
// opens (a torn big segment is repaired, never reported as damage), a
// non-idempotent task starts at most once, no reported success runs
// again, and a run printed as started is there; in a new home and in
// one whose tail segment holds a finished run.
func TestPowerCutBigDefinition(t *testing.T) {
	if why := lazyfs.Unavailable(); why != "" {
		t.Skip("power-cut scenarios skipped: " + why)
	}
	bin := buildPicoflow(t)
	setup := func(tr *trial) {
		tr.tasks = []plTask{{name: "t00", nonIdem: true},
			{name: "t01", deps: []string{"t00"}}, {name: "t02", deps: []string{"t00"}},
			{name: "t03", deps: []string{"t01", "t02"}, nonIdem: true}}
		tr.writeWorkflow()
		line := "# " + strings.Repeat("x", 97) + "\n"
		tr.wfBytes = append(tr.wfBytes, strings.Repeat(line, (1<<20)/len(line)+2000)...)
		if err := os.WriteFile(tr.file, tr.wfBytes, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := []byte("resources:\n  max_workflow_file: 4MiB\n")
		if err := os.WriteFile(filepath.Join(tr.dir, "config.yaml"), cfg, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	check := func(tr *trial, k int, done bool) {
		when := fmt.Sprintf("cut after fsync %d", k)
		cfg := filepath.Join(tr.dir, "config.yaml")
		for step := 0; ; step++ {
			if step == 10 {
				tr.violation("%s: the run never finished", when)
				return
			}
			code, out, errs := tr.cmd("run", "--config", cfg, tr.file)
			for _, m := range runIDRe.FindAllStringSubmatch(out, -1) {
				tr.runs[m[1]] = true
			}
			if code == ExitOK {
				break
			}
			if code != ExitInDoubt {
				tr.violation("%s: run exited %d\n%s%s", when, code, out, errs)
				return
			}
			for _, r := range tr.history() {
				tr.runs[r.RunID] = true
			}
			tr.resolveAll()
		}
		for run := range tr.runs {
			if tr.replay(run) == nil {
				tr.violation("%s: run %s was printed as started and is gone", when, run)
			}
		}
		if code, out, errs := tr.cmd("journal", "verify", "pl"); code != ExitOK {
			tr.violation("%s: journal verify exited %d\n%s%s", when, code, out, errs)
		}
		tr.checkLedger()
		tr.checkProjection(when)
	}
	do := []string{"run", "--config", "CONFIG", "FILE"}
	t.Run("new-home", func(t *testing.T) { cutAfterEachFsync(t, bin, setup, do, check) })
	// A home with a finished run: the big entry follows entries in the
	// wal's tail segment instead of replacing the empty one.
	t.Run("after-a-run", func(t *testing.T) {
		cutAfterEachFsync(t, bin, func(tr *trial) {
			setup(tr)
			if code, out, errs := tr.cmd("run", "--config", filepath.Join(tr.dir, "config.yaml"), tr.file); code != ExitOK {
				t.Fatalf("run exited %d\n%s%s", code, out, errs)
			}
		}, do, check)
	})
}
