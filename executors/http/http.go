package httpx

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/picoflow/picoflow/executors"
)

// Limits and defaults.
const (
	DefaultTimeout = 30 * time.Second
	MaxBody        = 1 << 20  // response bytes read and logged
	MaxOutput      = 64 << 10 // bytes of one extracted output
	MaxRetryAfter  = time.Hour
	UserAgent      = "picoflow"
)

// Options configure an Executor. The zero value is usable.
type Options struct {
	Logger *slog.Logger
}

// Executor runs `type: http` tasks.
type Executor struct {
	log *slog.Logger

	mu         sync.Mutex
	transports map[string]*http.Transport // by ca_file, "" for the system roots
}

var _ executors.Executor = (*Executor)(nil)

// New returns an Executor.
func New(opts Options) *Executor {
	l := opts.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &Executor{log: l, transports: make(map[string]*http.Transport)}
}

// Close closes the idle connections of every transport.
func (e *Executor) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range e.transports {
		t.CloseIdleConnections()
	}
	return nil
}

// transport returns the transport for caFile, loading the file once.
func (e *Executor) transport(caFile string) (*http.Transport, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t, ok := e.transports[caFile]; ok {
		return t, nil
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificate in it", caFile)
		}
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	e.transports[caFile] = t
	return t, nil
}

