package httpx

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picoflow/picoflow/executors"
)

// recorded is what a test server saw of one request.
type recorded struct {
	Method, Path, Host, ContentType, Auth string
	Body                                  string
}

// server is a loopback server that answers with handler and records
// every request.
type server struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

func newServer(t *testing.T, handler http.HandlerFunc) *server {
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, recorded{r.Method, r.URL.RequestURI(), r.Host, r.Header.Get("Content-Type"),
			r.Header.Get("Authorization"), string(b)})
		s.mu.Unlock()
		handler(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) requests() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.reqs...)
}

func respond(code int, headers map[string]string, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k, v := range headers {
			w.Header().Set(k, v)
		}
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

func exec(t *testing.T, e *Executor, cfg *executors.HTTPConfig, ctx context.Context, timeout time.Duration) (executors.Result, string) {
	t.Helper()
	if ctx == nil {
		ctx = context.Background()
	}
	log, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	res := e.Execute(ctx, &executors.Request{Run: "r", Workflow: "w", Attempt: 1, Timeout: timeout, Log: log,
		Task: &executors.Task{Name: "call", HTTP: cfg}})
	b, _ := os.ReadFile(log.Name())
	return res, string(b)
}

func TestStatus(t *testing.T) {
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		expect     []int
		status     executors.Status
		noRetry    bool
		retryAfter time.Duration // minimum
		err        string
	}{
		{"200", respond(200, nil, "ok"), nil, executors.Success, false, 0, ""},
		{"204", respond(204, nil, ""), nil, executors.Success, false, 0, ""},
		{"500 retryable", respond(500, nil, "boom"), nil, executors.Failed, false, 0, "HTTP 500 Internal Server Error (want 2xx)"},
		{"503 retry-after seconds", respond(503, map[string]string{"Retry-After": "7"}, ""), nil, executors.Failed, false, 7 * time.Second, "retry after 7s"},
		{"429 retry-after date", respond(429, map[string]string{"Retry-After": date}, ""), nil, executors.Failed, false, 80 * time.Second, "HTTP 429"},
		{"408 retryable", respond(408, nil, ""), nil, executors.Failed, false, 0, "HTTP 408"},
		{"404 final", respond(404, nil, "no such thing"), nil, executors.Failed, true, 0, "HTTP 404 Not Found"},
		{"401 final", respond(401, nil, ""), nil, executors.Failed, true, 0, "HTTP 401"},
		{"expected 201 got 200", respond(200, nil, ""), []int{201}, executors.Failed, true, 0, "want 201"},
		{"expected 404", respond(404, nil, ""), []int{200, 404}, executors.Success, false, 0, ""},
		{"redirect followed", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/" {
				http.Redirect(w, r, "/moved", http.StatusFound)
				return
			}
			io.WriteString(w, "moved here")
		}, nil, executors.Success, false, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, tt.handler)
			res, _ := exec(t, New(Options{}), &executors.HTTPConfig{URL: s.URL + "/", ExpectStatus: tt.expect}, nil, 0)
			if res.Status != tt.status || res.NoRetry != tt.noRetry {
				t.Fatalf("got %v noretry %v (%v), want %v noretry %v", res.Status, res.NoRetry, res.Err, tt.status, tt.noRetry)
			}
			if res.RetryAfter < tt.retryAfter || tt.retryAfter == 0 && res.RetryAfter != 0 || res.RetryAfter > tt.retryAfter+15*time.Second {
				t.Errorf("RetryAfter = %s, want about %s", res.RetryAfter, tt.retryAfter)
			}
			if tt.err != "" && (res.Err == nil || !strings.Contains(res.Err.Error(), tt.err)) {
				t.Errorf("err = %v, want %q", res.Err, tt.err)
			}
		})
	}
}

func TestRedirectElsewhereNotFollowed(t *testing.T) {
	other := newServer(t, respond(200, nil, "other"))
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusFound)
	})
	res, log := exec(t, New(Options{}), &executors.HTTPConfig{URL: s.URL,
		Headers: map[string]string{"X-Api-Key": "k3y"}}, nil, 0)
	if res.Status != executors.Failed || !res.NoRetry || !strings.Contains(res.Err.Error(), "HTTP 302 Found") {
		t.Fatalf("got %v noretry %v: %v", res.Status, res.NoRetry, res.Err)
	}
	if n := len(other.requests()); n != 0 {
		t.Errorf("the other host got %d request(s)", n)
	}
	if !strings.Contains(log, "< HTTP/1.1 302 Found") {
		t.Errorf("log %q", log)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		v    string
		want time.Duration
	}{
		{"", 0}, {"0", 0}, {"-5", 0}, {"120", 2 * time.Minute}, {" 3 ", 3 * time.Second},
		{"99999999999", MaxRetryAfter}, {"soon", 0},
		{"Wed, 25 Nov 2026 12:00:30 GMT", 30 * time.Second},
		{"Wed, 25 Nov 2026 11:00:00 GMT", 0},
		{"Thu, 26 Nov 2026 12:00:00 GMT", MaxRetryAfter},
	} {
		if got := retryAfter(tt.v, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %s, want %s", tt.v, got, tt.want)
		}
	}
}

