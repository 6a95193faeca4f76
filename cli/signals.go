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
// finished is closed. The first SIGINT or SIGTERM calls cancel; a second
// one, of either kind, forces: the forced exit SIGKILLs each task process
// group this process started, says so, and exits ExitForced. One echo is
// not a second request: a SIGTERM that follows the first SIGTERM within
// termEcho: GNU timeout sends its signal to picoflow, then to picoflow's
// process group, and the grace must not be skipped for that. (A double
// SIGINT is never an echo: Ctrl-C pressed twice fast means force.)
func (m *Main) watchSignals(cancel context.CancelFunc, sig <-chan os.Signal, finished <-chan struct{}) {
	var first os.Signal
	var firstAt time.Time
	for {
		var s os.Signal
		select {
		case <-finished:
			return
		case s = <-sig:
		}
		switch {
		case first == nil:
			first, firstAt = s, time.Now()
			m.notice("stopping gracefully (send SIGINT or SIGTERM again to force)", s)
			cancel()
			continue
		case isEcho(first, firstAt, s, time.Now()):
			m.notice("the echo of the first SIGTERM (GNU timeout sends it twice): still stopping gracefully (send SIGINT or SIGTERM again to force)", s)
			firstAt = time.Time{} // one echo only
			continue
		}
		m.forcing.Store(true)
		m.freezeForExit()
		ran := releasedGroups.snapshot()
		msg := forcedMessage(killTaskGroups(), func(g int) bool { return ran[g] })
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

// forcedMessage says what a forced exit killed: the groups of tasks whose
// code ran (released) apart from shells that still waited at their start
// gate, whose task never ran and never will.
func forcedMessage(killed []int, released func(pgid int) bool) string {
	var ran, gated []string
	for _, g := range killed {
		if released(g) {
			ran = append(ran, strconv.Itoa(g))
		} else {
			gated = append(gated, strconv.Itoa(g))
		}
	}
	msg := "forced exit"
	if len(ran) > 0 {
		msg += fmt.Sprintf(": killed %d task process group(s) (SIGKILL to pgid %s)", len(ran), strings.Join(ran, ", "))
	}
	if len(gated) > 0 {
		sep := ":"
		if len(ran) > 0 {
			sep = ";"
		}
		msg += fmt.Sprintf("%s ended %d shell(s) still waiting at their start gate, none of whose task ran (pgid %s)",
			sep, len(gated), strings.Join(gated, ", "))
	}
	return msg + "; the journal is consistent and the run resumable"
}

// termEcho is how soon after the first SIGTERM a second SIGTERM counts as
// the same request sent twice (GNU timeout's kill of picoflow, then of its
// group, microseconds apart), not a second request that forces the exit:
// far above the time picoflow takes to notice the first, far below the
// time a person takes to send one again.
const termEcho = 500 * time.Millisecond

// isEcho reports whether s, received at now, is the echo of the first
// signal (received at firstAt; zero once an echo was taken).
func isEcho(first os.Signal, firstAt time.Time, s os.Signal, now time.Time) bool {
	return first == syscall.SIGTERM && s == syscall.SIGTERM && !firstAt.IsZero() && now.Sub(firstAt) < termEcho
}

// freezeWait bounds how long a forced exit waits for a journal write in
// progress (journal.Freeze): a write that hangs in the kernel must not
// keep the second signal from exiting.
const freezeWait = time.Second

// onForce registers f to run when a second SIGINT or SIGTERM forces the exit, before
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
