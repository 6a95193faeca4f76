package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"syscall"
	"time"
)

// The control socket (HOME/daemon.sock, mode 0600) speaks one JSON object
// per line: a client connects, writes one Request, reads one Response, and
// the daemon closes the connection. Peers must run as the daemon's user or
// as root (SO_PEERCRED).
//
//	→ {"op":"trigger","workflow":"backup","params":{"TARGET":"/mnt"}}
//	← {"ok":true,"run":"20261125-193700-3f2a","workflow":"backup"}
//	→ {"op":"status"}
//	← {"ok":true,"status":{"pid":1234,"ready":true,"workflows":[...]}}
//	→ {"op":"resolve","workflow":"backup","run":"20261125-193700-3f2a","task":"push","status":"success"}
//	← {"ok":true,"run":"20261125-193700-3f2a","workflow":"backup"}
//	→ {"op":"resume","workflow":"backup","run":"20261125-193700-3f2a"}
//	← {"ok":true,"run":"20261125-193700-3f2a","workflow":"backup","end":{"status":"success"}}   when it ends
//	→ {"op":"truncate","workflow":"backup","before":9811}
//	← {"ok":true,"workflow":"backup"}
//	→ {"op":"cancel","workflow":"backup","run":"20261125-193700-3f2a","reason":"wrong target","by":"ops@box/812","grace":0}
//	← {"ok":true,"run":"20261125-193700-3f2a","workflow":"backup"}   the run journals the cancel next
//	→ {"op":"reload"}
//	← {"ok":true}
//	← {"ok":false,"code":"busy","error":"..."}   on failure

// Ops of a Request.
const (
	OpTrigger = "trigger"
	OpStatus  = "status"
	OpReload  = "reload"
	// OpResolve journals the resolution of an in-doubt task in a journal
	// the daemon holds (a CLI cannot write it then).
	OpResolve = "resolve"
	// OpTruncate cuts the front of a journal the daemon holds, before
	// entry Before (picoflow gc computed the cut).
	OpTruncate = "truncate"
	// OpResume resumes an interrupted run of a workflow whose journal the
	// daemon holds, and answers when the run ends (Response.End).
	OpResume = "resume"
	// OpCancel hands a cancel to a run the daemon executes (picoflow
	// cancel); the run journals it on its own loop.
	OpCancel = "cancel"
)

// Codes of a failed Response.
const (
	CodeNotFound = "not_found" // no such workflow
	CodeBusy     = "busy"      // a run of the workflow is in progress and its overlap policy is not allow
	CodeInvalid  = "invalid"   // bad request (unknown op, undeclared parameter)
	CodeStopping = "stopping"  // the daemon is shutting down
	CodeInternal = "internal"  // the journal failed
)

// maxRequest bounds a request line.
const maxRequest = 64 << 10

// Request is one control command.
type Request struct {
	Op       string            `json:"op"`
	Workflow string            `json:"workflow,omitempty"`
	Params   map[string]string `json:"params,omitempty"`
	Force    bool              `json:"force,omitempty"` // trigger even while a run is in progress
	// Resolve: the run, the in-doubt task, its resolution (success,
	// failed, rerun) and the note to journal.
	Run    string `json:"run,omitempty"`
	Task   string `json:"task,omitempty"`
	Status string `json:"status,omitempty"`
	Reason string `json:"reason,omitempty"`
	Before uint64 `json:"before,omitempty"` // truncate: the first entry kept
	By     string `json:"by,omitempty"`     // cancel: who asked
	// Cancel: the grace of the running tasks, in nanoseconds (absent: the
	// workflow's shutdown_grace; 0: none). A daemon of an older release
	// ignores it and waits the workflow's grace.
	Grace *time.Duration `json:"grace,omitempty"`
}

// Response answers a Request.
type Response struct {
	OK       bool    `json:"ok"`
	Code     string  `json:"code,omitempty"`
	Error    string  `json:"error,omitempty"`
	Run      string  `json:"run,omitempty"`
	Workflow string  `json:"workflow,omitempty"`
	Status   *Status `json:"status,omitempty"`
	End      *RunEnd `json:"end,omitempty"` // resume: how the run ended
}

