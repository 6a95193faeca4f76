package daemon

import (
	"fmt"
	"sync"
	"time"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/journal"
)

func init() {
	metricHelp["picoflow_run_duration_seconds"] = "How long each run took from start to finish, by workflow."
	metricHelp["picoflow_workflow_last_run_status"] = "1 for the final status of the workflow's newest finished run, 0 for the other statuses."
	metricHelp["picoflow_workflow_last_success_timestamp_seconds"] = "When the workflow's newest successful run finished (unix seconds)."
}

// runStatuses are the final statuses of a run, the values of the status
// label of picoflow_workflow_last_run_status.
var runStatuses = []string{journal.StatusSuccess, journal.StatusFailed, journal.StatusCanceled}

// lastRuns holds, per workflow, the outcome of its newest finished run and
// the end of its newest successful one: the series alerting rules need
// (a workflow failing, no success within its window). They are seeded
// from the journals when the daemon starts, so a restart does not reset
// them, and then follow the runs of this daemon.
type lastRuns struct {
	m       *daemonMetrics
	mu      sync.Mutex
	status  map[string]string    // workflow → status of its newest finished run
	endAt   map[string]time.Time // workflow → when that run ended
	success map[string]time.Time // workflow → end of its newest successful run
}

func newLastRuns(m *daemonMetrics) *lastRuns {
	return &lastRuns{m: m, status: map[string]string{}, endAt: map[string]time.Time{}, success: map[string]time.Time{}}
}

// seed folds the finished runs of a replayed state in.
func (l *lastRuns) seed(st *engine.State) {
	for _, r := range st.Runs {
		switch r.Status {
		case engine.RunSuccess, engine.RunFailed, engine.RunCanceled:
			l.runEnded(r.Workflow, r.Status.String(), r.Finished)
		}
	}
}

// runEnded records that a run of workflow ended with status at t. An older
// end than the one known changes nothing (seeding visits runs in any
// order).
func (l *lastRuns) runEnded(workflow, status string, t time.Time) {
	if status != journal.StatusSuccess && status != journal.StatusCanceled {
		status = journal.StatusFailed
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, known := l.status[workflow]; !known {
		l.register(workflow)
	}
	if !t.Before(l.endAt[workflow]) {
		l.status[workflow], l.endAt[workflow] = status, t
	}
	if status == journal.StatusSuccess && t.After(l.success[workflow]) {
		if l.success[workflow].IsZero() {
			l.m.set.NewGauge(fmt.Sprintf(`picoflow_workflow_last_success_timestamp_seconds{workflow=%q}`, workflow), func() float64 {
				l.mu.Lock()
				defer l.mu.Unlock()
				return float64(l.success[workflow].UnixNano()) / 1e9
			})
		}
		l.success[workflow] = t
	}
}

// register creates the status series of a workflow seen for the first
// time: one per status, 1 for the newest run's, 0 for the others. Called
// with l.mu held; the gauges' callbacks take it at scrape time.
func (l *lastRuns) register(workflow string) {
	for _, s := range runStatuses {
		l.m.set.NewGauge(fmt.Sprintf(`picoflow_workflow_last_run_status{workflow=%q,status=%q}`, workflow, s), func() float64 {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.status[workflow] == s {
				return 1
			}
			return 0
		})
	}
}
