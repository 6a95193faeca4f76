package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/picoflow/picoflow/cli/daemon"
	"github.com/picoflow/picoflow/cli/web"
	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/journal"
	"github.com/picoflow/picoflow/projector"
	"github.com/spf13/pflag"
)

func init() {
	register(&command{
		name:    "ui",
		summary: "serve the read-only web UI of a home (runs, DAGs, timelines, logs)",
		long: `Serves the web UI without a daemon: the workflows, the run history, each
run's DAG and timeline (folded to any journal entry: ?seq=N), task logs,
and /api/runs and /api/runs/RUN_ID (what history --json and replay --json
print). Nothing in it changes anything. A daemon serves the same UI on its
--listen address.

Only on loopback unless ui.token is set in the global config; with a token
every request needs it: Authorization: Bearer TOKEN, or open
/login?token=TOKEN once in the browser (it sets a cookie).

  picoflow ui
  picoflow ui --listen 127.0.0.1:8080 --workflows /etc/picoflow/workflows`,
		setup: func(fs *pflag.FlagSet) runFunc {
			listen := fs.String("listen", "127.0.0.1:8080", "serve on HOST:PORT")
			dir := fs.String("workflows", "", "directory of workflow files, for schedules and next fires (default: as the daemon's)")
			return func(ctx context.Context, m *Main, g *globals, args []string) error {
				if len(args) != 0 {
					return exitf(ExitUsage, "ui takes no arguments")
				}
				return m.serveUI(ctx, g, *listen, *dir)
			}
		},
	})
}

func (m *Main) serveUI(ctx context.Context, g *globals, listen, dir string) error {
	cfg := globalConfig(g)
	addr, err := uiListen(listen, cfg.UI.Token)
	if err != nil {
		return withCode(ExitUsage, err)
	}
	h := home(g.home)
	if _, err := os.Stat(string(h)); errors.Is(err, os.ErrNotExist) {
		return exitf(ExitNotFound, "no PicoFlow home at %s: nothing has run here yet (see --home, $PICOFLOW_HOME)", h)
	}
	src := m.newUISource(g, firstNonEmpty(dir, cfg.Paths.WorkflowsDir, defaultWorkflowsDir(h)))
	defer src.close()
	log := daemonLogger(m, g)
	srv := &http.Server{Handler: m.uiHandler(g, src, log), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return withCode(ExitUsage, fmt.Errorf("listen %s: %w", addr, err))
	}
	log.Info("serving the web UI", "url", "http://"+l.Addr().String()+"/", "home", string(h), "token", cfg.UI.Token != "")
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return withCode(ExitInternal, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}

// uiListen checks a UI address: loopback, or anything with a token.
func uiListen(addr, token string) (string, error) {
	a, err := daemon.CheckListen(addr, true)
	if err != nil {
		return "", err
	}
	if token == "" && !daemon.Loopback(a) {
		return "", fmt.Errorf("listen address %s is not a loopback address and the UI has no token: "+
			"set ui.token in the global config (every request then needs it), or bind 127.0.0.1 and use a tunnel", addr)
	}
	return a, nil
}

// uiHandler is the web UI over src.
func (m *Main) uiHandler(g *globals, src *uiSource, log *slog.Logger) *web.Server {
	return web.New(web.Options{Source: src, Token: globalConfig(g).UI.Token, Logger: log, Zone: m.zone()})
}

// uiSource is the web UI's view of a home, through the functions the
// query commands use: the projection (history --json) and the engine's
// fold of the journal (replay --json).
type uiSource struct {
	m     *Main
	g     *globals
	h     home
	base  workflow.Config
	wfDir string

	mu sync.Mutex // guards db and serialises catch-ups
	db *projector.DB

	defMu   sync.Mutex                    // guards defs and lastRun
	defs    map[string]*workflow.Workflow // parsed definitions by hash, a few
	lastRun cachedRun                     // the events of the finished run shown last
}

// cachedRun keeps the journal entries of the finished run the UI showed
// last: paging through its time travel or reloading it reads no journal.
type cachedRun struct {
	id     string
	last   uint64
	events []*journal.Event
}

// uiDefs is how many parsed definitions the UI keeps: parsing a
// 1,000-task definition allocates megabytes, and a run page is often
// reloaded or travelled through.
const uiDefs = 8

// parse is parser(base) with a small cache by definition hash.
func (s *uiSource) parse(r *engine.Run) *workflow.Workflow {
	s.defMu.Lock()
	defer s.defMu.Unlock()
	if wf, ok := s.defs[r.DefHash]; ok && r.DefHash != "" {
		return wf
	}
	wf := parser(s.base)(r)
	if s.defs == nil || len(s.defs) >= uiDefs {
		s.defs = map[string]*workflow.Workflow{}
	}
	s.defs[r.DefHash] = wf
	return wf
}

var _ web.Source = (*uiSource)(nil)

func (m *Main) newUISource(g *globals, wfDir string) *uiSource {
	return &uiSource{m: m, g: g, h: home(g.home), base: workflowBase(g.cfg), wfDir: wfDir}
}

func (s *uiSource) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db != nil {
		s.db.Close()
		s.db = nil
	}
}

