package projectortest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// T0 is the time of the first event of the Scenario journal.
var T0 = time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)

// NoPGID is a process group id that cannot exist (above Linux's pid_max
// limit of 2^22), for running attempts in fixtures.
const NoPGID = 0x7ffffff0

// Writer appends events to a journal with explicit times.
type Writer struct {
	tb   testing.TB
	J    *journal.Journal
	Home string
	// AfterAppend, when set, is called after every Append (tests that
	// project while the journal grows).
	AfterAppend func()
}

// Open opens HOME/journal for writing; Close it when done.
func Open(tb testing.TB, home string) *Writer {
	tb.Helper()
	j, err := journal.Open(filepath.Join(home, "journal"), journal.Options{Owner: "projectortest"})
	if err != nil {
		tb.Fatal(err)
	}
	return &Writer{tb: tb, J: j, Home: home}
}

// Close closes the journal.
func (w *Writer) Close() {
	if err := w.J.Close(); err != nil {
		w.tb.Fatal(err)
	}
}

// Append appends events durably.
func (w *Writer) Append(evs ...*journal.Event) {
	w.tb.Helper()
	if err := w.J.Append(evs...); err != nil {
		w.tb.Fatal(err)
	}
	if w.AfterAppend != nil {
		w.AfterAppend()
	}
}

// LogPath is where the engine writes an attempt's log.
func (w *Writer) LogPath(wf, run, task string, attempt int) string {
	return filepath.Join(w.Home, "logs", wf, run, fmt.Sprintf("%s.%d.log", task, attempt))
}

// Log writes an attempt's log file.
func (w *Writer) Log(wf, run, task string, attempt int, text string) {
	w.tb.Helper()
	p := w.LogPath(wf, run, task, attempt)
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		w.tb.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o640); err != nil {
		w.tb.Fatal(err)
	}
}

func ns(d time.Duration) int64 { return T0.Add(d).UnixNano() }

// Definitions of the Scenario's workflows, valid workflow files.
const (
	Backup = `name: backup
tasks:
  - name: dump
    type: shell
    config: {command: "echo dump"}
  - name: compress
    type: shell
    depends_on: [dump]
    timeout: 30s
    config: {command: "echo compress"}
  - name: upload
    type: shell
    depends_on: [compress]
    config: {command: "echo upload"}
`
	Report = `name: report
tasks:
  - name: fetch
    type: shell
    retry: 1
    config: {command: "exit 2"}
  - name: render
    type: shell
    depends_on: [fetch]
    config: {command: "echo render"}
`
	Sync = `name: sync
tasks:
  - name: pull
    type: shell
    config: {command: "echo pull"}
  - name: apply
    type: shell
    depends_on: [pull]
    idempotent: false
    config: {command: "echo apply"}
`
)

// Run ids of the Scenario.
const (
	BackupOK      = "20261125-080000-aaaa" // success
	ReportFailed  = "20261125-083000-bbbb" // failed after a retry; render skipped
	BackupTimeout = "20261125-090000-cccc" // compress timed out; upload skipped
	SyncCanceled  = "20261125-093000-dddd" // interrupted, then canceled by run --fresh
	BackupLive    = "20261125-100000-eeee" // running: compress in flight, upload pending
	SyncHeld      = "20261125-101000-ffff" // resumed once, apply in doubt: unfinished
	ReportOK      = "20261125-102000-0000" // success, overlapping BackupLive
)

// Scenario writes a journal with seven runs of three workflows covering
// every event type and run outcome, plus the attempts' log files.
func Scenario(tb testing.TB, home string) { ScenarioWith(tb, home, nil) }

// ScenarioWith is Scenario calling after (when not nil) after each append.
func ScenarioWith(tb testing.TB, home string, after func()) {
	tb.Helper()
	w := Open(tb, home)
	defer w.Close()
	w.AfterAppend = after
	e := scenarioEvents{w}
	scenarioEnded(w, e)
	scenarioLive(w, e)
}

// scenarioEvents builds the scenario's events; started also writes the
// attempt's log file.
type scenarioEvents struct{ w *Writer }

func (scenarioEvents) start(run, wf, def, trigger string, at time.Duration) *journal.Event {
	return &journal.Event{Type: journal.RunStarted, Time: ns(at), Run: run, Workflow: wf,
		DefHash: fmt.Sprintf("%x", len(def)*7919), Definition: def, Source: "/etc/picoflow/workflows/" + wf + ".yaml",
		Trigger: trigger}
}

func (scenarioEvents) task(typ journal.Type, run, task string, attempt int, at time.Duration) *journal.Event {
	return &journal.Event{Type: typ, Time: ns(at), Run: run, Task: task, Attempt: attempt}
}

func (e scenarioEvents) started(wf, run, name string, attempt int, at time.Duration) *journal.Event {
	ev := e.task(journal.TaskStarted, run, name, attempt, at)
	ev.LogPath = e.w.LogPath(wf, run, name, attempt)
	e.w.Log(wf, run, name, attempt, fmt.Sprintf("%s attempt %d: working\n%s attempt %d: done\n", name, attempt, name, attempt))
	return ev
}

