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
	case journal.TaskFinished, journal.TaskRetrying:
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

// metricHelp is the help text of each of the daemon's metrics.
var metricHelp = map[string]string{
	"picoflow_build_info":                            "The PicoFlow version, as a label; always 1.",
	"picoflow_journal_bytes_written_total":           "Bytes appended to the journal.",
	"picoflow_journal_entries_total":                 "Entries appended to the journal.",
	"picoflow_journal_fsync_duration_seconds":        "Time each journal fsync took.",
	"picoflow_journal_fsyncs_total":                  "Journal fsyncs.",
	"picoflow_queued_runs":                           "Runs waiting for an earlier run of their workflow (overlap: queue).",
	"picoflow_reloads_total":                         "Reloads of the workflows directory, by result.",
	"picoflow_running_runs":                          "Runs in progress.",
	"picoflow_running_tasks":                         "Task attempts running now, over all workflows.",
	"picoflow_runs_started_total":                    "Runs started, by workflow and trigger (schedule, catchup, manual).",
	"picoflow_runs_total":                            "Runs that finished, by workflow and final status.",
	"picoflow_schedule_fires_total":                  "Schedule fires that started a run, by workflow and trigger (schedule or catchup); manual triggers are not fires.",
	"picoflow_schedule_lag_seconds":                  "Time from a schedule fire's due time to its run's start.",
	"picoflow_schedule_skipped_total":                "Schedule fires that started no run, by workflow and reason.",
	"picoflow_scheduler_last_tick_timestamp_seconds": "When the scheduler loop last ran (unix seconds).",
	"picoflow_task_attempts_total":                   "Task attempts that ended, by workflow and outcome.",
	"picoflow_task_duration_seconds":                 "How long each task attempt ran, by workflow.",
	"picoflow_task_slots":                            "The task budget over all workflows (--max-parallel).",
	"picoflow_workflow_files_invalid":                "Files of the workflows directory that do not load.",
	"picoflow_workflows":                             "Workflows loaded from the workflows directory.",
}

// renamed are metrics of the library whose names break Prometheus
// conventions (a counter ends in _total, only a histogram or summary has
// _count series).
var renamed = map[string]string{
	"go_cgo_calls_count": "go_cgo_calls_total",
	"go_gc_forced_count": "go_gc_forced_total",
	"go_cpu_count":       "go_cpus",
}

// withHelp fills in the empty "# HELP name" lines the metrics library
// writes: ours from metricHelp, the library's Go and process metrics with
// a pointer to their source. It renames the library's metrics whose names
// break the conventions, and types its cumulative _total series as
// counters. promtool check metrics then passes.
func withHelp(text []byte) []byte {
	var out bytes.Buffer
	out.Grow(len(text) + len(text)/4)
	for len(text) > 0 {
		line := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i+1], text[i+1:]
		} else {
			text = nil
		}
		body := bytes.TrimRight(line, "\n")
		for old, repl := range renamed {
			body = renameMetric(body, old, repl)
		}
		if name, ok := bytes.CutSuffix(body, []byte("_total gauge")); ok && bytes.HasPrefix(name, []byte("# TYPE ")) {
			body = append(append([]byte{}, name...), "_total counter"...) // cumulative: the library calls them gauges
		}
		if name, ok := bytes.CutPrefix(body, []byte("# HELP ")); ok && !bytes.ContainsRune(name, ' ') {
			help, ok := metricHelp[string(name)]
			if !ok {
				help = "Go runtime and process metric " + string(name) + " (VictoriaMetrics/metrics)."
			}
			body = append(append(append([]byte{}, body...), ' '), help...)
		}
		out.Write(body)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// renameMetric renames metric old in one exposition line (a sample, or a
// HELP or TYPE line).
func renameMetric(line []byte, old, repl string) []byte {
	for _, p := range []string{"", "# HELP ", "# TYPE "} {
		pre := p + old
		if rest, ok := bytes.CutPrefix(line, []byte(pre)); ok && (len(rest) == 0 || rest[0] == ' ' || rest[0] == '{') {
			return append([]byte(p+repl), rest...)
		}
	}
	return line
}
