package cli

import (
	"context"
	"encoding/json"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picoflow/picoflow/projector/projectortest"
)

// TestStatusGolden holds the backup workflow's lock, as a running
// picoflow would: its unfinished run is running, sync's is interrupted.
func TestStatusGolden(t *testing.T) {
	home := scenarioHome(t)
	release, err := holdWorkflow(home, "backup")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"status-json", []string{"status", "--json"}},
		{"status", []string{"status"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := pf(t, home, tc.args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			checkGolden(t, tc.name, home, r.stdout)
		})
	}
	release()
	r := pf(t, home, "status", "--json")
	var st statusJSON
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatal(err)
	}
	for _, lr := range st.Live {
		if lr.State != "interrupted" {
			t.Errorf("without the lock, run %s is %s", lr.RunID, lr.State)
		}
		for _, lt := range lr.Tasks {
			if lt.State == "running" {
				t.Errorf("task %s of interrupted run %s is running", lt.Name, lr.RunID)
			}
		}
	}
}

func home_(s string) home { return home(s) }

func TestStatusWatchStopsOnCancel(t *testing.T) {
	home := scenarioHome(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	r := pfCtx(ctx, t, home, "status", "--watch", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if n := strings.Count(r.stdout, "\n"); n < 2 || n > 4 {
		t.Fatalf("%d frames in 2.5s, want about one a second:\n%s", n, r.stdout)
	}
}

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		pgrp int
		cpu  uint64
		rss  int64
		ok   bool
	}{
		{"4242 (sh) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 100 2000000 321 18446744073709551615", 4242, 10, 321, true},
		{"77 (a) b) c) R 1 70 70 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 100 2000000 5 0", 70, 2, 5, true},
		{"12 (short) S 1 2 3", 0, 0, 0, false},
		{"garbage", 0, 0, 0, false},
	} {
		pgrp, cpu, rss, ok := parseStat([]byte(tc.in))
		if pgrp != tc.pgrp || cpu != tc.cpu || rss != tc.rss || ok != tc.ok {
			t.Errorf("parseStat(%q) = %d %d %d %v", tc.in, pgrp, cpu, rss, ok)
		}
	}
}

// TestProcSampler measures a busy process group of our own.
func TestProcSampler(t *testing.T) {
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Skip("no sh:", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pgid := cmd.Process.Pid
	s := newProcSampler()
	u := s.sample(context.Background(), map[int]bool{pgid: true, projectortest.NoPGID: true}, 500*time.Millisecond)
	g, ok := u[pgid]
	if !ok || g.Procs != 1 || g.RSS <= 0 {
		t.Fatalf("usage %+v", u)
	}
	// A spinning shell uses a whole CPU, less what a busy machine (or the
	// race detector's) leaves it; measured in 10ms ticks.
	if g.CPUPercent <= 0 || g.CPUPercent > 100*float64(runtime.NumCPU())+10 {
		t.Errorf("cpu %.1f%%, want a busy process", g.CPUPercent)
	}
	if _, ok := u[projectortest.NoPGID]; ok {
		t.Error("a group without processes has usage")
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("4242 (sh) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 100 2000000 321 0"))
	f.Add([]byte("1 ((x)) R"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseStat(b) // must not panic
		parseParent(b)
	})
}

// TestStatusClockBehind shows the live run with the clock an hour behind
// its recorded start (a board without an RTC): no elapsed time is negative.
func TestStatusClockBehind(t *testing.T) {
	home := scenarioHome(t)
	release, err := holdWorkflow(home, "backup")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	fixClock(t, home, projectortest.T0.Add(-time.Hour))
	r := pf(t, home, "status", "--json")
	var st statusJSON
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st.Live) == 0 {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	for _, lr := range st.Live {
		if lr.ElapsedMS < 0 {
			t.Errorf("run %s elapsed %d ms", lr.RunID, lr.ElapsedMS)
		}
		for _, lt := range lr.Tasks {
			if lt.ElapsedMS != nil && *lt.ElapsedMS < 0 {
				t.Errorf("run %s task %s elapsed %d ms", lr.RunID, lt.Name, *lt.ElapsedMS)
			}
		}
	}
	if r := pf(t, home, "status"); regexp.MustCompile(`elapsed -|running\s+-`).MatchString(r.stdout) {
		t.Errorf("negative elapsed time in\n%s", r.stdout)
	}
}
