//go:build linux

package cli

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picoflow/picoflow/cli/internal/lazyfs"
)

// TestSignalsWithSyncHeld signals a picoflow run while one of its fsyncs
// is held (lazyfs.HoldSyncs: a window's Sync beside the loop, a durable
// batch, a roll, a directory; the n-th of the run for a random n), as a
// slow or stalled card holds it:
//
//   - kill-9: SIGKILL;
//   - sigint-twice: SIGINT, then SIGINT once the first was taken, with the
//     fsync still held: picoflow must exit ExitForced all the same (the
//     journal's Freeze waits freezeWait at most) and leave no process;
//   - sigterm, sigint: one signal, then the fsync goes through: picoflow
//     stops gracefully (exit 3, or 0 or 4 when the run ended meanwhile).
//
// Then picoflow run resumes the run (or starts it: its start may not
// have been durable) until it succeeds, and TestPowerLoss's ledger checks
// hold: no task whose success was reported ("ok" printed, a dependent
// started) runs again, no idempotent: false task twice without a rerun.
//
// PICOFLOW_HELDSIG_TRIALS (default 1 per signal) and PICOFLOW_HELDSIG_SEED.
func TestSignalsWithSyncHeld(t *testing.T) {
	if why := lazyfs.Unavailable(); why != "" {
		t.Skip("held-sync signal test skipped: " + why)
	}
	n, seed, _ := tortureRand(t, "PICOFLOW_HELDSIG", "TRIALS", 1, "TestSignalsWithSyncHeld", 0)
	bin := buildPicoflow(t)
	var sum plStats
	signalled := 0
	for _, how := range []string{"kill-9", "sigint-twice", "sigterm", "sigint"} {
		for i := range uint64(n) {
			s := seed + i
			ok := t.Run(fmt.Sprintf("%s-seed-%d", how, s), func(t *testing.T) {
				if heldSignal(t, bin, s, how, -1, &sum) {
					signalled++
				}
			})
			if !ok {
				return
			}
		}
	}
	// Each of the first fsyncs of a new home held in turn: the home's
	// layout's, the journal's first segment's, the first batch's.
	for pass := range 4 {
		t.Run(fmt.Sprintf("sigint-twice-fsync-%d", pass), func(t *testing.T) {
			if heldSignal(t, bin, seed, "sigint-twice", pass, &sum) {
				signalled++
			}
		})
	}
	t.Logf("%d trials, %d signalled with an fsync held, %d runs, %d resolves; %d violations",
		sum.trials, signalled, sum.runs, sum.resolves, sum.violations)
}

// heldSignal runs one trial; it reports whether the signal came with an
// fsync held (the run may end first).
func heldSignal(t *testing.T, bin string, seed uint64, how string, pass int, sum *plStats) bool {
	tr := bareTrial(t, bin, seed, sum)
	tr.tasks = tr.shape()
	tr.writeWorkflow()
	sum.trials++
	c := startEnv(t, bin, []string{tr.marker()}, "run", tr.file, "--home", tr.home)
	t.Cleanup(func() { tr.fs.Release() }) // before start's cleanup kills picoflow
	what := func() string { return fmt.Sprintf("\n--- stdout\n%s--- stderr\n%s", &c.stdout, &c.stderr) }
	if pass < 0 {
		pass = tr.rnd.IntN(2 + 2*len(tr.tasks))
	}
	held := tr.holdNth(c.done, pass, what)
	if held {
		sendHeld(t, tr, c, how)
	}
	code := c.wait(t)
	tr.fs.Release()
	want := map[int]bool{ExitOK: true, ExitInterrupted: true, ExitInDoubt: true}
	switch {
	case !held:
	case how == "kill-9":
		want = map[int]bool{-1: true}
	case how == "sigint-twice":
		want = map[int]bool{ExitForced: true}
	}
	if !want[code] {
		tr.violation("%s with an fsync held: exit %d%s", how, code, what())
	}
	if code == ExitForced && !strings.Contains(c.stderrText(), "forced exit") {
		tr.violation("the forced exit does not say so%s", what())
	}
	if how != "kill-9" { // a forced exit kills its tasks; a graceful one waits for them
		for i := 0; len(processesWithEnv(tr.marker())) > 0; i++ {
			if i == 1000 {
				tr.violation("%s: processes left after picoflow exited: %v%s", how, processesWithEnv(tr.marker()), what())
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	run := ""
	for _, m := range plRunRe.FindAllStringSubmatch(c.stdout.String(), -1) {
		run = m[1] + m[2]
		tr.runs[run] = true
	}
	tr.noteOK(run, c.stdout.String())
	if code == ExitInDoubt {
		tr.resolveAll()
	}
	tr.checkProjection("after " + how)
	tr.runCLI() // picoflow run resumes the run, or starts one when none was durable
	tr.finishAll()
	tr.checkLedger()
	tr.checkHome()
	tr.killAll() // after kill -9: resume killed the leftovers already
	return held
}

// sendHeld sends how's signals to c while tr holds an fsync of it; a
// single signal is followed by the fsync's release.
func sendHeld(t *testing.T, tr *trial, c *child, how string) {
	signal := func(s syscall.Signal) {
		if err := c.cmd.Process.Signal(s); err != nil {
			t.Fatal(err)
		}
	}
	taken := func() bool { return strings.Contains(c.stderrText(), "stopping gracefully") }
	switch how {
	case "kill-9":
		signal(syscall.SIGKILL)
	case "sigint-twice":
		signal(syscall.SIGINT)
		c.waitFor(t, "the first SIGINT to be taken", taken)
		signal(syscall.SIGINT)
	case "sigterm", "sigint":
		s := syscall.SIGINT
		if how == "sigterm" {
			s = syscall.SIGTERM
		}
		signal(s)
		c.waitFor(t, "the signal to be taken", taken)
		tr.fs.Release()
	}
}

// TestReadyWithinBounded: the forced exit's wait for a new home's layout
// fsyncs ends after its bound when they never return (a stalled file
// system), and reports their outcome when they do.
func TestReadyWithinBounded(t *testing.T) {
	never := make(chan struct{})
	defer close(never)
	if readyWithin(func() error { <-never; return nil }, 10*time.Millisecond) {
		t.Error("readyWithin reported a layout that never synced as ready")
	}
	if !readyWithin(func() error { return nil }, time.Minute) {
		t.Error("readyWithin did not report a synced layout")
	}
	if readyWithin(func() error { return syscall.EIO }, time.Minute) {
		t.Error("readyWithin reported a failed layout as ready")
	}
}
