package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// watchSignals turns signals into a graceful stop and a forced exit until
// finished is closed. The first SIGINT or SIGTERM calls cancel; after that
// only a SIGINT forces (GNU timeout and service managers send SIGTERM to a
// whole process group, sometimes twice, and must not skip the grace): the
// forced exit SIGKILLs each task process group this process started, says
// so, and exits ExitForced.
func (m *Main) watchSignals(cancel context.CancelFunc, sig <-chan os.Signal, finished <-chan struct{}) {
	stopping := false
	for {
		var s os.Signal
		select {
		case <-finished:
			return
		case s = <-sig:
		}
		switch {
		case !stopping:
			stopping = true
			m.notice("stopping gracefully (send SIGINT again to force)", s)
			cancel()
			continue
		case s != os.Interrupt:
			m.notice("already stopping gracefully (send SIGINT to force)", s)
			continue
		}
		m.forcing.Store(true)
		m.freezeForExit()
		killed := killTaskGroups()
		msg := "forced exit; the journal is consistent and the run resumable"
		if len(killed) > 0 {
			pg := make([]string, len(killed))
			for i, g := range killed {
				pg[i] = strconv.Itoa(g)
			}
			msg = fmt.Sprintf("forced exit: killed %d task process group(s) (SIGKILL to pgid %s); the journal is consistent and the run resumable",
				len(killed), strings.Join(pg, ", "))
		}
		if m.forceUnsynced.Load() {
			msg += fmt.Sprintf(" (a journal write still in progress after %v was left unfinished: the file system does not answer)", freezeWait)
		}
		m.notice(msg, s)
		close(m.forceDone)
		exit := m.Exit
		if exit == nil {
			exit = os.Exit
		}
		exit(ExitForced)
		return
	}
}

// freezeWait bounds how long a forced exit waits for a journal write in
// progress (journal.Freeze): a write that hangs in the kernel must not
// keep the second SIGINT from exiting.
const freezeWait = time.Second

// onForce registers f to run when a second SIGINT forces the exit, before
// the tasks are killed (a journal's Freeze).
func (m *Main) onForce(f func()) {
	m.forceMu.Lock()
	defer m.forceMu.Unlock()
	m.onForced = append(m.onForced, f)
}

// freezeForExit runs what onForce registered. Freezing the journal first
// means the engine cannot journal the killed tasks as failed between the
// kill and the exit: the journal stays as it was, the run resumable.
func (m *Main) freezeForExit() {
	m.forceMu.Lock()
	defer m.forceMu.Unlock()
	for _, f := range m.onForced {
		f()
	}
}

// notice tells the user about a signal on stderr: a plain line, or a JSON
// log record under --log-format json.
func (m *Main) notice(msg string, s os.Signal) {
	if l := m.sigLog.Load(); l != nil {
		l.Warn(msg, "signal", s.String())
		return
	}
	fmt.Fprintf(m.Stderr, "picoflow: %s received: %s\n", s, msg)
}

// setSignalLog makes notice log through l (nil: plain lines).
func (m *Main) setSignalLog(l *slog.Logger) { m.sigLog.Store(l) }

// killTaskGroups SIGKILLs every process group led by a child of this
// process (a task's shell: executors start each in its own group) and
// returns their ids. Zombies are skipped.
func killTaskGroups() []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var killed []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		state, ppid, pgrp, ok := parseParent(b)
		if !ok || ppid != self || pgrp != pid || state == 'Z' {
			continue
		}
		if syscall.Kill(-pgrp, syscall.SIGKILL) == nil {
			killed = append(killed, pgrp)
		}
	}
	sort.Ints(killed)
	return killed
}
