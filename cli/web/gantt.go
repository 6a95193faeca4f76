package web

import (
	"fmt"
	"io"
	"time"

	"github.com/picoflow/picoflow/cli/dag"
	"github.com/picoflow/picoflow/journal"
)

// bar is one span of a task's row in the Gantt chart: an attempt, or the
// backoff wait before the next one.
type bar struct {
	from, to time.Time
	status   string // the attempt's outcome, "running", or "backoff"
	attempt  int
	exit     int
	ended    bool // the attempt ended with an exit code
}

// bars folds a run's events into the bars of each task, ending the
// attempts still open at asOf (a backoff still open keeps its planned end:
// its retry time was known then).
func bars(evs []*journal.Event, asOf time.Time) map[string][]bar {
	out := map[string][]bar{}
	open := map[string]int{} // task -> index of its open bar
	closeOpen := func(task string, at time.Time) {
		if i, ok := open[task]; ok {
			if b := &out[task][i]; b.status != "backoff" || at.Before(b.to) {
				b.to = at
			}
			delete(open, task)
		}
	}
	for _, e := range evs {
		at := e.At()
		switch e.Type {
		case journal.TaskStarted:
			closeOpen(e.Task, at) // a backoff ends when the retry starts
			out[e.Task] = append(out[e.Task], bar{from: at, status: "running", attempt: e.Attempt})
			open[e.Task] = len(out[e.Task]) - 1
		case journal.TaskFinished, journal.TaskRetrying:
			i, ok := open[e.Task]
			if !ok {
				continue
			}
			b := &out[e.Task][i]
			b.to, b.status, b.exit, b.ended = at, e.Status, e.ExitCode, true
			delete(open, e.Task)
			if e.Type == journal.TaskRetrying {
				out[e.Task] = append(out[e.Task], bar{from: at, to: time.Unix(0, e.RetryAt), status: "backoff", attempt: e.Attempt})
				open[e.Task] = len(out[e.Task]) - 1
			}
		}
	}
	for task, i := range open {
		if b := &out[task][i]; b.status != "backoff" {
			b.to = asOf
		}
	}
	return out
}

// Gantt geometry.
const (
	ganttLabel = 170
	ganttWidth = 760
	ganttRow   = 22
	ganttHead  = 22
)

// gantt draws the attempts of every task on one time axis from start to
// the end of the last span (at least asOf).
func gantt(w io.Writer, names []string, evs []*journal.Event, start, asOf time.Time) {
	bs := bars(evs, asOf)
	end := asOf
	for _, list := range bs {
		for _, b := range list {
			if b.to.After(end) {
				end = b.to
			}
		}
	}
	span := max(end.Sub(start), time.Millisecond)
	x := func(t time.Time) float64 {
		return ganttLabel + float64(t.Sub(start))/float64(span)*ganttWidth
	}
	h := ganttHead + len(names)*ganttRow + 4
	b := w
	fmt.Fprintf(b, `<svg class="gantt" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="timeline of attempts">`+"\n",
		ganttLabel+ganttWidth+40, h, ganttLabel+ganttWidth+40, h)
	step := tickStep(span)
	for t := time.Duration(0); t <= span; t += step {
		tx := ganttLabel + float64(t)/float64(span)*ganttWidth
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e3e7ec"/>`, tx, ganttHead-4, tx, h)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" font-size="11" fill="#66707c" text-anchor="middle">+%s</text>`+"\n",
			tx, ganttHead-8, Duration(t.Milliseconds()))
	}
	for i, name := range names {
		y := ganttHead + i*ganttRow
		if i%2 == 1 {
			fmt.Fprintf(b, `<rect x="0" y="%d" width="%d" height="%d" fill="#f6f8fa"/>`, y, ganttLabel+ganttWidth+40, ganttRow)
		}
		fmt.Fprintf(b, `<text x="%d" y="%d" font-size="12" fill="#1f2933">%s</text>`+"\n", 6, y+15, dag.Escape(dag.Clip(name, 24)))
		for _, s := range bs[name] {
			x1, x2 := x(s.from), x(s.to)
			w := max(x2-x1, 2)
			tip := barTip(name, s)
			if s.status == "backoff" {
				fmt.Fprintf(b, `<rect class="bar backoff" data-task="%s" x="%.1f" y="%d" width="%.1f" height="%d" fill="#f0a020" fill-opacity="0.22" stroke="#f0a020" stroke-dasharray="3 2"><title>%s</title></rect>`+"\n",
					dag.Escape(name), x1, y+6, w, ganttRow-12, dag.Escape(tip))
				continue
			}
			fmt.Fprintf(b, `<rect class="bar attempt" data-task="%s" data-attempt="%d" data-status="%s" x="%.1f" y="%d" width="%.1f" height="%d" rx="3" fill="%s"><title>%s</title></rect>`+"\n",
				dag.Escape(name), s.attempt, dag.Escape(s.status), x1, y+4, w, ganttRow-8, dag.Color(s.status), dag.Escape(tip))
		}
	}
	io.WriteString(b, "</svg>\n")
}

func barTip(name string, s bar) string {
	d := Duration(s.to.Sub(s.from).Milliseconds())
	if s.status == "backoff" {
		return fmt.Sprintf("%s: backoff %s before attempt %d", name, d, s.attempt+1)
	}
	tip := fmt.Sprintf("%s attempt %d: %s, %s", name, s.attempt, s.status, d)
	if s.ended {
		tip += fmt.Sprintf(", exit %d", s.exit)
	}
	return tip
}

// tickStep picks an axis step that gives 4 to 10 ticks.
func tickStep(span time.Duration) time.Duration {
	steps := []time.Duration{time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
		20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
		500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second,
		30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute,
		30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour}
	for _, s := range steps {
		if span/s <= 8 {
			return s
		}
	}
	return span / 8
}
