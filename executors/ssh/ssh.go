package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/picoflow/picoflow/executors"
	gossh "golang.org/x/crypto/ssh"
)

// Defaults of Options and of a task's config.
const (
	DefaultMaxSessions    = 8
	DefaultIdleTimeout    = 30 * time.Second
	DefaultConnectTimeout = 10 * time.Second
	DefaultKillGrace      = 5 * time.Second
)

// Options configure an Executor. The zero value is usable.
type Options struct {
	Logger *slog.Logger
	// MaxSessions bounds the sessions (tasks) running at once on one
	// connection; more open another connection. OpenSSH allows 10.
	MaxSessions int
	// IdleTimeout closes a connection that has had no session for that
	// long.
	IdleTimeout time.Duration
	// Home holds .ssh/known_hosts and the default keys; "" is the user's
	// home directory.
	Home string
	// AgentSocket is the ssh-agent socket; "" is $SSH_AUTH_SOCK. NoAgent
	// disables the agent.
	AgentSocket string
	NoAgent     bool
}

// Executor runs `type: ssh` tasks. Its connections are pooled across the
// tasks it runs; Close closes them.
type Executor struct {
	opts Options
	log  *slog.Logger
	pool *pool
}

var _ executors.Executor = (*Executor)(nil)

// New returns an Executor.
func New(opts Options) *Executor {
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	l := opts.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &Executor{opts: opts, log: l, pool: newPool(opts.MaxSessions, opts.IdleTimeout)}
}

// Close closes every pooled connection. Execute fails with ErrClosed after.
func (e *Executor) Close() error { return e.pool.close() }

// target is where and how a task connects. Tasks with the same key share
// connections: the key holds everything that decides whom we talk to and
// as whom, so that a task never rides on a connection authenticated with
// another task's key or verified under a laxer host key policy.
type target struct {
	addr       string // host:port
	user       string
	identity   string
	passphrase string
	knownHosts string
	insecure   bool
	timeout    time.Duration
}

func (t *target) key() string {
	return fmt.Sprintf("%s@%s|%s|%s|%t", t.user, t.addr, t.identity, t.knownHosts, t.insecure)
}

func (e *Executor) target(req *executors.Request) (*target, error) {
	cfg := req.Task.SSH
	host, port := cfg.Host, cfg.Port
	if h, p, err := net.SplitHostPort(cfg.Host); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("host %q: bad port", cfg.Host)
		}
		host, port = h, n
	}
	if host == "" {
		return nil, errors.New("host is empty")
	}
	if port == 0 {
		port = 22
	}
	t := &target{
		addr: net.JoinHostPort(host, strconv.Itoa(port)), user: cfg.User,
		identity: cfg.IdentityFile, passphrase: cfg.Passphrase,
		knownHosts: cfg.KnownHosts, insecure: cfg.InsecureIgnoreHostKey,
		timeout: cfg.ConnectTimeout,
	}
	if t.timeout <= 0 {
		t.timeout = DefaultConnectTimeout
	}
	if t.knownHosts == "" {
		t.knownHosts = e.expandHome("~/.ssh/known_hosts")
	} else {
		t.knownHosts = e.expandHome(t.knownHosts)
	}
	return t, nil
}