// projection opens the database on first use and brings it up to date.
func (s *uiSource) projection(ctx context.Context) (*projector.DB, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		db, err := s.m.openProjection(s.g)
		if err != nil {
			return nil, err
		}
		s.db = db
	}
	if _, err := s.h.catchUp(ctx, s.db); err != nil {
		return nil, err
	}
	return s.db, nil
}

// webErr turns a command error into the UI's: not found is a 404, a usage
// error a 400.
func webErr(err error) error {
	var ee *exitError
	switch {
	case errors.Is(err, projector.ErrNotFound):
		return fmt.Errorf("%w: %v", web.ErrNotFound, err)
	case errors.As(err, &ee) && ee.code == ExitNotFound:
		return fmt.Errorf("%w: %v", web.ErrNotFound, err)
	case errors.As(err, &ee) && ee.code == ExitUsage:
		return fmt.Errorf("%w: %v", web.ErrBadRequest, err)
	}
	return err
}

// Workflows lists the workflow files of the workflows directory and the
// workflows with runs, by name.
func (s *uiSource) Workflows(ctx context.Context) ([]web.Workflow, error) {
	byName := map[string]web.Workflow{}
	now := s.m.now()
	files, _ := filepath.Glob(filepath.Join(s.wfDir, "*.y*ml"))
	for _, f := range files {
		if ext := filepath.Ext(f); ext != ".yaml" && ext != ".yml" {
			continue
		}
		wf, err := workflow.LoadWith(f, s.base)
		if err != nil {
			name := strings.TrimSuffix(filepath.Base(f), filepath.Ext(f))
			byName[name] = web.Workflow{Name: name, File: f, Problem: err.Error()}
			continue
		}
		w := web.Workflow{Name: wf.Name, File: f, Schedule: wf.Schedule}
		if job, err := daemon.JobOf(wf); err == nil && job.Schedule != nil {
			w.Next = job.Schedule.Next(now)
		}
		if _, dup := byName[wf.Name]; !dup {
			byName[wf.Name] = w
		}
	}
	db, err := s.projection(ctx)
	if err != nil {
		return nil, err
	}
	runs, err := db.History(ctx, projector.Filter{Limit: 1})
	if err != nil {
		return nil, err
	}
	for _, r := range runs {
		if _, ok := byName[r.Workflow]; !ok {
			byName[r.Workflow] = web.Workflow{Name: r.Workflow}
		}
	}
	out := make([]web.Workflow, 0, len(byName))
	for _, w := range byName {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// History is history's query, with the status history shows.
func (s *uiSource) History(ctx context.Context, f projector.Filter) ([]projector.Run, error) {
	db, err := s.projection(ctx)
	if err != nil {
		return nil, err
	}
	runs, err := db.History(ctx, f)
	held := map[string]bool{}
	for i := range runs {
		runs[i].Status = s.h.displayStatus(&runs[i], held)
	}
	return runs, err
}

// HistoryJSON is history --json.
func (s *uiSource) HistoryJSON(ctx context.Context, w io.Writer, f projector.Filter) error {
	db, err := s.projection(ctx)
	if err != nil {
		return err
	}
	tc := &taskCompleter{ctx: ctx, db: db, base: s.base, names: map[string][]string{}}
	return streamHistoryJSON(ctx, w, db, f, s.h, map[string]bool{}, tc)
}

// fold is replay --until seq of run id. When the projection knows the
// run, the scan reads from its first entry, and for a finished run stops
// after its last (an old run of a long journal costs its own entries).
func (s *uiSource) fold(ctx context.Context, id string, seq uint64) (*replayed, error) {
	var sp span
	if db, err := s.projection(ctx); err == nil {
		if r, err := db.Run(ctx, id); err == nil {
			sp.journal, sp.first = r.Workflow, r.FirstSeq
			if r.Status != projector.RunRunning {
				sp.last = r.LastSeq
			}
		}
	}
	past := func(*journal.Event) bool { return false }
	if seq > 0 {
		past = func(e *journal.Event) bool { return e.Seq > seq }
	}
	events := s.cached(id, sp)
	if events == nil {
		var err error
		srcs, err := s.h.journals()
		if err != nil {
			return nil, err
		}
		if id, events, err = readRun(srcs, io.Discard, "the journals of "+string(s.h), id, sp); err != nil {
			return nil, webErr(err)
		}
		if sp.last > 0 {
			s.cache(id, events)
		}
	}
	rp, err := foldEvents(id, events, past, s.parse)
	return rp, webErr(err)
}

// cached returns the events of finished run id kept by an earlier request.
// A finished run's entries never change (gc removes whole runs; a removed
// run has no projection row, so sp.last is 0 for it).
func (s *uiSource) cached(id string, sp span) []*journal.Event {
	s.defMu.Lock()
	defer s.defMu.Unlock()
	if c := s.lastRun; sp.last > 0 && c.id == id && c.last == sp.last {
		return c.events
	}
	return nil
}

func (s *uiSource) cache(id string, events []*journal.Event) {
	s.defMu.Lock()
	defer s.defMu.Unlock()
	s.lastRun = cachedRun{id: id, last: events[len(events)-1].Seq, events: events}
}

// Run is the fold of replay, for the run page.
func (s *uiSource) Run(ctx context.Context, id string, seq uint64) (*web.Run, error) {
	rp, err := s.fold(ctx, id, seq)
	if err != nil {
		return nil, err
	}
	return &web.Run{State: rp.run, Events: rp.events, Shown: rp.shown, Names: rp.names, Def: rp.wf,
		Live: s.h.workflowHeld(rp.run.Workflow)}, nil
}

// RunJSON is replay --json [--until seq].
func (s *uiSource) RunJSON(ctx context.Context, w io.Writer, id string, seq uint64) error {
	rp, err := s.fold(ctx, id, seq)
	if err != nil {
		return err
	}
	return replayJSON(w, rp.run, rp.events[:rp.shown], rp.names)
}

// Attempt is the attempt logs shows; a running attempt of a run that no
// process runs is interrupted.
func (s *uiSource) Attempt(ctx context.Context, run, task string, attempt int) (*projector.Attempt, error) {
	db, err := s.projection(ctx)
	if err != nil {
		return nil, err
	}
	a, err := db.FindAttempt(ctx, projector.AttemptQuery{Run: run, Task: task, Attempt: attempt})
	if err != nil {
		return nil, webErr(err)
	}
	if a.Status == "running" && !s.h.workflowHeld(a.Workflow) {
		a.Status = "interrupted"
	}
	return a, nil
}
