package web

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/picoflow/picoflow/projector"
)

// stripRuns is how many of a workflow's newest runs its strip shows.
const stripRuns = 20

type workflowsPage struct {
	page
	Rows []workflowRow
}

type workflowRow struct {
	Workflow
	Next  string
	Last  *runRow  // the newest run; nil when none
	Strip []runRow // oldest first
}

// workflows serves /: each workflow with its schedule, next fire, last
// status and a strip of its newest runs.
func (s *Server) workflows(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	wfs, err := s.opts.Source.Workflows(ctx)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	runs, err := s.opts.Source.History(ctx, projector.Filter{Limit: stripRuns})
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	byName := map[string][]projector.Run{}
	for _, run := range runs {
		byName[run.Workflow] = append(byName[run.Workflow], run)
	}
	p := workflowsPage{page: page{Title: "Workflows", Nav: "workflows"}}
	for _, wf := range wfs {
		row := workflowRow{Workflow: wf, Next: s.when(wf.Next)}
		row.Strip = s.runRows(byName[wf.Name])
		if len(row.Strip) > 0 {
			row.Last = &row.Strip[0]
		}
		slices.Reverse(row.Strip)
		p.Rows = append(p.Rows, row)
	}
	s.write(w, r, http.StatusOK, func(m *markup) { m.workflowsPage(p) })
}

type runsPage struct {
	page
	Runs     []runRow
	Workflow string
	Status   string
	Limit    int
	Statuses []string
}

// Page and API defaults for ?limit=: the API's is history's.
const (
	pageLimit = 20
	apiLimit  = 10
)

// filter reads ?workflow=&status=&limit=&since=&until= (the flags of
// history; since and until as RFC 3339 times).
func filter(q url.Values, limit int) (projector.Filter, error) {
	f := projector.Filter{Workflow: q.Get("workflow"), Limit: limit}
	switch st := q.Get("status"); st {
	case "", projector.RunSuccess, projector.RunFailed, projector.RunCanceled, projector.RunRunning:
		f.Status = st
	default:
		return f, fmt.Errorf("%w: status must be success, failed, canceled or running, not %q", ErrBadRequest, st)
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return f, fmt.Errorf("%w: limit must be 0 (all) or more, not %q", ErrBadRequest, l)
		}
		f.Limit = n
	}
	for _, b := range []struct {
		key string
		to  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(b.key); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return f, fmt.Errorf("%w: %s must be an RFC 3339 time (2026-11-25T08:00:00Z), not %q", ErrBadRequest, b.key, v)
			}
			*b.to = t
		}
	}
	return f, nil
}

// runs serves /runs: the history table.
func (s *Server) runs(w http.ResponseWriter, r *http.Request) {
	f, err := filter(r.URL.Query(), pageLimit)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	runs, err := s.opts.Source.History(r.Context(), f)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	s.write(w, r, http.StatusOK, func(m *markup) {
		m.runsPage(runsPage{page: page{Title: "Runs", Nav: "runs"}, Runs: s.runRows(runs),
			Workflow: f.Workflow, Status: f.Status, Limit: f.Limit,
			Statuses: []string{projector.RunSuccess, projector.RunFailed, projector.RunCanceled, projector.RunRunning}})
	})
}

// apiRuns serves /api/runs: history --json.
func (s *Server) apiRuns(w http.ResponseWriter, r *http.Request) {
	f, err := filter(r.URL.Query(), apiLimit)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	f.Tasks = true
	s.writeJSON(w, r, func(out io.Writer) error { return s.opts.Source.HistoryJSON(r.Context(), out, f) })
}

// apiRun serves /api/runs/RUN_ID[?seq=N]: replay --json [--until N].
func (s *Server) apiRun(w http.ResponseWriter, r *http.Request) {
	seq, err := seqParam(r)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	id := r.PathValue("run")
	s.writeJSON(w, r, func(out io.Writer) error { return s.opts.Source.RunJSON(r.Context(), out, id, seq) })
}

// writeJSON streams what fn writes through a buffer: an error before the
// first 32 KiB are sent is still a clean status; a later one (the database
// failing half-way through an export) ends the body short and is logged.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, fn func(io.Writer) error) {
	lw := &lazyWriter{w: w}
	bw := bufio.NewWriterSize(lw, 32<<10)
	if err := fn(bw); err != nil {
		if !lw.started {
			s.failErr(w, r, err)
			return
		}
		s.opts.Logger.Error("web ui: response cut short", "path", r.URL.Path, "err", err)
	}
	_ = bw.Flush()
	if !lw.started {
		_, _ = lw.Write(nil) // an empty body still gets its headers
	}
}

// lazyWriter sends the JSON headers with the first bytes.
type lazyWriter struct {
	w       http.ResponseWriter
	started bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.Header().Set("Content-Type", "application/json")
		l.w.Header().Set("Cache-Control", "no-store")
		l.w.WriteHeader(http.StatusOK)
	}
	return l.w.Write(p)
}

func writeJSONError(w io.Writer, msg string) error {
	return json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func seqParam(r *http.Request) (uint64, error) {
	v := r.URL.Query().Get("seq")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%w: seq must be a journal entry number (1 or more), not %q", ErrBadRequest, v)
	}
	return n, nil
}

// Duration formats milliseconds compactly: 9ms, 42.5s, 3m07s, 2h05m. The
// CLI's tables use it too, so both show a duration the same way.
func Duration(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	switch {
	case d < time.Second:
		return strconv.FormatInt(ms, 10) + "ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

// statusClass is the CSS class of a status: st-NAME for the known ones.
func statusClass(s string) string {
	switch s {
	case "pending", "running", "retrying", "success", "failed", "timeout", "skipped", "in_doubt",
		"interrupted", "canceled":
		return "st-" + s
	}
	return "st-pending"
}

// when formats a time in the display zone; "" for the zero time.
func (s *Server) when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(s.opts.Zone).Format("2006-01-02 15:04:05")
}

// runDuration is a run's duration so far.
func (s *Server) runDuration(r *projector.Run) string {
	if !r.Finished.IsZero() {
		return Duration(r.DurationMS)
	}
	return ""
}

// runRow is one run of a table or strip, its times formatted.
type runRow struct {
	ID, Workflow, Status, Started, Duration, Trigger string
}

func (s *Server) runRows(runs []projector.Run) []runRow {
	out := make([]runRow, len(runs))
	for i := range runs {
		r := &runs[i]
		out[i] = runRow{ID: r.ID, Workflow: r.Workflow, Status: r.Status, Started: s.when(r.Started),
			Duration: s.runDuration(r), Trigger: r.Trigger}
	}
	return out
}
