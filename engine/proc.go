package engine

import (
	"bytes"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// killLeftovers kills the process groups of processes that a dead PicoFlow
// started for run. They are recognised by PICOFLOW_RUN_ID in their
// environment rather than by a recorded PGID alone: after a reboot a PGID
// may belong to somebody else. Command lines are logged through redact: a
// secret may have been pasted into one.
func killLeftovers(run string, log *slog.Logger, redact func(string) string) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		// macOS and the BSDs have no /proc: the scan cannot see the
		// environment of other processes there.
		log.Warn("cannot look for processes left by the interrupted run: no /proc on this system (Linux only); check with ps for PICOFLOW_RUN_ID="+run,
			"run", run, "err", err)
		return 0
	}
	marker := []byte("PICOFLOW_RUN_ID=" + run + "\x00")
	self := os.Getpid()
	killed := map[int]bool{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !bytes.Contains(env, marker) {
			continue
		}
		pgid, err := syscall.Getpgid(pid)
		if err != nil || killed[pgid] || pgid == syscall.Getpgrp() {
			continue
		}
		killed[pgid] = true
		if err := syscall.Kill(-pgid, syscall.SIGKILL); err == nil {
			log.Warn("killed a leftover process group of an interrupted run", "run", run, "pgid", pgid, "cmd", redact(cmdline(pid)))
		}
	}
	return len(killed)
}

func cmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}
