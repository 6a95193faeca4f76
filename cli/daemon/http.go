package daemon

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"
)

// CheckListen resolves the HTTP listen address: a missing host means the
// loopback address, and a host that is not loopback is refused unless
// public is set (the endpoints have no authentication).
func CheckListen(addr string, public bool) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w (want HOST:PORT, such as 127.0.0.1:9090)", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if public {
		return net.JoinHostPort(host, port), nil
	}
	hp := net.JoinHostPort(host, port)
	if !Loopback(hp) {
		return "", fmt.Errorf("listen address %s is not a loopback address: the endpoints have no authentication; "+
			"bind 127.0.0.1 (and scrape through a tunnel or a local agent), set ui.token in the global config "+
			"(the web UI and /metrics then need it), or pass --listen-public to serve /metrics and the health endpoints on %s anyway", addr, host)
	}
	return hp, nil
}

// Loopback reports whether addr (HOST:PORT) is on a loopback address
// (or localhost).
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// handler serves /metrics, /healthz and /readyz, and Options.UI on the
// other paths.
func (d *Daemon) handler() http.Handler {
	mux := http.NewServeMux()
	var metricsH http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		d.metrics.write(w)
	})
	if d.opts.Guard != nil {
		metricsH = d.opts.Guard(metricsH)
	}
	mux.Handle("GET /metrics", metricsH)
	if d.opts.UI != nil {
		mux.Handle("/", d.opts.UI)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		last := time.Unix(0, d.metrics.lastTick.Load())
		age := d.clock().Sub(last)
		ok := age <= d.staleAfter()
		writeJSON(w, ok, map[string]any{
			"status":      okWord(ok, "ok", "stale"),
			"last_tick":   last.UTC().Format(time.RFC3339Nano),
			"age_seconds": age.Seconds(),
		})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		pending := d.resumesPending.Load()
		open := d.journalOpen.Load()
		ok := open && pending == 0 && d.scheduling.Load()
		writeJSON(w, ok, map[string]any{
			"ready":           ok,
			"journal_open":    open,
			"resumes_pending": pending,
			"scheduling":      d.scheduling.Load(),
			"workflows":       d.metrics.workflows.Load(),
			"invalid_files":   d.metrics.invalid.Load(),
		})
	})
	return mux
}

// staleAfter is how old the loop's last tick may be before /healthz fails:
// the loop wakes at least every PollInterval.
func (d *Daemon) staleAfter() time.Duration { return max(3*d.opts.PollInterval, 10*time.Second) }

func okWord(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}

func writeJSON(w http.ResponseWriter, ok bool, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(v)
}
