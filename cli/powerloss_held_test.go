//go:build linux

package cli

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/picoflow/picoflow/cli/internal/lazyfs"
)

// TestPowerCutHeldSync is TestPowerLoss with every cut of a picoflow run
// landing while one of its fsyncs is held (lazyfs.HoldSyncs): a window's
// Sync beside the loop, a durable batch, a segment's roll or a directory's
// fsync, the n-th of the run for a random n. While it is held, the tasks
// already started go on and end (they append to the ledger outside the
// file system), and what picoflow may do without that fsync it does; then
// the power goes. TestPowerLoss's checks hold after the resumes: no task
// whose success was reported (its "ok" line, a dependent's start, exit 0)
// runs again, no idempotent: false task runs twice, every run finishes
// and succeeds, history agrees with replay.
//
// PICOFLOW_HELDCUT_TRIALS (default 2) and PICOFLOW_HELDCUT_SEED choose the
// trials; trial i uses seed+i.
func TestPowerCutHeldSync(t *testing.T) {
	if why := lazyfs.Unavailable(); why != "" {
		t.Skip("held-sync power-cut test skipped: " + why)
	}
	n, seed, _ := tortureRand(t, "PICOFLOW_HELDCUT", "TRIALS", 2, "TestPowerCutHeldSync", 0)
	bin := buildPicoflow(t)
	var sum plStats
	held := 0
	for i := range uint64(n) {
		s := seed + i
		ok := t.Run(fmt.Sprintf("seed-%d", s), func(t *testing.T) {
			tr := newTrial(t, bin, s, &sum)
			tr.heldCuts = &held
			tr.run()
		})
		if !ok {
			break
		}
	}
	t.Logf("%d trials, %d power cuts (%d with an fsync held), %d runs, %d resolves, %d daemon starts; %d violations",
		sum.trials, sum.cuts, held, sum.runs, sum.resolves, sum.daemons, sum.violations)
}

// heldCut lets p's fsyncs through one at a time up to a random one, holds
// that one while the ledger grows by up to a few lines (at most 200 ms:
// picoflow may need it to go on), and cuts the power. It reports whether
// it cut (p may exit first).
func (tr *trial) heldCut(p *proc) bool {
	// A run of n tasks fsyncs some 2n times.
	if !tr.holdNth(p.done, tr.rnd.IntN(2+2*len(tr.tasks)), func() string {
		return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", p.code, &p.stdout, &p.stderr)
	}) {
		return false
	}
	target := len(tr.ledger()) + tr.rnd.IntN(4)
	for i := 0; i < 200 && len(tr.ledger()) < target && !p.exited(); i++ {
		time.Sleep(time.Millisecond)
	}
	tr.fs.Cut() // the fsync held, and every one after it, fails
	tr.fs.Release()
	*tr.heldCuts++
	tr.powerCut()
	return true
}

// holdNth holds every fsync from now on and lets pass of them through,
// one at a time, then holds the next. It reports false, with the gate open again, when the process
// whose done it is exits first (what says how it ended).
func (tr *trial) holdNth(done <-chan struct{}, pass int, what func() string) bool {
	tr.fs.HoldSyncs()
	for passed := 0; ; {
		n, changed := tr.fs.Waiting()
		if n > 0 {
			if passed == pass {
				return true
			}
			if !tr.fs.PassUnless(done) {
				// An fsync counted held, and the process gone: only its
				// exit ends one (Go retries an fsync that EINTR ended).
				n, _ := tr.fs.Waiting()
				tr.violation("picoflow exited with %d fsync(s) held: %s", n, what())
				tr.fs.Release()
				return false
			}
			passed++
			continue
		}
		select {
		case <-changed:
		case <-done:
			tr.fs.Release()
			return false
		case <-time.After(time.Minute):
			tr.t.Fatalf("seed %d: picoflow neither fsyncs nor exits: %s", tr.seed, what())
		}
	}
}

// TestPowerCutSegmentRolls is TestPowerLoss with outputs of 30 to 63 KB
// per task and three runs, so that the journal's task_finished entries
// fill a 1 MiB segment every ~20 tasks and the wal starts segments in the
// middle of runs: lazily written ends cross a roll (the wal fsyncs the segment it
// leaves; the new one's name is durable only with the directory's fsync,
// which the window's Sync must do instead of its tail-only fsync), and the
// power goes at random instants, or, in every other trial, with a random
// fsync held (heldCut). TestPowerLoss's checks hold after the resumes,
// and `picoflow journal verify` passes.
//
// PICOFLOW_ROLLCUT_TRIALS (default 2) and PICOFLOW_ROLLCUT_SEED choose
// the trials; trial i uses seed+i.
func TestPowerCutSegmentRolls(t *testing.T) {
	if why := lazyfs.Unavailable(); why != "" {
		t.Skip("segment-roll power-cut test skipped: " + why)
	}
	n, seed, _ := tortureRand(t, "PICOFLOW_ROLLCUT", "TRIALS", 2, "TestPowerCutSegmentRolls", 0)
	bin := buildPicoflow(t)
	var sum plStats
	held, segs := 0, 0
	for i := range uint64(n) {
		s := seed + i
		ok := t.Run(fmt.Sprintf("seed-%d", s), func(t *testing.T) {
			tr := bareTrial(t, bin, s, &sum)
			tr.cutsLeft = 2 + tr.rnd.IntN(3)
			tr.bigOutputs = true
			if i%2 == 1 {
				tr.heldCuts = &held
			}
			tr.tasks = tr.shape()
			tr.writeWorkflow()
			sum.trials++
			for range 3 {
				tr.runCLI()
			}
			if tr.t.Failed() {
				return
			}
			tr.finishAll()
			tr.checkLedger()
			tr.checkHome()
			if code, out, errs := tr.cmd("journal", "verify", "pl"); code != ExitOK {
				tr.violation("journal verify exited %d\n%s%s", code, out, errs)
			}
			names, _ := filepath.Glob(filepath.Join(tr.backing, "home", "journal", "pl", "0*"))
			segs += len(names)
		})
		if !ok {
			break
		}
	}
	t.Logf("%d trials, %d power cuts (%d with an fsync held), %d runs, %d resolves; %d segments at the ends; %d violations",
		sum.trials, sum.cuts, held, sum.runs, sum.resolves, segs, sum.violations)
}

// daemonHeldCut holds a random fsync of the daemon p among its first ~30
// (its scheduled runs of the trial's workflow), lets the tasks already
// started go on for up to 200 ms, and cuts the power. It reports false
// after a violation (the daemon exited).
func (tr *trial) daemonHeldCut(p *proc) bool {
	what := func() string { return fmt.Sprintf("daemon exit %d\n--- stderr\n%s", p.code, &p.stderr) }
	if !tr.holdNth(p.done, tr.rnd.IntN(30), what) {
		if !tr.t.Failed() {
			tr.violation("%s", what())
		}
		return false
	}
	target := len(tr.ledger()) + tr.rnd.IntN(4)
	for i := 0; i < 200 && len(tr.ledger()) < target && !p.exited(); i++ {
		time.Sleep(time.Millisecond)
	}
	tr.fs.Cut()
	tr.fs.Release()
	*tr.heldCuts++
	tr.powerCut()
	return true
}