// Execute implements executors.Executor.
func (e *Executor) Execute(ctx context.Context, req *executors.Request) executors.Result {
	cfg := req.Task.SSH
	if cfg == nil {
		return fail(true, fmt.Errorf("task %q has no ssh config", req.Task.Name))
	}
	t, err := e.target(req)
	if err != nil {
		return fail(true, err)
	}
	so, se := req.Streams()
	// The session copies output on goroutines of its own; an abandoned
	// command (see stop) must not write after Execute returns.
	stdout, stderr := &gate{w: so}, &gate{w: se}
	defer stdout.close()
	defer stderr.close()
	if t.insecure {
		fmt.Fprintf(stderr, "picoflow: WARNING: insecure_ignore_host_key is set: the host key of %s is NOT verified, "+
			"anyone on the network path can impersonate it and read this task's commands and secrets\n", t.addr)
	}
	c, sess, err := e.session(ctx, t)
	if err != nil {
		if ctx.Err() != nil {
			return executors.Result{Status: executors.Interrupted, ExitCode: -1, Err: errors.New("interrupted by shutdown")}
		}
		return classify(t, err)
	}
	defer e.pool.put(c)
	defer sess.Close()

	prefix := e.sendEnv(c, sess, req.TaskEnv, stderr)
	sess.Stdout, sess.Stderr = stdout, stderr
	if err := sess.Start(prefix + cfg.Command); err != nil {
		return fail(false, fmt.Errorf("start remote command on %s: %w", t.addr, err))
	}
	began := time.Now()
	status, err := executors.Supervise(ctx, req, DefaultKillGrace, sess.Wait,
		func(grace time.Duration, done <-chan error) error { return e.stop(c, sess, grace, done, stderr) })
	res := exitResult(err)
	res.Status = status
	switch {
	case status == executors.TimedOut:
		res.Err = fmt.Errorf("timed out: ran %s, over its %s timeout", time.Since(began).Round(100*time.Millisecond), req.Timeout)
	case status == executors.Interrupted:
		res.Err = errors.New("interrupted by shutdown")
	case err != nil:
		res.Status = executors.Failed
	}
	werr := stdout.failed()
	if werr == nil {
		werr = stderr.failed()
	}
	executors.LogFailed(req, &res, werr)
	return res
}

// session reserves a connection and opens a session on it. When the
// session cannot be opened on a pooled connection (the server dropped it,
// or allows fewer sessions), that connection is retired and a fresh one
// tried, once: nothing has run yet, so this is not a retry of the task.
func (e *Executor) session(ctx context.Context, t *target) (*conn, *gossh.Session, error) {
	for try := 0; ; try++ {
		c, err := e.pool.get(ctx, t.key(), func(ctx context.Context) (*gossh.Client, error) {
			return e.dial(ctx, t)
		})
		if err != nil {
			return nil, nil, err
		}
		s, err := c.client.NewSession()
		if err == nil {
			return c, s, nil
		}
		e.pool.discard(c)
		e.pool.put(c)
		if try == 1 {
			return nil, nil, fmt.Errorf("open session: %w", err)
		}
		e.log.Debug("ssh: session refused on a pooled connection; opening another", "addr", t.addr, "err", err)
	}
}

// closeWait is how long a closed session gets to report its end.
const closeWait = time.Second

// stop ends a remote command: SIGTERM, then after grace SIGKILL and the
// session closed. OpenSSH refuses signals for root logins (it keeps no
// privilege separation after authentication) and keeps the channel open
// while the command runs; such a command cannot be stopped from here. Its
// connection is then retired, to close once the other sessions on it end,
// and stop reports that the command may still run, without waiting for it.
func (e *Executor) stop(c *conn, s *gossh.Session, grace time.Duration, done <-chan error, log io.Writer) error {
	_ = s.Signal(gossh.SIGTERM)
	if err, ok := waitDone(done, grace); ok {
		return err
	}
	_ = s.Signal(gossh.SIGKILL)
	_ = s.Close()
	if err, ok := waitDone(done, closeWait); ok {
		return err
	}
	e.pool.discard(c)
	fmt.Fprintf(log, "picoflow: the remote command did not stop on SIGTERM/SIGKILL and may still be running on the host "+
		"(OpenSSH ignores signals for root logins); log in as another user, or bound the command with timeout(1) on the host\n")
	return errors.New("the remote command did not stop")
}

func waitDone(done <-chan error, d time.Duration) (error, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-done:
		return err, true
	case <-t.C:
		return nil, false
	}
}

