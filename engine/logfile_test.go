package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// stat returns the file info of path, failing the test if it is missing.
func stat(t *testing.T, path string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func exists(path string) bool { _, err := os.Lstat(path); return err == nil }

// freeLogOf returns a run's pool holding the empty log of a succeeded
// attempt at first (its file info: before), and the path of the next
// attempt's log.
func freeLogOf(t *testing.T) (p *logFiles, first, next string, before os.FileInfo) {
	t.Helper()
	dir := t.TempDir()
	first, next = filepath.Join(dir, "a.1.log"), filepath.Join(dir, "b.1.log")
	p = new(logFiles)
	f, err := p.open(first)
	if err != nil {
		t.Fatal(err)
	}
	before = stat(t, first)
	p.done(f, true)
	return p, first, next, before
}

// TestLogReuse: the empty log of a succeeded attempt is renamed to the
// next attempt's log path, unless another open file description of it
// exists (a reader such as logs --follow, a process left behind), it is
// no longer empty, or the attempt failed.
func TestLogReuse(t *testing.T) {
	for _, tc := range []struct {
		name      string
		succeeded bool
		hold      int    // open the free log: os.O_RDONLY or os.O_WRONLY; -1: no
		write     string // written to it after the attempt (by the holder)
		reused    bool
	}{
		{"succeeded, nothing holds it", true, -1, "", true},
		{"failed: kept", false, -1, "", false},
		{"a reader holds it", true, os.O_RDONLY, "", false},
		{"a writer holds it", true, os.O_WRONLY, "", false},
		{"a writer wrote to it", true, os.O_WRONLY, "late\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			first, next := filepath.Join(dir, "a.1.log"), filepath.Join(dir, "b.1.log")
			var p logFiles
			f, err := p.open(first)
			if err != nil {
				t.Fatal(err)
			}
			before := stat(t, first)
			p.done(f, tc.succeeded)
			if tc.hold >= 0 {
				h, err := os.OpenFile(first, tc.hold, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer h.Close()
				if tc.write != "" {
					h.WriteString(tc.write)
				}
			}
			g, err := p.open(next)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if got := os.SameFile(before, stat(t, next)); got != tc.reused {
				t.Fatalf("the next attempt got the first one's file: %v, want %v", got, tc.reused)
			}
			if exists(first) == tc.reused {
				t.Errorf("the first log exists: %v, want %v", exists(first), !tc.reused)
			}
			if !tc.reused {
				if b, _ := os.ReadFile(first); string(b) != tc.write {
					t.Errorf("the first log holds %q, want %q", b, tc.write)
				}
				if !os.SameFile(before, stat(t, first)) {
					t.Error("the first log is another file now")
				}
			}
			if fi, _ := g.Stat(); fi.Size() != 0 {
				t.Errorf("the next attempt's log holds %d bytes", fi.Size())
			}
		})
	}
}

// TestLogReuseWhileForking: a free log is reused while this process forks
// (a fork holds syscall.ForkLock for writing until its child's exec): the
// lease is not asked under that lock unless it was refused.
func TestLogReuseWhileForking(t *testing.T) {
	if !leasesWork {
		t.Skip("no leases here")
	}
	p, _, next, before := freeLogOf(t)
	syscall.ForkLock.Lock()
	opened := make(chan *os.File, 1)
	go func() {
		g, err := p.open(next)
		if err != nil {
			t.Error(err)
		}
		opened <- g
	}()
	select {
	case g := <-opened:
		syscall.ForkLock.Unlock()
		if g == nil {
			return
		}
		defer g.Close()
		if !os.SameFile(before, stat(t, next)) {
			t.Error("the free log was not reused")
		}
	case <-time.After(10 * time.Second):
		syscall.ForkLock.Unlock()
		<-opened
		t.Fatal("reusing a free log waited for a fork in flight")
	}
}

// TestLogReusedOnceLetGo: a free log refused while a reader held it is
// tried again once the reader let go.
func TestLogReusedOnceLetGo(t *testing.T) {
	dir := t.TempDir()
	path := func(n int) string { return filepath.Join(dir, fmt.Sprintf("t%d.1.log", n)) }
	var p logFiles
	f, err := p.open(path(1))
	if err != nil {
		t.Fatal(err)
	}
	first := stat(t, path(1))
	p.done(f, true)
	r, err := os.Open(path(1))
	if err != nil {
		t.Fatal(err)
	}
	g, err := p.open(path(2)) // refused: a new file
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	r.Close()
	h, err := p.open(path(3))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if !os.SameFile(first, stat(t, path(3))) || exists(path(1)) {
		t.Errorf("the log let go of was not reused")
	}
}

// TestLogFilesOfARun runs a task that talks, one that fails silently, and
// a chain of silent tasks ending in one that fails with output: the silent
// successes share a few files, the talker keeps its output, the silent
// failure keeps its empty log, the last failure gets a reused file and its
// tail in the journal is its own output alone; every log path the journal
// names exists or was not kept (LogNotKept).
func TestLogFilesOfARun(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	const n = 30
	ts := []task{{name: "talk", cmd: "echo hello; echo to stderr >&2"}, {name: "fail", cmd: "exit 3"}}
	for i := 0; i < n; i++ {
		ts = append(ts, task{name: fmt.Sprintf("s%02d", i), cmd: "true"})
		if i > 0 {
			ts[len(ts)-1].deps = []string{fmt.Sprintf("s%02d", i-1)}
		}
	}
	ts = append(ts, task{name: "oops", cmd: "echo oops; exit 4", deps: []string{fmt.Sprintf("s%02d", n-1)}})
	r := h.start(parse(t, wfYAML("logs", "max_parallel: 1", "", ts...)))
	if r.Status != RunFailed {
		t.Fatalf("run %s", r.Status)
	}
	dir := runLogDir(filepath.Join(h.dir, "logs"), "logs", r.ID)
	for name, want := range map[string]string{"talk.1.log": "hello\nto stderr\n", "fail.1.log": "", "oops.1.log": "oops\n"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", name, b, err, want)
		}
	}
	if ends := filter(h.events(), journal.TaskFinished, "oops"); len(ends) != 1 || ends[0].Tail != "oops\n" {
		t.Errorf("the end of oops: %+v", ends)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "s*.log"))
	sort.Strings(logs)
	t.Logf("%d of %d silent attempts kept a log file", len(logs), n)
	if len(logs) > n/3 {
		t.Errorf("%d of %d silent attempts kept a log file: %v", len(logs), n, logs)
	}
	started := filter(h.events(), journal.TaskStarted, "")
	if len(started) != n+3 {
		t.Fatalf("%d task_started events", len(started))
	}
	for _, e := range started {
		status := "success"
		if e.Task == "fail" || e.Task == "oops" {
			status = "failed"
		}
		if !exists(e.LogPath) && !LogNotKept(e.LogPath, status) {
			t.Errorf("%s: no log and not one of a silent success", e.LogPath)
		}
		if exists(e.LogPath) && LogNotKept(e.LogPath, status) {
			t.Errorf("%s: LogNotKept of a log that exists", e.LogPath)
		}
	}
}

