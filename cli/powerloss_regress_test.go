//go:build linux

package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/picoflow/picoflow/cli/internal/lazyfs"
)

// TestPowerCutScenarios replays, deterministically, each missing fsync the
// power-loss torture (TestPowerLoss) found, and the protocols it must keep
// safe: do something with the binary on lazyfs, cut the power right after
// its k-th fsync (k = 1, 2, ... until the command finishes first; k = 0:
// after the command) so that only fsynced data stays, mount again and
// check what must have survived. Each case is named after its scenario.
func TestPowerCutScenarios(t *testing.T) {
	if why := lazyfs.Unavailable(); why != "" {
		t.Skip("power-cut scenarios skipped: " + why)
	}
	bin := buildPicoflow(t)
	cases := []struct {
		name string
		// setup runs first (nothing is cut); do is the command under the
		// cut; check runs after the power came back.
		setup func(tr *trial)
		do    []string
		check func(tr *trial, k int, done bool)
	}{
		{
			// HOME, HOME/locks and HOME/journal were created without an
			// fsync of their parents: the first run of a new home vanished
			// with the whole home, though run had printed it as started.
			name: "first-run-of-a-new-home",
			setup: func(tr *trial) {
				tr.file = writeWorkflow(tr.t, tr.dir, "first", "", spec{name: "a", cmd: `echo a/$PICOFLOW_RUN_ID >> "$T/ledger"`},
					spec{name: "b", cmd: `echo b/$PICOFLOW_RUN_ID >> "$T/ledger"`, deps: []string{"a"}})
			},
			do: []string{"run", "FILE"},
			check: func(tr *trial, k int, done bool) {
				// b started only after a's success was durable: then the
				// run must be there, and finish without running a again
				// (after the run's end, run starts a new run: another id).
				before := len(readLedger(tr.t, tr.dir))
				code, out, errs := tr.cmd("run", tr.file)
				if code != ExitOK {
					tr.t.Fatalf("cut after fsync %d: run exited %d\n%s%s", k, code, out, errs)
				}
				lines := readLedger(tr.t, tr.dir)
				for _, l := range lines[before:] {
					run := strings.TrimPrefix(l, "a/")
					if run != l && slices.Contains(lines[:before], "b/"+run) {
						tr.t.Errorf("cut after fsync %d: a ran again in run %s after b had started: %v", k, run, lines)
					}
				}
				tr.checkProjection(fmt.Sprintf("cut after fsync %d", k))
				for run := range tr.runs {
					if r := tr.replay(run); r == nil {
						tr.t.Errorf("cut after fsync %d: run %s was printed as started and is gone", k, run)
					}
				}
			},
		},
		{
			// gc deletes runs' rows, then cuts the journal's front: the
			// two must not disagree whatever instant the power goes.
			name: "gc-deletes-rows-then-truncates-the-journal",
			setup: func(tr *trial) {
				tr.file = writeWorkflow(tr.t, tr.dir, "kept", "", spec{name: "a", cmd: "true"},
					spec{name: "b", cmd: "true", deps: []string{"a"}})
				for range 2 {
					if code, out, errs := tr.cmd("run", tr.file); code != ExitOK {
						tr.t.Fatalf("run exited %d\n%s%s", code, out, errs)
					}
				}
				cfg := filepath.Join(tr.dir, "config.yaml")
				if err := os.WriteFile(cfg, []byte("retention:\n  max_runs_per_workflow: 1\n"), 0o644); err != nil {
					tr.t.Fatal(err)
				}
			},
			do: []string{"gc", "--config", "CONFIG"},
			check: func(tr *trial, k int, done bool) {
				tr.checkProjection(fmt.Sprintf("cut after fsync %d", k))
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { cutAfterEachFsync(t, bin, c.setup, c.do, c.check) })
	}
}

// cutAfterEachFsync runs do on a fresh home prepared by setup, cuts the
// power right after its k-th fsync, then calls check; for k = 1, 2, ...
// until do finishes before its k-th fsync (then the cut comes after it).
func cutAfterEachFsync(t *testing.T, bin string, setup func(*trial), do []string, check func(*trial, int, bool)) {
	var sum plStats
	for k := 1; ; k++ {
		if k == 200 {
			t.Fatal("the command never finished")
		}
		tr := bareTrial(t, bin, uint64(k), &sum)
		setup(tr)
		args := strings.NewReplacer("FILE", tr.file, "CONFIG", filepath.Join(tr.dir, "config.yaml"))
		var argv []string
		for _, a := range do {
			argv = append(argv, args.Replace(a))
		}
		fired := tr.fs.CutAfterSyncs(k)
		code, out, errs := tr.cmd(argv...)
		for _, m := range runIDRe.FindAllStringSubmatch(out, -1) {
			tr.runs[m[1]] = true // printed as started: durable
		}
		done := true
		select {
		case <-fired:
			done = false
		default:
			tr.fs.CutAfterSyncs(0)
			if code != ExitOK {
				t.Fatalf("%v exited %d\n%s%s", argv, code, out, errs)
			}
		}
		tr.powerCut()
		check(tr, k, done)
		if t.Failed() {
			t.Logf("%v: the power was cut right after fsync %d", argv, k)
			return
		}
		if done {
			t.Logf("%v made %d fsyncs; the power was cut after each", argv, k-1)
			return
		}
	}
}
