package cli

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat:
// 100 on every Linux architecture's user ABI.
const clockTicks = 100

// groupUsage is the resource use of one process group.
type groupUsage struct {
	Procs      int
	CPUPercent float64 // of one CPU, over the sampling interval; -1: not yet known
	RSS        int64   // bytes
}

// procSampler measures task process groups from /proc: CPU time used
// between two samples, and resident memory now.
type procSampler struct {
	proc  string // "/proc"
	page  int64
	prev  map[int]uint64 // CPU ticks per process group at the last sample
	prevT time.Time
	now   func() time.Time
}

// haveProc reports whether this system has /proc (Linux); without it,
// status shows no CPU and RSS and says why.
func haveProc() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}

func newProcSampler() *procSampler {
	return &procSampler{proc: "/proc", page: int64(os.Getpagesize()), now: time.Now}
}

// sample returns the usage of the given process groups that have at least
// one process. The first sample of a group has no CPU figure yet; when
// wait is set and some group is alive, sample measures over a short
// interval first so that a one-shot `picoflow status` shows CPU too.
func (s *procSampler) sample(ctx context.Context, pgids map[int]bool, wait time.Duration) map[int]groupUsage {
	if len(pgids) == 0 {
		return nil
	}
	ticks, usage := s.scan(pgids)
	if wait > 0 && s.prev == nil && len(usage) > 0 {
		s.prev, s.prevT = ticks, s.now()
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		ticks, usage = s.scan(pgids)
	}
	t := s.now()
	dt := t.Sub(s.prevT).Seconds()
	for g, u := range usage {
		u.CPUPercent = -1
		if old, ok := s.prev[g]; ok && dt > 0 {
			used := float64(0)
			if ticks[g] > old {
				used = float64(ticks[g]-old) / clockTicks
			}
			u.CPUPercent = used / dt * 100
		}
		usage[g] = u
	}
	s.prev, s.prevT = ticks, t
	return usage
}

// scan reads /proc/*/stat once and sums CPU ticks and RSS per wanted
// process group.
func (s *procSampler) scan(pgids map[int]bool) (map[int]uint64, map[int]groupUsage) {
	ticks := map[int]uint64{}
	usage := map[int]groupUsage{}
	ents, err := os.ReadDir(s.proc)
	if err != nil {
		return ticks, usage
	}
	for _, e := range ents {
		if c := e.Name()[0]; c < '0' || c > '9' {
			continue
		}
		b, err := os.ReadFile(s.proc + "/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		pgrp, cpu, rss, ok := parseStat(b)
		if !ok || !pgids[pgrp] {
			continue
		}
		u := usage[pgrp]
		u.Procs++
		u.RSS += rss * s.page
		usage[pgrp] = u
		ticks[pgrp] += cpu
	}
	return ticks, usage
}

// parseStat extracts the process group, utime+stime and RSS (pages) from
// the contents of /proc/PID/stat.
func parseStat(b []byte) (pgrp int, cpu uint64, rss int64, ok bool) {
	f := statFields(b)
	if len(f) < 22 {
		return 0, 0, 0, false
	}
	pgrp, err1 := strconv.Atoi(string(f[2]))             // field 5
	ut, err2 := strconv.ParseUint(string(f[11]), 10, 64) // field 14
	st, err3 := strconv.ParseUint(string(f[12]), 10, 64) // field 15
	rss, err4 := strconv.ParseInt(string(f[21]), 10, 64) // field 24
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return 0, 0, 0, false
	}
	return pgrp, ut + st, rss, true
}

// parseParent extracts the state, parent and process group from the
// contents of /proc/PID/stat.
func parseParent(b []byte) (state byte, ppid, pgrp int, ok bool) {
	f := statFields(b)
	if len(f) < 3 || len(f[0]) != 1 {
		return 0, 0, 0, false
	}
	ppid, err1 := strconv.Atoi(string(f[1])) // field 4
	pgrp, err2 := strconv.Atoi(string(f[2])) // field 5
	if err1 != nil || err2 != nil {
		return 0, 0, 0, false
	}
	return f[0][0], ppid, pgrp, true
}

// statFields returns the fields of /proc/PID/stat from field 3 (state) on.
// The command name (field 2) may contain spaces and parentheses, so fields
// are counted after the last ')'.
func statFields(b []byte) [][]byte {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return bytes.Fields(b[i+1:])
}