// TestLogOfADaemonIsNotReused: a task leaves a daemon (setsid) that holds
// its log and writes to it after the next attempt has started; the next
// attempt must get a file of its own, and the daemon's output stays in
// the log of the task that started it. FIFOs order the steps.
func TestLogOfADaemonIsNotReused(t *testing.T) {
	t.Parallel()
	h := newHome(t)
	for _, f := range []string{"go", "back"} {
		if err := syscall.Mkfifo(filepath.Join(h.work, f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { // a failed test must not leave the daemon waiting
		if b, err := os.ReadFile(filepath.Join(h.work, "pid")); err == nil {
			if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	// The task waits until the daemon has its own session, else the group
	// kill at the task's end would still reach it.
	daemon := `setsid sh -c 'echo $$ > "$T/pid.tmp"; mv "$T/pid.tmp" "$T/pid"; read x < "$T/go"; echo late; echo done > "$T/back"' &
		while [ ! -s "$T/pid" ]; do :; done`
	r := h.start(parse(t, wfYAML("daemon", "max_parallel: 1", "",
		task{name: "starter", cmd: daemon},
		task{name: "next", cmd: "echo next", deps: []string{"starter"}})))
	if r.Status != RunSuccess {
		t.Fatalf("run %s", r.Status)
	}
	release := func(name string) {
		f, err := os.OpenFile(filepath.Join(h.work, name), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("go\n")
		f.Close()
	}
	release("go")
	back, err := os.ReadFile(filepath.Join(h.work, "back")) // the daemon has written "late"
	if err != nil || string(back) != "done\n" {
		t.Fatalf("the daemon answered %q, %v", back, err)
	}
	dir := runLogDir(filepath.Join(h.dir, "logs"), "daemon", r.ID)
	for name, want := range map[string]string{"starter.1.log": "late\n", "next.1.log": "next\n"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", name, b, err, want)
		}
	}
}

// TestLogReuseWithoutLeases: where leases are refused as unsupported
// (EINVAL: NFS, fs.leases-enable = 0), the free log stays where it is and
// the run creates every later log.
func TestLogReuseWithoutLeases(t *testing.T) {
	takeLease = func(uintptr) error { return syscall.EINVAL }
	defer func() { takeLease = lease }()
	dir := t.TempDir()
	path := func(n int) string { return filepath.Join(dir, fmt.Sprintf("t%d.1.log", n)) }
	var p logFiles
	for n := 1; n <= 3; n++ {
		f, err := p.open(path(n))
		if err != nil {
			t.Fatal(err)
		}
		p.done(f, true)
	}
	for n := 1; n <= 3; n++ {
		if !exists(path(n)) {
			t.Errorf("%s is missing", path(n))
		}
	}
	if !p.off || len(p.free) != 0 {
		t.Errorf("the pool is still in use: off %v, %d free", p.off, len(p.free))
	}
}