func (e scenarioEvents) ok(run, name string, attempt int, at, took time.Duration) *journal.Event {
	ev := e.task(journal.TaskFinished, run, name, attempt, at)
	ev.Status, ev.DurationMS = journal.StatusSuccess, took.Milliseconds()
	return ev
}

func (e scenarioEvents) proc(run, name string, attempt, pgid int, at time.Duration) *journal.Event {
	ev := e.task(journal.TaskProcess, run, name, attempt, at)
	ev.PGID = pgid
	return ev
}

func (scenarioEvents) finish(run, status string, at, took time.Duration) *journal.Event {
	return &journal.Event{Type: journal.RunFinished, Time: ns(at), Run: run, Status: status, DurationMS: took.Milliseconds()}
}

// scenarioEnded appends the four runs that ended: BackupOK, ReportFailed,
// BackupTimeout and SyncCanceled.
func scenarioEnded(w *Writer, e scenarioEvents) {
	s, m := time.Second, time.Minute
	// backup, success.
	w.Append(e.start(BackupOK, "backup", Backup, "manual", 0), e.started("backup", BackupOK, "dump", 1, 0))
	w.Append(e.proc(BackupOK, "dump", 1, 4242, 10*time.Millisecond))
	w.Append(e.ok(BackupOK, "dump", 1, 2500*time.Millisecond, 2490*time.Millisecond),
		e.started("backup", BackupOK, "compress", 1, 2500*time.Millisecond))
	w.Append(e.ok(BackupOK, "compress", 1, 12500*time.Millisecond, 10*s),
		e.started("backup", BackupOK, "upload", 1, 12500*time.Millisecond))
	w.Append(e.ok(BackupOK, "upload", 1, 42500*time.Millisecond, 30*s),
		e.finish(BackupOK, journal.StatusSuccess, 42500*time.Millisecond, 42500*time.Millisecond))

	// report, fetch fails twice (one retry), render skipped.
	w.Append(e.start(ReportFailed, "report", Report, "schedule", 30*m), e.started("report", ReportFailed, "fetch", 1, 30*m))
	retry := e.task(journal.TaskRetrying, ReportFailed, "fetch", 1, 30*m+3*s)
	retry.Status, retry.ExitCode, retry.DurationMS = journal.StatusFailed, 2, 2900
	retry.Error, retry.Tail, retry.RetryAt, retry.BackoffMS = "exit status 2", "connection refused\n", ns(30*m+8*s), 5000
	w.Append(retry)
	w.Append(e.started("report", ReportFailed, "fetch", 2, 30*m+8*s))
	failed := e.task(journal.TaskFinished, ReportFailed, "fetch", 2, 30*m+11*s)
	failed.Status, failed.ExitCode, failed.DurationMS = journal.StatusFailed, 2, 3000
	failed.Error, failed.Tail = "exit status 2", "connection refused\n"
	skipped := e.task(journal.TaskSkipped, ReportFailed, "render", 0, 30*m+11*s)
	skipped.Status, skipped.Reason = journal.StatusSkipped, "upstream task fetch did not succeed"
	w.Append(failed, skipped, e.finish(ReportFailed, journal.StatusFailed, 30*m+11*s, 11*s))

	// backup, compress times out.
	w.Append(e.start(BackupTimeout, "backup", Backup, "schedule", 60*m), e.started("backup", BackupTimeout, "dump", 1, 60*m))
	w.Append(e.ok(BackupTimeout, "dump", 1, 60*m+2*s, 2*s), e.started("backup", BackupTimeout, "compress", 1, 60*m+2*s))
	timeout := e.task(journal.TaskFinished, BackupTimeout, "compress", 1, 60*m+32*s)
	timeout.Status, timeout.ExitCode, timeout.DurationMS, timeout.Error = journal.StatusTimeout, -1, 30000, "timed out after 30s"
	skipped = e.task(journal.TaskSkipped, BackupTimeout, "upload", 0, 60*m+32*s)
	skipped.Status, skipped.Reason = journal.StatusSkipped, "upstream task compress did not succeed"
	w.Append(timeout, skipped, e.finish(BackupTimeout, journal.StatusFailed, 60*m+32*s, 32*s))

	// sync, interrupted while pulling, then canceled by run --fresh.
	w.Append(e.start(SyncCanceled, "sync", Sync, "manual", 90*m), e.started("sync", SyncCanceled, "pull", 1, 90*m))
	cancel := e.finish(SyncCanceled, journal.StatusCanceled, 95*m, 0)
	cancel.Reason = "superseded by picoflow run --fresh"
	w.Append(cancel)
}