func TestRequest(t *testing.T) {
	s := newServer(t, respond(200, map[string]string{"Content-Type": "text/plain"}, "pong"))
	e := New(Options{})
	res, log := exec(t, e, &executors.HTTPConfig{URL: s.URL + "/hook?x=1", Method: "POST",
		Headers: map[string]string{"Authorization": "Bearer t0k", "Host": "example.test"},
		JSON:    map[string]any{"workflow": "backup", "n": int64(3), "ok": true, "tags": []any{"a", "<b>"}}}, nil, 0)
	if res.Status != executors.Success {
		t.Fatal(res.Err)
	}
	r := s.requests()[0]
	var body map[string]any
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
		t.Fatalf("body %q: %v", r.Body, err)
	}
	if r.Method != "POST" || r.Path != "/hook?x=1" || r.ContentType != "application/json" || r.Auth != "Bearer t0k" || r.Host != "example.test" ||
		body["workflow"] != "backup" || body["n"] != 3.0 || body["ok"] != true || fmt.Sprint(body["tags"]) != "[a <b>]" {
		t.Errorf("server saw %+v, body %v", r, body)
	}
	for _, want := range []string{"> POST " + s.URL + "/hook?x=1 (json, ", "< HTTP/1.1 200 OK (text/plain, 4 bytes, ", "pong\n"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "t0k") {
		t.Error("a request header is in the log")
	}

	res, _ = exec(t, e, &executors.HTTPConfig{URL: s.URL, Method: "PUT", Body: "raw <data>",
		Headers: map[string]string{"Content-Type": "text/csv"}}, nil, 0)
	if r := s.requests()[1]; res.Status != executors.Success || r.Method != "PUT" || r.Body != "raw <data>" || r.ContentType != "text/csv" {
		t.Errorf("raw body: %v, server saw %+v", res.Err, r)
	}
	res, log = exec(t, e, &executors.HTTPConfig{URL: s.URL, Method: "HEAD"}, nil, 0)
	if r := s.requests()[2]; res.Status != executors.Success || r.Method != "HEAD" || strings.Contains(log, "pong") {
		t.Errorf("HEAD: %v, server saw %+v, log %q", res.Err, r, log)
	}
}

func TestTimeoutAndInterrupt(t *testing.T) {
	arrived := make(chan struct{}, 1)
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done() // hold the response until the client gives up
	})
	e := New(Options{})
	t.Run("config timeout", func(t *testing.T) {
		res, _ := exec(t, e, &executors.HTTPConfig{URL: s.URL, Timeout: 200 * time.Millisecond}, nil, 0)
		<-arrived
		if res.Status != executors.TimedOut || res.NoRetry || !strings.Contains(res.Err.Error(), "within 200ms") {
			t.Fatalf("got %v noretry %v: %v", res.Status, res.NoRetry, res.Err)
		}
	})
	t.Run("task timeout bounds it", func(t *testing.T) {
		res, _ := exec(t, e, &executors.HTTPConfig{URL: s.URL, Timeout: time.Hour}, nil, 150*time.Millisecond)
		<-arrived
		if res.Status != executors.TimedOut || !strings.Contains(res.Err.Error(), "within 150ms") {
			t.Fatalf("got %v: %v", res.Status, res.Err)
		}
	})
	t.Run("interrupt", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-arrived; cancel() }()
		res, _ := exec(t, e, &executors.HTTPConfig{URL: s.URL}, ctx, 0)
		if res.Status != executors.Interrupted {
			t.Fatalf("got %v: %v", res.Status, res.Err)
		}
	})
}

func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	res, _ := exec(t, New(Options{}), &executors.HTTPConfig{URL: "http://" + addr + "/"}, nil, 0)
	if res.Status != executors.Failed || res.NoRetry || !strings.Contains(res.Err.Error(), "refused") {
		t.Fatalf("got %v noretry %v: %v", res.Status, res.NoRetry, res.Err)
	}
}

