package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/journal"
)

// progress reports run transitions: one readable line each on a terminal,
// or one slog record each with --log-format json.
type progress struct {
	w    io.Writer
	log  *slog.Logger
	json bool
	wf   *workflow.Workflow

	// The start line of a run is printed once its run_started is durable:
	// by the run's loop, or by a forced exit, which made it durable (a
	// lazy run_started is observed with the run's first fsync, and the
	// user needs the run id to resume it).
	mu      sync.Mutex
	lazy    *journal.Event // the run_started written without an fsync
	started bool           // the start line is out
}

// startWatch is the journal as the engine of a foreground run sees it: it
// tells the progress which run_started went out without an fsync, and
// holds every other write until ready, the end of a new home's directory
// fsyncs (heldJournal): a run_started written without an fsync may be
// lost anyway, but a task starts only once its task_started is written
// (or durable), and a durable write is one only once the journal's
// directory is.
type startWatch struct {
	engine.Journal
	p     *progress
	ready func() error
}

func (s startWatch) Append(evs ...*journal.Event) error {
	if err := s.ready(); err != nil {
		return err
	}
	return s.Journal.Append(evs...)
}

func (s startWatch) Sync() error {
	if err := s.ready(); err != nil {
		return err
	}
	return s.Journal.Sync()
}

func (s startWatch) AppendLazy(evs ...*journal.Event) error {
	if len(evs) != 1 || evs[0].Type != journal.RunStarted {
		if err := s.ready(); err != nil {
			return err
		}
	}
	err := s.Journal.AppendLazy(evs...)
	for _, e := range evs {
		if err == nil && e.Type == journal.RunStarted {
			s.p.mu.Lock()
			s.p.lazy = e
			s.p.mu.Unlock()
		}
	}
	return err
}

// forced prints the start line of a run started lazily and not printed
// yet; called after a forced exit froze the journal (which synced it).
func (p *progress) forced() {
	p.mu.Lock()
	e := p.lazy
	p.mu.Unlock()
	if e != nil {
		p.observe(&engine.Run{ID: e.Run, Workflow: e.Workflow}, e)
	}
}

// firstStart reports whether the start line is still to be printed, and
// marks it printed.
func (p *progress) firstStart() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	first := !p.started
	p.started = true
	return first
}

func newProgress(w io.Writer, g *globals, wf *workflow.Workflow) *progress {
	return &progress{w: w, log: g.log, json: g.logFormat == "json", wf: wf}
}

// names returns the task names, built when needed: a big DAG's run should
// not keep a second list of them.
func (p *progress) names() []string {
	out := make([]string, len(p.wf.Tasks))
	for i, t := range p.wf.Tasks {
		out[i] = t.Name
	}
	return out
}