// scenarioLive appends the three runs that overlap at the end of the
// journal: BackupLive (running), SyncHeld (unfinished) and ReportOK.
func scenarioLive(w *Writer, e scenarioEvents) {
	s, m := time.Second, time.Minute
	// backup, live: compress in flight.
	w.Append(e.start(BackupLive, "backup", Backup, "manual", 120*m), e.started("backup", BackupLive, "dump", 1, 120*m))
	w.Append(e.ok(BackupLive, "dump", 1, 120*m+3*s, 3*s), e.started("backup", BackupLive, "compress", 1, 120*m+3*s))
	w.Append(e.proc(BackupLive, "compress", 1, NoPGID, 120*m+3*s))

	// sync: pull interrupted by a crash and resumed, apply in doubt.
	w.Append(e.start(SyncHeld, "sync", Sync, "schedule", 130*m), e.started("sync", SyncHeld, "pull", 1, 130*m))
	w.Append(e.proc(SyncHeld, "pull", 1, NoPGID, 130*m))
	intr := e.task(journal.TaskFinished, SyncHeld, "pull", 1, 135*m)
	intr.Status, intr.ExitCode, intr.Reason = journal.StatusInterrupted, -1, "picoflow stopped while it ran (crash or power loss)"
	w.Append(&journal.Event{Type: journal.RunResumed, Time: ns(135 * m), Run: SyncHeld}, intr)
	resumed := e.started("sync", SyncHeld, "pull", 2, 135*m)
	resumed.Resumed = true
	w.Append(resumed)
	w.Append(e.ok(SyncHeld, "pull", 2, 136*m, m), e.started("sync", SyncHeld, "apply", 1, 136*m))
	doubt := e.task(journal.TaskInDoubt, SyncHeld, "apply", 1, 137*m)
	doubt.Reason = "interrupted while running and not idempotent: settle it with picoflow resolve"
	w.Append(doubt)

	// report, success, while backup is still running.
	w.Append(&journal.Event{Type: journal.ScheduleFired, Time: ns(140 * m), Workflow: "report", FireTime: ns(140 * m)})
	w.Append(e.start(ReportOK, "report", Report, "schedule", 140*m), e.started("report", ReportOK, "fetch", 1, 140*m))
	w.Append(e.ok(ReportOK, "fetch", 1, 140*m+4*s, 4*s), e.started("report", ReportOK, "render", 1, 140*m+4*s))
	w.Append(e.ok(ReportOK, "render", 1, 140*m+5*s, s), e.finish(ReportOK, journal.StatusSuccess, 140*m+5*s, 5*s))
}

// Generate writes runs×tasks task attempts into HOME/journal: runs spread
// over 10 workflows, one minute apart from T0, each task one attempt of one
// second (every 10th run's last task fails). No log files are
// written. It returns the number of events.
func Generate(tb testing.TB, home string, runs, tasks int) int {
	tb.Helper()
	w := Open(tb, home)
	defer w.Close()
	n := 0
	var batch []*journal.Event
	add := func(e *journal.Event) {
		batch = append(batch, e)
		if len(batch) >= 4096 {
			if err := w.J.AppendLazy(batch...); err != nil {
				tb.Fatal(err)
			}
			n += len(batch)
			batch = batch[:0]
		}
	}
	for i := 0; i < runs; i++ {
		wf := fmt.Sprintf("wf%02d", i%10)
		at := T0.Add(time.Duration(i) * time.Minute)
		run := at.Format("20060102-150405-") + fmt.Sprintf("%04x", i%0x10000)
		add(&journal.Event{Type: journal.RunStarted, Time: at.UnixNano(), Run: run, Workflow: wf,
			DefHash: wf + "-hash", Definition: "name: " + wf + "\n", Trigger: "schedule"})
		status := journal.StatusSuccess
		for k := 0; k < tasks; k++ {
			name := fmt.Sprintf("task%02d", k)
			t := at.Add(time.Duration(k) * time.Second)
			add(&journal.Event{Type: journal.TaskStarted, Time: t.UnixNano(), Run: run, Task: name, Attempt: 1,
				LogPath: w.LogPath(wf, run, name, 1)})
			add(&journal.Event{Type: journal.TaskProcess, Time: t.UnixNano(), Run: run, Task: name, Attempt: 1, PGID: 1000 + k})
			end := &journal.Event{Type: journal.TaskFinished, Time: t.Add(time.Second).UnixNano(), Run: run, Task: name,
				Attempt: 1, Status: journal.StatusSuccess, DurationMS: 1000}
			if i%10 == 9 && k == tasks-1 {
				end.Status, end.ExitCode, end.Error, end.Tail = journal.StatusFailed, 1, "exit status 1", "boom\n"
				status = journal.StatusFailed
			}
			add(end)
		}
		add(&journal.Event{Type: journal.RunFinished, Time: at.Add(time.Duration(tasks) * time.Second).UnixNano(),
			Run: run, Status: status, DurationMS: int64(tasks) * 1000})
	}
	if len(batch) > 0 {
		if err := w.J.Append(batch...); err != nil {
			tb.Fatal(err)
		}
		n += len(batch)
	}
	return n
}
