package engine

import (
	"fmt"
	"math"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// Which batches must be durable before the loop acts on them.
//
// The loop commits one batch per turn and launches the attempts whose
// task_started it holds once that commit returns. A batch is made durable
// (an fsync) only when something depends on it surviving a power cut:
//
//   - it starts an attempt of a non-idempotent task: after a crash, an
//     attempt whose start is not on disk could not be put in doubt, and
//     the task would run twice;
//   - it starts an attempt of a task whose upstream task's end is not
//     durable yet: the dependent's start reports that success, and a
//     success reported never runs again; a run handler (on_success,
//     on_failure, ...) starts on the outcome of the whole DAG, so its
//     start is always durable;
//   - it holds anything but task_started, task_finished, task_retrying and
//     task_skipped (run_finished decides the exit code; task_in_doubt
//     holds dependents until an operator resolves it).
//
// Otherwise the batch is written without an fsync and becomes durable with
// the next durable batch of the journal, or at the latest when the sync
// window (Options.SyncWindow, 10 ms by default) has passed since the oldest
// entry the loop wrote without an fsync: the loop then calls Journal.Sync,
// after launching what the turn started (a timer on Options.After wakes it
// when it would otherwise wait), so no launch waits for that fsync. A
// power cut thus loses at most the ends written in the last window, and
// only of idempotent tasks whose ends nothing has acted on yet: they run
// again on resume. The loop also syncs before it returns, and Observe
// (progress lines, metrics) sees an event only once it is durable. An
// idempotent attempt whose task_started is lost in a power cut died with
// the machine; one whose picoflow was killed alone is killed on resume by
// its PICOFLOW_RUN_ID (resume scans /proc for it, as for any leftover) and
// runs again, which is what idempotent means. A resumed run starts with a
// durable run_resumed, so whatever the journal held before its loop began
// is durable; a new run acts on nothing written before it, and its
// run_started may be lazy (Options.LazyStart): held like the loop's own
// entries, durable with the first durable batch or the window.

// durability tracks, for one run's loop, what its commits made durable.
type durability struct {
	durable uint64   // every entry up to this sequence number is durable
	ended   []uint64 // per task: the sequence number of its last end event
	// since is when the loop first wrote an entry without an fsync since
	// its last fsync (zero: none); due is set when the window's timer fired.
	since time.Time
	due   bool
	held  []*journal.Event // written without an fsync, not yet observed
}

// window is the run's sync window; negative: every batch is durable.
func (x *runner) window() time.Duration {
	if w := x.e.opts.SyncWindow; w != 0 {
		return w
	}
	return DefaultSyncWindow
}

// needsSync reports whether the batch evs must be durable before the loop
// launches the attempts it starts. It marks the ends in evs pending in
// x.dur.ended; committed, which follows, records their sequence numbers.
func (x *runner) needsSync(evs []*journal.Event) bool {
	if x.window() < 0 {
		return true
	}
	for _, ev := range evs {
		switch ev.Type {
		case journal.TaskFinished, journal.TaskRetrying, journal.TaskSkipped:
			// An end in this batch is not durable yet either: mark it
			// so until committed records its sequence number.
			if i, ok := x.wf.Index(ev.Task); ok {
				x.dur.ended[i] = endPending
			}
		case journal.TaskStarted:
		default:
			return true
		}
	}
	for _, ev := range evs {
		if ev.Type != journal.TaskStarted {
			continue
		}
		i, ok := x.wf.Index(ev.Task)
		if !ok || !x.wf.Tasks[i].Idempotent || x.wf.Tasks[i].IsHandler() {
			return true
		}
		for _, d := range x.wf.Deps(i) {
			if x.dur.ended[d] > x.dur.durable {
				return true
			}
		}
	}
	return false
}

// endPending is durability.ended of a task whose end is in the batch being
// committed: greater than any durable sequence number.
const endPending = math.MaxUint64

// committed records what a commit of evs wrote, and made durable if sync.
func (x *runner) committed(evs []*journal.Event, sync bool) {
	for _, ev := range evs {
		switch ev.Type {
		case journal.TaskFinished, journal.TaskRetrying, journal.TaskSkipped:
			if i, ok := x.wf.Index(ev.Task); ok {
				x.dur.ended[i] = ev.Seq
			}
		}
		if sync {
			x.dur.durable = max(x.dur.durable, ev.Seq)
		}
	}
	if sync {
		x.dur.since, x.dur.due = time.Time{}, false
	} else if len(evs) > 0 && x.dur.since.IsZero() {
		x.dur.since = x.e.opts.Clock()
	}
}

// syncIfDue makes what the loop wrote durable once the window has passed
// since its oldest entry not durable (or the window's timer fired): on a
// goroutine of its own (syncBehind), so that the loop goes on meanwhile.
func (x *runner) syncIfDue(now time.Time) {
	if x.syncing {
		return // the next one waits for it
	}
	if x.dur.since.IsZero() {
		x.dur.due = false
		return
	}
	if !x.dur.due && now.Sub(x.dur.since) < x.window() {
		return
	}
	x.syncBehind()
}

// syncResult is the outcome of a syncBehind.
type syncResult struct {
	seq uint64 // every entry up to it is durable, unless err
	err error
}

// syncBehind makes the entries written so far durable while the loop goes
// on: results are handled, and the attempts they start launched, during
// the fsync (a millisecond or more on an SD card), since those need none
// (needsSync); what they write starts a new window. The loop takes the
// outcome from x.synced (syncDone) before it returns (awaitSync).
// Journal.Sync holds no append back meanwhile (journal/synctail.go).
func (x *runner) syncBehind() {
	seq, j := x.r.LastSeq, x.e.opts.Journal
	x.syncing = true
	x.dur.since, x.dur.due = time.Time{}, false
	go func() { x.synced <- syncResult{seq, j.Sync()} }()
}

// syncDone takes the outcome of syncBehind: the entries up to its seq are
// durable and the held ones among them observed; an error ends the run
// (the loop returns it at the top of its next turn).
func (x *runner) syncDone(s syncResult) {
	x.syncing = false
	if s.err != nil {
		if x.syncErr == nil {
			x.syncErr = fmt.Errorf("run %s: %w", x.r.ID, s.err)
		}
		return
	}
	x.dur.durable = max(x.dur.durable, s.seq)
	x.e.releaseThrough(x.r, &x.dur.held, s.seq)
}

// awaitSync waits for a syncBehind in progress.
func (x *runner) awaitSync() {
	if x.syncing {
		x.syncDone(<-x.synced)
	}
}

// sync makes every entry written durable and observes the held events,
// in the loop: the run's last one, once no syncBehind runs.
func (x *runner) sync() error {
	if err := x.e.opts.Journal.Sync(); err != nil {
		return fmt.Errorf("run %s: %w", x.r.ID, err)
	}
	x.dur.durable = max(x.dur.durable, x.r.LastSeq)
	x.dur.since, x.dur.due = time.Time{}, false
	x.e.release(x.r, &x.dur.held)
	return nil
}

// syncTimer returns a channel that fires when the window of the oldest
// entry not durable ends (nil when every entry is durable). Like
// retryTimer, it is armed again only when that deadline moves. None
// while a window's sync runs (syncBehind): the loop wakes when it
// returns (x.synced), and syncIfDue starts the next one then if the
// window has passed; a timer armed meanwhile for a deadline passed would
// fire at once, turn after turn, for as long as the fsync lasts.
func (x *runner) syncTimer(now time.Time) <-chan time.Time {
	if x.dur.since.IsZero() || x.syncing {
		return nil
	}
	if at := x.dur.since.Add(x.window()); x.syncC == nil || !at.Equal(x.syncAt) {
		x.syncC, x.syncAt = x.e.opts.After(at.Sub(now)), at
	}
	return x.syncC
}
