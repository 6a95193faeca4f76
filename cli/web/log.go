package web

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/projector"
)

// logTail is how much of a log the log page shows.
const logTail = 256 << 10

type logPage struct {
	page
	Run, Workflow, Task, Status, LogPath, RunHref, RawHref string
	Attempt, Attempts                                      []int
	Current                                                int
	Text                                                   string
	Cut                                                    bool  // the page shows only the tail
	Size                                                   int64 // bytes shown up to, for live follow
	Follow                                                 bool
	Missing                                                string
}

// attempt reads the ?attempt= of a log route and finds it.
func (s *Server) attempt(w http.ResponseWriter, r *http.Request) (*projector.Attempt, bool) {
	n := 0
	if v := r.URL.Query().Get("attempt"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			s.failErr(w, r, fmt.Errorf("%w: attempt must be 1 or more, not %q", ErrBadRequest, v))
			return nil, false
		}
	}
	a, err := s.opts.Source.Attempt(r.Context(), r.PathValue("run"), r.PathValue("task"), n)
	if err != nil {
		s.failErr(w, r, err)
		return nil, false
	}
	return a, true
}

// log serves /runs/RUN_ID/tasks/TASK/log?attempt=N: the last 256 KiB of
// the attempt's log; a small script follows it while the attempt runs.
func (s *Server) log(w http.ResponseWriter, r *http.Request) {
	a, ok := s.attempt(w, r)
	if !ok {
		return
	}
	base := "/runs/" + url.PathEscape(a.Run)
	q := "?attempt=" + strconv.Itoa(a.Attempt)
	p := logPage{page: page{Title: a.Task + " · " + a.Run, Nav: "runs"}, Run: a.Run, Workflow: a.Workflow, Task: a.Task,
		Status: a.Status, LogPath: a.LogPath, RunHref: base, Current: a.Attempt,
		RawHref: base + "/tasks/" + url.PathEscape(a.Task) + "/log/raw" + q, Follow: a.Status == "running"}
	for i := 1; i <= a.Attempt; i++ {
		p.Attempts = append(p.Attempts, i)
	}
	f, err := os.Open(a.LogPath)
	switch {
	case a.LogPath == "":
		p.Missing = "this attempt has no log file"
	case errors.Is(err, os.ErrNotExist) && p.Follow:
		p.Missing = "the attempt has not written its log yet"
	case errors.Is(err, os.ErrNotExist) && engine.LogNotKept(a.LogPath, a.Status):
		p.Missing = "no output: the attempt succeeded without writing anything (PicoFlow keeps no log file for it)"
	case errors.Is(err, os.ErrNotExist) && engine.LogNeverKept(a.LogPath, a.Status):
		p.Missing = "this attempt has no log file: picoflow stopped before keeping it"
	case errors.Is(err, os.ErrNotExist):
		p.Missing = "the log file is gone (picoflow gc removes the logs of old runs: see retention.log_days)"
	case err != nil:
		s.failErr(w, r, err)
		return
	default:
		defer f.Close()
		if p.Text, p.Size, p.Cut, err = tail(f, logTail); err != nil {
			s.failErr(w, r, err)
			return
		}
		if p.Size == 0 && !p.Follow { // the run's last empty logs stay (engine/logfile.go)
			p.Missing = "no output: the attempt wrote nothing"
			if a.Status == "success" {
				p.Missing = "no output: the attempt succeeded without writing anything"
			}
		}
	}
	s.write(w, r, http.StatusOK, func(m *markup) { m.logPage(p) })
}

// tail reads the last n bytes of f and the size they end at.
func tail(f *os.File, n int64) (text string, size int64, cut bool, err error) {
	fi, err := f.Stat()
	if err != nil {
		return "", 0, false, err
	}
	size = fi.Size()
	from := max(size-n, 0)
	b := make([]byte, size-from)
	if _, err := f.ReadAt(b, from); err != nil && !errors.Is(err, io.EOF) {
		return "", 0, false, fmt.Errorf("read log: %w", err)
	}
	return string(b), size, from > 0, nil
}

// rawLog serves the whole log as text, or with ?offset=K what follows
// byte K; the X-Attempt-Status header says whether the attempt still
// runs, X-Log-Offset where the text sent ends.
func (s *Server) rawLog(w http.ResponseWriter, r *http.Request) {
	var off int64
	if v := r.URL.Query().Get("offset"); v != "" {
		var err error
		if off, err = strconv.ParseInt(v, 10, 64); err != nil || off < 0 {
			s.failErr(w, r, fmt.Errorf("%w: offset must be a byte count, not %q", ErrBadRequest, v))
			return
		}
	}
	a, ok := s.attempt(w, r)
	if !ok {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Attempt-Status", a.Status)
	f, err := os.Open(a.LogPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && (a.Status == "running" || engine.LogNotKept(a.LogPath, a.Status)) {
			// Not written yet, or nothing to write: an empty log.
			h.Set("X-Log-Offset", "0")
			return
		}
		s.fail(w, r, http.StatusNotFound, "no log file for this attempt")
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	size := fi.Size()
	off = min(off, size)
	h.Set("X-Log-Offset", strconv.FormatInt(size, 10))
	h.Set("Content-Length", strconv.FormatInt(size-off, 10))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = io.Copy(w, io.NewSectionReader(f, off, size-off))
}