// dial connects and authenticates, within t.timeout for both.
func (e *Executor) dial(ctx context.Context, t *target) (*gossh.Client, error) {
	hostKey, algos, err := hostKeyCheck(t)
	if err != nil {
		return nil, err
	}
	a, err := e.authFor(t)
	if err != nil {
		return nil, err
	}
	defer a.close()
	if t.insecure {
		e.log.Warn("ssh: host key NOT verified (insecure_ignore_host_key): the connection can be intercepted", "addr", t.addr, "user", t.user)
	}
	cfg := &gossh.ClientConfig{
		User: t.user, Auth: []gossh.AuthMethod{a.method},
		HostKeyCallback: hostKey, HostKeyAlgorithms: algos, Timeout: t.timeout,
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() }) // bounds the handshake
	cc, chans, reqs, err := gossh.NewClientConn(nc, t.addr, cfg)
	if !stop() || err != nil {
		nc.Close()
		if err == nil || ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("ssh handshake with %s did not finish within %s", t.addr, t.timeout)
		}
		return nil, &handshakeError{err: err, tried: a.tried}
	}
	e.log.Debug("ssh: connected", "addr", t.addr, "user", t.user)
	return gossh.NewClient(cc, chans, reqs), nil
}

// handshakeError carries which keys were offered, for the message when the
// server accepted none.
type handshakeError struct {
	err   error
	tried string
}

func (e *handshakeError) Error() string { return e.err.Error() }
func (e *handshakeError) Unwrap() error { return e.err }

// classify turns a failure to connect into a Result: host key and
// authentication failures and bad settings cannot be fixed by retrying;
// everything else (refused, DNS, timeouts, resets) can.
func classify(t *target, err error) executors.Result {
	var hk *HostKeyError
	var ce *configError
	var at *handshakeError
	switch {
	case errors.Is(err, ErrClosed):
		return fail(true, err)
	case errors.As(err, &hk):
		return fail(true, hk)
	case errors.As(err, &ce):
		return fail(true, fmt.Errorf("ssh %s@%s: %w", t.user, t.addr, ce))
	case strings.Contains(err.Error(), "unable to authenticate"):
		tried := ""
		if errors.As(err, &at) {
			tried = " (offered: " + at.tried + ")"
		}
		return fail(true, fmt.Errorf("ssh %s@%s: authentication failed: the server accepted none of the keys%s; "+
			"add the public key to ~%s/.ssh/authorized_keys on the host", t.user, t.addr, tried, t.user))
	}
	return fail(false, fmt.Errorf("ssh connect %s@%s: %w", t.user, t.addr, err))
}

// exitResult maps what Session.Wait returned.
func exitResult(err error) executors.Result {
	var ee *gossh.ExitError
	var em *gossh.ExitMissingError
	switch {
	case err == nil:
		return executors.Result{}
	case errors.As(err, &ee) && ee.Signal() != "":
		return executors.Result{ExitCode: -1, Err: fmt.Errorf("killed by signal SIG%s", ee.Signal())}
	case errors.As(err, &ee):
		return executors.Result{ExitCode: ee.ExitStatus(), Err: fmt.Errorf("exit status %d", ee.ExitStatus())}
	case errors.As(err, &em):
		return executors.Result{ExitCode: -1, Err: errors.New("the remote command ended without an exit status (connection lost or killed)")}
	case errors.Is(err, io.EOF):
		return executors.Result{ExitCode: -1, Err: errors.New("connection lost while the command ran")}
	}
	return executors.Result{ExitCode: -1, Err: err}
}

func fail(noRetry bool, err error) executors.Result {
	return executors.Result{Status: executors.Failed, ExitCode: -1, NoRetry: noRetry, Err: err}
}

// gate passes writes on until closed, then drops them. A write that
// fails is recorded and what follows dropped: the session must keep
// reading the remote command's output, or the command blocks once the
// channel's window is full.
type gate struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
	err    error // the first write error
}

func (g *gate) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed && g.err == nil {
		_, g.err = g.w.Write(p)
	}
	return len(p), nil
}

// failed returns the first write error.
func (g *gate) failed() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}