func TestOutputs(t *testing.T) {
	body := `{"version":"1.2.3","n":1.50,"big":12345678901234567890,"ok":true,"none":null,
		"items":[{"id":7},{"id":"x"}],"obj":{"b":"<tag>","a":[1,2]},"odd key":"v"}`
	s := newServer(t, respond(200, map[string]string{"Content-Type": "application/json"}, body))
	e := New(Options{})
	res, _ := exec(t, e, &executors.HTTPConfig{URL: s.URL, Outputs: map[string]string{
		"version": ".version", "n": ".n", "big": ".big", "ok": ".ok", "none": ".none",
		"id": ".items[0].id", "id2": ".items[1].id", "obj": ".obj", "arr": ".obj.a", "odd": `.["odd key"]`,
	}}, nil, 0)
	if res.Status != executors.Success {
		t.Fatal(res.Err)
	}
	want := map[string]string{"version": "1.2.3", "n": "1.50", "big": "12345678901234567890", "ok": "true", "none": "null",
		"id": "7", "id2": "x", "obj": `{"a":[1,2],"b":"<tag>"}`, "arr": "[1,2]", "odd": "v"}
	for k, v := range want {
		if res.Outputs[k] != v {
			t.Errorf("%s = %q, want %q", k, res.Outputs[k], v)
		}
	}
	res, _ = exec(t, e, &executors.HTTPConfig{URL: s.URL, Outputs: map[string]string{"all": "."}}, nil, 0)
	var a, b any
	json.Unmarshal([]byte(res.Outputs["all"]), &a)
	json.Unmarshal([]byte(body), &b)
	if fmt.Sprint(a) != fmt.Sprint(b) || strings.Contains(res.Outputs["all"], "\n") {
		t.Errorf(". = %q", res.Outputs["all"])
	}

	res, _ = exec(t, e, &executors.HTTPConfig{URL: s.URL, Outputs: map[string]string{"x": ".missing", "y": ".items[5]"}}, nil, 0)
	if res.Status != executors.Failed || !res.NoRetry || !strings.Contains(res.Err.Error(), ".missing is not in the response") ||
		!strings.Contains(res.Err.Error(), ".items[5] is not in the response") {
		t.Errorf("missing paths: %v noretry %v: %v", res.Status, res.NoRetry, res.Err)
	}
	text := newServer(t, respond(200, nil, "<html>"))
	res, _ = exec(t, e, &executors.HTTPConfig{URL: text.URL, Outputs: map[string]string{"x": ".a"}}, nil, 0)
	if res.Status != executors.Failed || !res.NoRetry || !strings.Contains(res.Err.Error(), "not JSON") {
		t.Errorf("non-JSON: %v: %v", res.Status, res.Err)
	}
}

func TestBodyCap(t *testing.T) {
	s := newServer(t, respond(200, nil, strings.Repeat("x", MaxBody+100)))
	res, log := exec(t, New(Options{}), &executors.HTTPConfig{URL: s.URL}, nil, 0)
	if res.Status != executors.Success || !strings.Contains(log, "more than 1048576 bytes") ||
		!strings.HasSuffix(log, "[response body truncated at 1048576 bytes]\n") || len(log) > MaxBody+1024 {
		t.Errorf("%v, log of %d bytes ending %q", res.Err, len(log), log[max(0, len(log)-80):])
	}
}

func TestCustomCA(t *testing.T) {
	s := httptest.NewTLSServer(respond(200, nil, "secure"))
	defer s.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	e := New(Options{})
	defer e.Close()
	res, _ := exec(t, e, &executors.HTTPConfig{URL: s.URL}, nil, 0)
	if res.Status != executors.Failed || !res.NoRetry || !strings.Contains(res.Err.Error(), "ca_file") {
		t.Fatalf("untrusted server: %v noretry %v: %v", res.Status, res.NoRetry, res.Err)
	}
	res, log := exec(t, e, &executors.HTTPConfig{URL: s.URL, CAFile: ca}, nil, 0)
	if res.Status != executors.Success || !strings.Contains(log, "secure") {
		t.Fatalf("with ca_file: %v: %v", res.Status, res.Err)
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o644)
	res, _ = exec(t, e, &executors.HTTPConfig{URL: s.URL, CAFile: bad}, nil, 0)
	if res.Status != executors.Failed || !res.NoRetry || !strings.Contains(res.Err.Error(), "no PEM certificate") {
		t.Fatalf("bad ca_file: %v: %v", res.Status, res.Err)
	}
	res, _ = exec(t, e, &executors.HTTPConfig{URL: s.URL, CAFile: filepath.Join(t.TempDir(), "none.pem")}, nil, 0)
	if !res.NoRetry || !errors.Is(res.Err, os.ErrNotExist) {
		t.Fatalf("missing ca_file: %v", res.Err)
	}
}