func (p *progress) observe(r *engine.Run, e *journal.Event) {
	if e.Type == journal.RunStarted && !p.firstStart() {
		return // a forced exit printed it
	}
	if p.json {
		p.logJSON(r, e)
		return
	}
	ts := e.At().Format("15:04:05")
	line := ""
	switch e.Type {
	case journal.RunStarted:
		line = fmt.Sprintf("run %s of %s started (%d tasks", r.ID, r.Workflow, len(p.wf.DAG()))
		if h := len(p.wf.Tasks) - len(p.wf.DAG()); h > 0 {
			line += fmt.Sprintf(", %d handlers", h)
		}
		line += ")"
		if e.RerunOf != "" {
			line += ", a rerun of " + e.RerunOf
		}
	case journal.RunResumed:
		line = fmt.Sprintf("run %s resumed", r.ID)
	case journal.TaskStarted:
		line = fmt.Sprintf("  start  %s", e.Task)
		if e.Attempt > 1 {
			line += fmt.Sprintf(" (attempt %d)", e.Attempt)
		}
		if e.Resumed {
			line += " — resumed after interruption"
		}
	case journal.TaskFinished:
		if e.ReusedFrom != "" {
			line = fmt.Sprintf("  reuse  %s  %s in run %s", e.Task, e.Status, e.ReusedFrom)
			break
		}
		switch e.Status {
		case journal.StatusSuccess:
			line = fmt.Sprintf("  ok     %s  %s", e.Task, ms(e.DurationMS))
		case journal.StatusInterrupted:
			line = fmt.Sprintf("  interrupted %s  %s", e.Task, firstNonEmpty(e.Reason, e.Error))
		case journal.StatusCanceled:
			line = fmt.Sprintf("  cancel %s  %s", e.Task, canceledHow(e))
		default:
			line = fmt.Sprintf("  FAIL   %s  %s%s", e.Task, p.why(e), p.tail(e))
		}
		if e.Status == journal.StatusSuccess && e.Reason != "" {
			line += "\n         warning: " + e.Reason
		}
	case journal.TaskRetrying:
		line = fmt.Sprintf("  retry  %s  %s; attempt %d in %s%s", e.Task, p.why(e),
			e.Attempt+1, ms(e.BackoffMS), p.tail(e))
	case journal.TaskSkipped:
		line = fmt.Sprintf("  skip   %s  %s", e.Task, e.Reason)
		if e.Status == journal.StatusCanceled {
			line = fmt.Sprintf("  cancel %s  %s", e.Task, e.Reason)
		}
	case journal.RunCanceled:
		line = fmt.Sprintf("run %s canceled by %s", r.ID, e.By)
		if e.Reason != "" {
			line += ": " + e.Reason
		}
	case journal.TaskInDoubt:
		line = fmt.Sprintf("  DOUBT  %s  %s", e.Task, e.Reason)
	case journal.TaskResolved:
		line = fmt.Sprintf("  settle %s  %s", e.Task, e.Status)
	case journal.RunFinished:
		c := r.Counts(p.names())
		line = fmt.Sprintf("run %s %s in %s: %d succeeded, %d failed, %d skipped", r.ID, e.Status,
			ms(e.DurationMS), c[engine.Success], c[engine.Failed]+c[engine.TimedOut], c[engine.Skipped])
		if n := c[engine.Canceled]; n > 0 {
			line += fmt.Sprintf(", %d canceled", n)
		}
	default:
		return
	}
	fmt.Fprintf(p.w, "%s %s\n", ts, line)
}

// why says how an attempt failed.
func (p *progress) why(e *journal.Event) string {
	if e.Status == journal.StatusTimeout {
		return e.Error
	}
	return fmt.Sprintf("%s after %s", e.Error, ms(e.DurationMS))
}

// tail shows the last lines of a failed attempt's output, indented.
func (p *progress) tail(e *journal.Event) string {
	t := strings.TrimRight(e.Tail, "\n")
	if t == "" {
		return ""
	}
	lines := strings.Split(t, "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return "\n         | " + strings.Join(lines, "\n         | ")
}

func (p *progress) logJSON(r *engine.Run, e *journal.Event) {
	attrs := []any{"event", e.Type.String(), "run", r.ID, "workflow", r.Workflow, "seq", e.Seq}
	if e.Task != "" {
		attrs = append(attrs, "task", e.Task, "attempt", e.Attempt)
	}
	if e.Status != "" {
		attrs = append(attrs, "status", e.Status)
	}
	if e.Type == journal.TaskFinished || e.Type == journal.TaskRetrying {
		attrs = append(attrs, "exit_code", e.ExitCode, "duration_ms", e.DurationMS)
	}
	if e.Error != "" {
		attrs = append(attrs, "error", e.Error)
	}
	if e.BackoffMS > 0 {
		attrs = append(attrs, "backoff_ms", e.BackoffMS)
	}
	if e.Reason != "" {
		attrs = append(attrs, "reason", e.Reason)
	}
	if e.ReusedFrom != "" {
		attrs = append(attrs, "reused_from", e.ReusedFrom)
	}
	if e.RerunOf != "" {
		attrs = append(attrs, "rerun_of", e.RerunOf)
	}
	if e.LogPath != "" {
		attrs = append(attrs, "log", e.LogPath)
	}
	level := slog.LevelInfo
	if e.Status == journal.StatusFailed || e.Status == journal.StatusTimeout {
		level = slog.LevelWarn
	}
	p.log.Log(context.Background(), level, "transition", attrs...)
}

func ms(v int64) string {
	d := time.Duration(v) * time.Millisecond
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", v)
	case d < time.Minute:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// canceledHow says how a cancel ended an attempt: a live one was stopped
// after the grace; one no process ran (a dead process left it running)
// says so in its reason, as nothing was stopped.
func canceledHow(e *journal.Event) string {
	if strings.HasPrefix(e.Reason, engine.CanceledReason) {
		return e.Reason
	}
	return "stopped after the grace"
}
