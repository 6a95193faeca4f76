//go:build linux

package cli

import (
	"fmt"
	"os"
	"testing"

	"github.com/picoflow/picoflow/cli/internal/lazyfs"
)

// TestPowerLossChains is TestPowerLoss on chains of 10 to 24 steps, most
// of which pass no output on, so that the next step runs in the shell
// started ahead while its upstream ran (the successor spare): a chain
// step's start is journaled while its upstream's end may not be durable
// yet, and a power cut then must not lose a reported success nor run a
// non-idempotent step twice. PICOFLOW_POWERLOSS_SEED and
// PICOFLOW_POWERLOSS_CHAINS (default 4) choose the trials.
func TestPowerLossChains(t *testing.T) {
	if why := lazyfs.Unavailable(); why != "" {
		t.Skip("power-loss test skipped: " + why)
	}
	trials, seed := powerLossTrials(t, "PICOFLOW_POWERLOSS_CHAINS", 4, uint64(1_000_000+os.Getpid()))
	bin := buildPicoflow(t)
	var sum plStats
	for i := range uint64(trials) {
		s := seed + i
		ok := t.Run(fmt.Sprintf("seed-%d", s), func(t *testing.T) {
			tr := bareTrial(t, bin, s, &sum)
			tr.cutsLeft = 1 + tr.rnd.IntN(4)
			n := 10 + tr.rnd.IntN(15)
			for j := range n {
				k := plTask{name: fmt.Sprintf("t%02d", j), noOut: tr.rnd.IntN(4) != 0}
				if j > 0 {
					k.deps = []string{tr.tasks[j-1].name}
				}
				switch tr.rnd.IntN(6) {
				case 0:
					k.nonIdem = true
				case 1:
					k.flaky = true
				}
				tr.tasks = append(tr.tasks, k)
			}
			tr.writeWorkflow()
			tr.run()
		})
		if !ok {
			t.Logf("reproduce: PICOFLOW_POWERLOSS_SEED=%d PICOFLOW_POWERLOSS_CHAINS=1 go test ./cli -run TestPowerLossChains", s)
			break
		}
	}
	t.Logf("seeds %d..%d: %d trials, %d power cuts (%d right after an fsync), %d runs, %d resolves; %d files lost %d pending bytes; %d violations",
		seed, seed+uint64(trials)-1, sum.trials, sum.cuts, sum.syncCuts, sum.runs, sum.resolves, sum.cutFiles, sum.cutBytes, sum.violations)
}