// Status is the daemon's state as the status op reports it.
type Status struct {
	PID       int              `json:"pid"`
	Ready     bool             `json:"ready"`
	Started   time.Time        `json:"started"`
	Running   int              `json:"running_runs"`
	Queued    int              `json:"queued_runs"`
	Invalid   int              `json:"invalid_files"`
	Workflows []WorkflowStatus `json:"workflows"`
}

// WorkflowStatus is one workflow's scheduling state.
type WorkflowStatus struct {
	Name     string    `json:"name"`
	Schedule string    `json:"schedule,omitempty"`
	Next     time.Time `json:"next,omitzero"`
	LastFire time.Time `json:"last_fire,omitzero"`
	Running  int       `json:"running"`
	Queued   int       `json:"queued"`
}

// ErrNoDaemon is returned by Call when no daemon listens on the socket.
var ErrNoDaemon = errors.New("no picoflow daemon is running")

// Call sends one request to the daemon's control socket and returns its
// response. A missing socket or a refused connection is ErrNoDaemon.
func Call(ctx context.Context, socket string, req Request) (Response, error) {
	var c net.Conn
	err := viaShortPath(socket, func(name string) error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, "unix", name)
		return err
	})
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return Response{}, fmt.Errorf("%w (no socket at %s)", ErrNoDaemon, socket)
		}
		return Response{}, fmt.Errorf("connect to the daemon: %w", err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return Response{}, fmt.Errorf("send to the daemon: %w", err)
	}
	var resp Response
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&resp); err != nil {
		if errors.Is(err, io.EOF) {
			return Response{}, errors.New("the daemon closed the connection without answering (is it stopping?)")
		}
		return Response{}, fmt.Errorf("read the daemon's answer: %w", err)
	}
	return resp, nil
}

// request is a Request on its way to the daemon's loop.
type request struct {
	Request
	reply chan Response // buffered, 1
}

// listenControl creates the control socket at path, mode 0600. The caller
// holds the instance lock, so a socket file already there is stale. The
// caller removes the socket when it stops: closing the listener does not,
// as the name it was bound by may be a /proc/self/fd one (viaShortPath)
// whose descriptor is closed by then.
func listenControl(path string) (*net.UnixListener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	var l *net.UnixListener
	err := viaShortPath(path, func(name string) error {
		var err error
		l, err = net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	l.SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return l, nil
}

// serveControl accepts connections until l is closed, handing each
// request to the loop through reqs. Requests that arrive while the daemon
// stops are refused by the loop.
func serveControl(l *net.UnixListener, reqs chan<- request, stopping <-chan struct{}, log *slog.Logger) {
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			return // closed
		}
		go handleControl(c, reqs, stopping, log)
	}
}

func handleControl(c *net.UnixConn, reqs chan<- request, stopping <-chan struct{}, log *slog.Logger) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	enc := json.NewEncoder(c)
	if err := checkPeer(c); err != nil {
		log.Warn("control socket: connection refused", "err", err)
		_ = enc.Encode(Response{Code: CodeInvalid, Error: err.Error()})
		return
	}
	var req Request
	if err := json.NewDecoder(io.LimitReader(c, maxRequest)).Decode(&req); err != nil {
		_ = enc.Encode(Response{Code: CodeInvalid, Error: "bad request: " + err.Error()})
		return
	}
	if req.Op == OpResume {
		_ = c.SetDeadline(time.Time{}) // the answer comes when the run ends
	}
	r := request{Request: req, reply: make(chan Response, 1)}
	select {
	case reqs <- r:
	case <-stopping:
		_ = enc.Encode(Response{Code: CodeStopping, Error: "the daemon is stopping"})
		return
	}
	var resp Response
	select {
	case resp = <-r.reply:
	case <-stopping:
		select {
		case resp = <-r.reply:
		case <-time.After(5 * time.Second):
			resp = Response{Code: CodeStopping, Error: "the daemon is stopping"}
		}
	}
	_ = enc.Encode(resp)
}

// checkPeer admits root and the daemon's own user. Where the system
// cannot name the peer (peerUID returns ok false: not Linux), the socket's
// mode 0600 is the only check.
func checkPeer(c *net.UnixConn) error {
	uid, ok, err := peerUID(c)
	if err != nil {
		return fmt.Errorf("peer credentials: %w", err)
	}
	if ok && uid != 0 && int(uid) != os.Geteuid() {
		return fmt.Errorf("uid %d may not control this daemon", uid)
	}
	return nil
}
