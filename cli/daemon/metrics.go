package daemon

import (
	"bytes"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/journal"
)

// Histogram buckets (seconds), chosen for what each one measures.
var (
	// taskBuckets serve task attempts and whole runs: fixed le bounds
	// from 100 ms to 4 h, the same on every daemon, so that histograms of
	// several machines aggregate.
	taskBuckets  = []float64{.1, .5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600}
	lagBuckets   = []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 15, 60, 300}
	fsyncBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
)

// daemonMetrics are the daemon's series in the injected metrics.Set. The
// names follow Prometheus conventions: _total counters, _seconds units.
type daemonMetrics struct {
	set   *metrics.Set
	lag   *metrics.PrometheusHistogram
	fsync *metrics.PrometheusHistogram
	last  *lastRuns // per workflow: the newest run's status, the newest success

	// read by gauges; written by the loop
	queued, runs, workflows, invalid atomic.Int64
	lastTick                         atomic.Int64 // unix nanoseconds
}

func newMetrics(set *metrics.Set, slots *engine.Semaphore, version string) *daemonMetrics {
	// TYPE lines tell Prometheus which series are counters and histograms.
	// The library's switch is process-wide; the daemon is the only
	// exposer in its process.
	metrics.ExposeMetadata(true)
	m := &daemonMetrics{set: set}
	m.last = newLastRuns(m)
	m.lag = set.NewPrometheusHistogramExt("picoflow_schedule_lag_seconds", lagBuckets)
	m.fsync = set.NewPrometheusHistogramExt("picoflow_journal_fsync_duration_seconds", fsyncBuckets)
	gauge := func(name string, f func() float64) { set.NewGauge(name, f) }
	gauge("picoflow_running_tasks", func() float64 { return float64(slots.InUse()) })
	gauge("picoflow_task_slots", func() float64 { return float64(slots.Size()) })
	gauge("picoflow_running_runs", func() float64 { return float64(m.runs.Load()) })
	gauge("picoflow_queued_runs", func() float64 { return float64(m.queued.Load()) })
	gauge("picoflow_workflows", func() float64 { return float64(m.workflows.Load()) })
	gauge("picoflow_workflow_files_invalid", func() float64 { return float64(m.invalid.Load()) })
	gauge("picoflow_scheduler_last_tick_timestamp_seconds", func() float64 { return float64(m.lastTick.Load()) / 1e9 })
	gauge(fmt.Sprintf(`picoflow_build_info{version=%q}`, version), func() float64 { return 1 })
	return m
}

// journalStats exposes the journal's own counters at scrape time.
func (m *daemonMetrics) journalStats(stats func() journal.Stats) {
	m.set.RegisterMetricsWriter(func(w io.Writer) {
		s := stats()
		metrics.WriteCounterUint64(w, "picoflow_journal_entries_total", s.Entries)
		metrics.WriteCounterUint64(w, "picoflow_journal_bytes_written_total", s.BytesWritten)
		metrics.WriteCounterUint64(w, "picoflow_journal_fsyncs_total", s.Fsyncs)
	})
}

func (m *daemonMetrics) observeFsync(d time.Duration) { m.fsync.Update(d.Seconds()) }

func (m *daemonMetrics) counter(format string, args ...any) *metrics.Counter {
	return m.set.GetOrCreateCounter(fmt.Sprintf(format, args...))
}

// observe folds an engine event into the metrics. It runs on the runs'
// goroutines; the metrics types are safe for concurrent use.
func (m *daemonMetrics) observe(r *engine.Run, e *journal.Event) {
	switch e.Type {
	case journal.RunStarted:
		m.counter(`picoflow_runs_started_total{workflow=%q,trigger=%q}`, r.Workflow, e.Trigger).Inc()
		if e.FireTime > 0 {
			m.lag.Update(time.Duration(e.Time - e.FireTime).Seconds())
		}
	case journal.RunFinished:
		m.counter(`picoflow_runs_total{workflow=%q,status=%q}`, r.Workflow, e.Status).Inc()
		m.set.GetOrCreatePrometheusHistogramExt(fmt.Sprintf(`picoflow_run_duration_seconds{workflow=%q}`, r.Workflow), taskBuckets).
			Update(float64(e.DurationMS) / 1000)
		m.last.runEnded(r.Workflow, e.Status, e.At())
	case journal.TaskFinished, journal.TaskRetrying:
		if e.ReusedFrom != "" {
			break // a rerun's reused result: no attempt ran
		}
		m.counter(`picoflow_task_attempts_total{workflow=%q,status=%q}`, r.Workflow, e.Status).Inc()
		if e.Status != journal.StatusInterrupted || e.DurationMS > 0 {
			m.set.GetOrCreatePrometheusHistogramExt(fmt.Sprintf(`picoflow_task_duration_seconds{workflow=%q}`, r.Workflow), taskBuckets).
				Update(float64(e.DurationMS) / 1000)
		}
	}
}

func (m *daemonMetrics) fired(workflow, trigger string) {
	m.counter(`picoflow_schedule_fires_total{workflow=%q,trigger=%q}`, workflow, trigger).Inc()
}

func (m *daemonMetrics) skipped(workflow, reason string) {
	m.counter(`picoflow_schedule_skipped_total{workflow=%q,reason=%q}`, workflow, reason).Inc()
}

func (m *daemonMetrics) reloaded(result string) {
	m.counter(`picoflow_reloads_total{result=%q}`, result).Inc()
}

// write writes the Prometheus text exposition: the daemon's series, then
// the Go runtime and process metrics (go_*, process_*), with help texts
// (see withHelp).
func (m *daemonMetrics) write(w io.Writer) {
	var b bytes.Buffer
	m.set.WritePrometheus(&b)
	metrics.WriteProcessMetrics(&b)
	_, _ = w.Write(withHelp(b.Bytes()))
}
