package daemon

import "bytes"

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
