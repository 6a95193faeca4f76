package web

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/journal"
	"github.com/picoflow/picoflow/projector"
)

// ErrNotFound and ErrBadRequest, wrapped in a Source's error, answer 404
// and 400; any other error is a 500.
var (
	ErrNotFound   = errors.New("not found")
	ErrBadRequest = errors.New("bad request")
)

// Source is what the UI reads. Package cli implements it over a home with
// the functions its commands use.
type Source interface {
	// Workflows lists the workflows known: defined in the workflows
	// directory or with runs in the history, by name.
	Workflows(ctx context.Context) ([]Workflow, error)
	// History returns the runs f selects, newest first, each with the
	// status history shows (running or interrupted for an unfinished run).
	History(ctx context.Context, f projector.Filter) ([]projector.Run, error)
	// HistoryJSON writes what `picoflow history --json` prints for f.
	HistoryJSON(ctx context.Context, w io.Writer, f projector.Filter) error
	// Run folds the run id (a unique prefix) up to journal entry seq
	// (0: to its end), as `picoflow replay --until seq` does.
	Run(ctx context.Context, id string, seq uint64) (*Run, error)
	// RunJSON writes what `picoflow replay --json [--until seq]` prints.
	RunJSON(ctx context.Context, w io.Writer, id string, seq uint64) error
	// Attempt returns one attempt of a task (0: the latest).
	Attempt(ctx context.Context, run, task string, attempt int) (*projector.Attempt, error)
}

// Workflow is one workflow of the workflows page.
type Workflow struct {
	Name     string
	Schedule string    // cron expression; "" when unscheduled
	Next     time.Time // the next fire; zero when none
	File     string    // the definition's file; "" when known from history only
	Problem  string    // why the file does not load, if it does not
}

// Run is one run folded from the journal.
type Run struct {
	State  *engine.Run      // the state after Events[:Shown]
	Events []*journal.Event // every event of the run, in journal order
	Shown  int
	Names  []string           // the tasks in definition order
	Def    *workflow.Workflow // the recorded definition; nil when it does not parse
	Live   bool               // a process runs it now
}

// Options configure the handler.
type Options struct {
	Source Source
	// Token, when set, is required of every request: as a bearer token or
	// as the cookie that /login?token= sets.
	Token  string
	Logger *slog.Logger
	// Now is the clock (tests fix it); default time.Now.
	Now func() time.Time
	// Zone is where times are shown; default time.Local.
	Zone *time.Location
}

//go:embed assets
var assets embed.FS

// Server serves the UI.
type Server struct {
	opts Options
	mux  *http.ServeMux
}

// New returns the UI's handler.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Zone == nil {
		opts.Zone = time.Local
	}
	s := &Server{opts: opts, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /{$}", s.workflows)
	s.mux.HandleFunc("GET /runs", s.runs)
	s.mux.HandleFunc("GET /runs/{run}", s.run)
	s.mux.HandleFunc("GET /runs/{run}/tasks/{task}/log", s.log)
	s.mux.HandleFunc("GET /runs/{run}/tasks/{task}/log/raw", s.rawLog)
	s.mux.HandleFunc("GET /api/runs", s.apiRuns)
	s.mux.HandleFunc("GET /api/runs/{run}", s.apiRun)
	s.mux.HandleFunc("GET /login", s.login)
	s.mux.HandleFunc("GET /static/", static)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			s.fail(w, r, http.StatusMethodNotAllowed, "this UI is read-only")
			return
		}
		s.fail(w, r, http.StatusNotFound, "no such page")
	})
	return s
}

// CSP allows the embedded script and stylesheet only: no inline script,
// no inline style, nothing from elsewhere.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// ServeHTTP sets the security headers, checks the token and routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	if r.URL.Path != "/login" && !s.allow(w, r) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Guard wraps h (the daemon's /metrics) in the token check.
func (s *Server) Guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.allow(w, r) {
			h.ServeHTTP(w, r)
		}
	})
}

// allow answers 401 and returns false when a token is set and r does not
// carry it.
func (s *Server) allow(w http.ResponseWriter, r *http.Request) bool {
	if s.opts.Token == "" || s.authorized(r) {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="picoflow"`)
	s.fail(w, r, http.StatusUnauthorized, "this PicoFlow UI needs its token (ui.token in the global config): "+
		"send it as Authorization: Bearer TOKEN, or open /login?token=TOKEN once in this browser")
	return false
}

const cookieName = "picoflow_ui"

// cookieValue is what the login cookie holds: a hash of the token, so the
// cookie jar does not hold the token itself.
func cookieValue(token string) string {
	sum := sha256.Sum256([]byte("picoflow-ui\x00" + token))
	return hex.EncodeToString(sum[:])
}

func (s *Server) authorized(r *http.Request) bool {
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return same(tok, s.opts.Token)
	}
	if c, err := r.Cookie(cookieName); err == nil {
		return same(c.Value, cookieValue(s.opts.Token))
	}
	return false
}

func same(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// login sets the cookie when ?token= is the token, and sends the browser
// to the workflows page.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if s.opts.Token == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if !same(r.URL.Query().Get("token"), s.opts.Token) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="picoflow"`)
		s.fail(w, r, http.StatusUnauthorized, "wrong or missing token: open /login?token=TOKEN with ui.token from the global config")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: cookieValue(s.opts.Token), Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: 30 * 24 * 3600})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// fail answers an error page (or JSON under /api/).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	if strings.HasPrefix(r.URL.Path, "/api/") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = writeJSONError(w, msg)
		return
	}
	s.write(w, r, code, func(m *markup) {
		m.errorPage(errorPage{page: page{Title: http.StatusText(code)}, Code: code, Msg: msg})
	})
}

// failErr answers err from the Source: 404 and 400 with its text, else
// 500 with a generic text (the error goes to the log).
func (s *Server) failErr(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		s.fail(w, r, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrBadRequest):
		s.fail(w, r, http.StatusBadRequest, err.Error())
	case r.Context().Err() != nil:
		// the client went away
	default:
		s.opts.Logger.Error("web ui", "path", r.URL.Path, "err", err)
		s.fail(w, r, http.StatusInternalServerError, "internal error (the log says more)")
	}
}

// write sends the page that fn writes. Its data is all read before, so
// nothing can fail half-way; it is streamed through a buffer rather than
// held whole (a 1,000-task run's page is over a megabyte).
func (s *Server) write(w http.ResponseWriter, r *http.Request, code int, fn func(m *markup)) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if r.Method == http.MethodHead {
		return
	}
	bw := bufio.NewWriterSize(w, 32<<10)
	fn(&markup{bw})
	_ = bw.Flush()
}

type page struct {
	Title string
	Nav   string // which nav link is current
}

type errorPage struct {
	page
	Code int
	Msg  string
}

// static serves the embedded assets by name. It is not http.FileServerFS:
// directory listings, Range requests and the MIME table are nothing the
// three small assets need, and they cost 78 kB on armv7 (ARCHITECTURE.md,
// "Binary size").
func static(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/static/")
	ctype, known := staticTypes[path.Ext(name)]
	b, err := assets.ReadFile("assets/static/" + name)
	if !known || err != nil || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

// staticTypes are the types http.FileServer gave the assets.
var staticTypes = map[string]string{
	".css": "text/css; charset=utf-8",
	".js":  "text/javascript; charset=utf-8",
	".svg": "image/svg+xml",
}