// Execute implements executors.Executor.
func (e *Executor) Execute(ctx context.Context, req *executors.Request) executors.Result {
	cfg := req.Task.HTTP
	if cfg == nil {
		return fail(true, fmt.Errorf("task %q has no http config", req.Task.Name))
	}
	timeout := cfg.Timeout
	if timeout <= 0 || req.Timeout > 0 && req.Timeout < timeout {
		timeout = req.Timeout
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	tr, err := e.transport(cfg.CAFile)
	if err != nil {
		return fail(true, err)
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hreq, kind, size, err := newRequest(actx, cfg)
	if err != nil {
		return fail(true, err)
	}

	log, _ := req.Streams()
	fmt.Fprintf(log, "> %s %s (%s%d bytes)\n", hreq.Method, cfg.URL, kind, size)
	start := time.Now()
	resp, err := (&http.Client{Transport: tr, CheckRedirect: sameHost}).Do(hreq)
	if err != nil {
		return e.transportFailure(ctx, actx, timeout, err)
	}
	defer resp.Body.Close()
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	truncated := len(data) > MaxBody
	if truncated {
		data = data[:MaxBody]
	}
	logResponse(log, resp, data, truncated, time.Since(start))
	if readErr != nil {
		return e.transportFailure(ctx, actx, timeout, fmt.Errorf("read response: %w", readErr))
	}
	if !expected(resp.StatusCode, cfg.ExpectStatus) {
		return statusFailure(resp, cfg.ExpectStatus, time.Now())
	}
	res := executors.Result{Status: executors.Success}
	if len(cfg.Outputs) > 0 {
		if truncated {
			return fail(true, fmt.Errorf("outputs: the response is larger than %d bytes", MaxBody))
		}
		if res.Outputs, err = extract(data, cfg.Outputs); err != nil {
			return fail(true, fmt.Errorf("outputs: %w", err))
		}
	}
	return res
}

// newRequest builds the request of cfg: method (GET by default), body (the
// JSON encoding of cfg.JSON, or cfg.Body) and headers. It returns the body's
// kind for the log ("json, " or "") and its size.
func newRequest(ctx context.Context, cfg *executors.HTTPConfig) (hreq *http.Request, kind string, size int, err error) {
	method := cfg.Method
	if method == "" {
		method = http.MethodGet
	}
	var body []byte
	switch {
	case cfg.JSON != nil:
		if body, err = json.Marshal(cfg.JSON); err != nil {
			return nil, "", 0, fmt.Errorf("encode json body: %w", err)
		}
		kind = "json, "
	case cfg.Body != "":
		body = []byte(cfg.Body)
	}
	hreq, err = http.NewRequestWithContext(ctx, method, cfg.URL, bytes.NewReader(body))
	if err != nil {
		return nil, "", 0, fmt.Errorf("request: %w", err)
	}
	if body == nil {
		hreq.Body, hreq.ContentLength = http.NoBody, 0
	}
	for k, v := range cfg.Headers {
		if strings.EqualFold(k, "Host") {
			hreq.Host = v
		} else {
			hreq.Header.Set(k, v)
		}
	}
	if cfg.JSON != nil && hreq.Header.Get("Content-Type") == "" {
		hreq.Header.Set("Content-Type", "application/json")
	}
	if hreq.Header.Get("User-Agent") == "" {
		hreq.Header.Set("User-Agent", UserAgent)
	}
	return hreq, kind, len(body), nil
}

// logResponse writes the response to the task log: its status line, then
// the body read (up to MaxBody bytes), then a note when it was cut.
func logResponse(log io.Writer, resp *http.Response, data []byte, truncated bool, took time.Duration) {
	size := strconv.Itoa(len(data)) + " bytes"
	if truncated {
		size = "more than " + strconv.Itoa(MaxBody) + " bytes"
	}
	fmt.Fprintf(log, "< %s %s (%s, %s, %s)\n", resp.Proto, resp.Status, orNone(resp.Header.Get("Content-Type")), size,
		took.Round(time.Millisecond))
	if len(data) > 0 {
		log.Write(data)
		if data[len(data)-1] != '\n' {
			fmt.Fprintln(log)
		}
	}
	if truncated {
		fmt.Fprintf(log, "[response body truncated at %d bytes]\n", MaxBody)
	}
}

// sameHost follows up to 10 redirects within the scheme and host of the
// original request. A redirect elsewhere is not followed (its response is
// the result): the request's headers, which may carry credentials that
// net/http does not know to strip, must not travel to another server.
func sameHost(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
		return http.ErrUseLastResponse
	}
	return nil
}

// transportFailure classifies an error without a (complete) response.
func (e *Executor) transportFailure(ctx, actx context.Context, timeout time.Duration, err error) executors.Result {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	switch {
	case ctx.Err() != nil:
		return executors.Result{Status: executors.Interrupted, ExitCode: -1, Err: errors.New("interrupted by shutdown")}
	case errors.Is(actx.Err(), context.DeadlineExceeded):
		return executors.Result{Status: executors.TimedOut, ExitCode: -1, Err: fmt.Errorf("no complete response within %s", timeout)}
	case errors.As(err, &cv), errors.As(err, &ua), errors.As(err, &he), errors.As(err, &ci):
		return fail(true, fmt.Errorf("%w (TLS is always verified: give the server's CA with ca_file)", err))
	}
	return fail(false, err)
}

// statusFailure is the Result of an unexpected status.
func statusFailure(resp *http.Response, want []int, now time.Time) executors.Result {
	exp := "2xx"
	if len(want) > 0 {
		s := make([]string, len(want))
		for i, c := range want {
			s[i] = strconv.Itoa(c)
		}
		exp = strings.Join(s, ", ")
	}
	c := resp.StatusCode
	res := fail(true, fmt.Errorf("HTTP %s (want %s)", resp.Status, exp))
	if c >= 500 || c == http.StatusTooManyRequests || c == http.StatusRequestTimeout {
		res.NoRetry = false
		res.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), now)
		if res.RetryAfter > 0 {
			res.Err = fmt.Errorf("%w; the server asks to retry after %s", res.Err, res.RetryAfter)
		}
	}
	return res
}

func expected(code int, want []int) bool {
	if len(want) == 0 {
		return code >= 200 && code < 300
	}
	return slices.Contains(want, code)
}

// retryAfter parses a Retry-After value: delta seconds or an HTTP date.
// Anything else is 0; the result is at most MaxRetryAfter.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxRetryAfter)
}

func orNone(s string) string {
	if s == "" {
		return "no content type"
	}
	return s
}

func fail(noRetry bool, err error) executors.Result {
	return executors.Result{Status: executors.Failed, ExitCode: -1, NoRetry: noRetry, Err: err}
}
