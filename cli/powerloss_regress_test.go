package cli

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/picoflow/picoflow/cli/internal/lazyfs"
)

// TestPowerCutScenarios replays, deterministically, each missing fsync the
// power-loss torture (TestPowerLoss) found: do something on lazyfs, cut
// the power so that only fsynced data stays, mount again and check what
// must have survived. Each case is named after its scenario.
func TestPowerCutScenarios(t *testing.T) {
	if why := lazyfs.Unavailable(); why != "" {
		t.Skip("power-cut scenarios skipped: " + why)
	}
	cases := []struct {
		name string
		// do runs before the cut, in a home under mnt; check runs after.
		do, check func(t *testing.T, dir, home string)
	}{
		{
			// HOME, HOME/locks and HOME/journal were created without an
			// fsync of their parents: the first run of a new home vanished
			// with the whole home, though run had printed it as started.
			name: "first-run-of-a-new-home",
			do: func(t *testing.T, dir, home string) {
				file := writeWorkflow(t, dir, "first", "", spec{name: "a", cmd: ledger("a")})
				if r := picoflow(t, "run", "--home", home, file); r.code != ExitOK {
					t.Fatal(r)
				}
			},
			check: func(t *testing.T, dir, home string) {
				r := picoflow(t, "history", "--home", home)
				if r.code != ExitOK || !strings.Contains(r.stdout, "success") {
					t.Fatalf("the run is gone after the power cut:\n%s", r)
				}
			},
		},
		{
			// Any command that opens the journal of a new home (run, resume,
			// resolve, the daemon) creates HOME/journal: its name must be
			// durable before anything is fsynced inside it.
			name: "journal-directory-of-a-new-home",
			do: func(t *testing.T, dir, home string) {
				r := picoflow(t, "resolve", "--home", home, "no-such-run", "t", "--rerun")
				if r.code != ExitNotFound {
					t.Fatal(r)
				}
			},
			check: func(t *testing.T, dir, home string) {
				if _, err := os.Stat(filepath.Join(home, "journal")); err != nil {
					t.Fatalf("the journal directory is gone after the power cut: %v", err)
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			backing, mnt := filepath.Join(dir, "backing"), filepath.Join(dir, "mnt")
			for _, d := range []string{backing, mnt} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			f, err := lazyfs.Mount(backing, mnt)
			if err != nil {
				t.Fatal(err)
			}
			home := filepath.Join(mnt, "home")
			c.do(t, dir, home)
			if err := f.PowerCut(lazyfs.Clear, rand.New(rand.NewPCG(1, 1))); err != nil {
				t.Fatal(err)
			}
			if f, err = lazyfs.Mount(backing, mnt); err != nil {
				t.Fatal(err)
			}
			defer f.Unmount()
			c.check(t, dir, home)
		})
	}
}
