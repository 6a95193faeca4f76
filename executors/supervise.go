package executors

import (
	"context"
	"sync"
	"time"
)

// Supervise waits for an attempt's process to end, enforcing the request's
// timeout and ctx. wait blocks until the process is gone. On a timeout or a
// cancelled ctx, stop is called with the kill grace (req.KillGrace, else
// defaultGrace) and the channel wait reports to; it must make the process
// end and returns wait's error. The status is TimedOut or Interrupted in
// those cases and Success otherwise: the caller decides from the error
// whether the attempt failed. stop may give up and return before wait does
// (a remote command that ignores signals): Supervise returns then, and wait
// goes on in its own goroutine. SuperviseProcess is the same for a local
// process, which always ends on SIGKILL, without that goroutine.
func Supervise(ctx context.Context, req *Request, defaultGrace time.Duration, wait func() error,
	stop func(grace time.Duration, done <-chan error) error) (Status, error) {
	done := make(chan error, 1)
	go func() { done <- wait() }()
	var timeout <-chan time.Time
	if req.Timeout > 0 {
		t := time.NewTimer(req.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	grace := req.KillGrace
	if grace <= 0 {
		grace = defaultGrace
	}
	select {
	case err := <-done:
		return Success, err
	case <-timeout:
		noteStop(req, TimedOut, grace)
		return TimedOut, stop(grace, done)
	case <-ctx.Done():
		noteStop(req, Interrupted, grace)
		return Interrupted, stop(grace, done)
	}
}

// SuperviseProcess is Supervise for a local process: stop must make it end
// and return wait's error from done (it never gives up; SIGKILL always
// ends a local process).
//
// wait runs on the caller's goroutine, so that nothing stands between the
// process's end and the caller: no goroutine per attempt, and no hand-off
// from one to the other on the path from a task's end to its dependent's
// start. The timer and ctx only register callbacks (time.AfterFunc,
// context.AfterFunc); the first that fires before wait returns runs the
// stop on their goroutine. SuperviseProcess returns only after that stop has
// returned, so that its notes are in the log before the caller reads or
// closes it.
func SuperviseProcess(ctx context.Context, req *Request, defaultGrace time.Duration, wait func() error,
	stop func(grace time.Duration, done <-chan error) error) (Status, error) {
	s := &supervision{req: req, grace: req.KillGrace, stop: stop}
	if s.grace <= 0 {
		s.grace = defaultGrace
	}
	if req.Timeout > 0 {
		t := time.AfterFunc(req.Timeout, func() { s.halt(TimedOut) })
		defer t.Stop()
	}
	if ctx.Done() != nil {
		defer context.AfterFunc(ctx, func() { s.halt(Interrupted) })()
	}
	err := wait()
	status := s.end()
	if status == Success {
		return Success, err
	}
	s.done <- err
	return status, <-s.stopped
}

// supervision is the state one SuperviseProcess shares with its callbacks.
type supervision struct {
	req   *Request
	grace time.Duration
	stop  func(grace time.Duration, done <-chan error) error

	mu     sync.Mutex
	status Status // of the stop that began; 0 while none did
	ended  bool   // wait returned: no stop begins any more
	// Made by the stop that begins (most attempts have none).
	done    chan error // wait's error, for stop
	stopped chan error // stop's result
}

// halt stops the process for why (TimedOut, Interrupted), unless it has
// ended or another stop began.
func (s *supervision) halt(why Status) {
	s.mu.Lock()
	if s.ended || s.status != 0 {
		s.mu.Unlock()
		return
	}
	s.status = why
	s.done, s.stopped = make(chan error, 1), make(chan error, 1)
	s.mu.Unlock()
	noteStop(s.req, why, s.grace)
	s.stopped <- s.stop(s.grace, s.done)
}

// end marks that wait returned and tells which stop, if any, began.
func (s *supervision) end() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = true
	if s.status == 0 {
		return Success
	}
	return s.status
}

// noteStop notes in the attempt's log why PicoFlow stops it (TimedOut or
// Interrupted).
func noteStop(req *Request, why Status, grace time.Duration) {
	if why == TimedOut {
		Note(req, "timeout of %s reached: stopping the task (SIGTERM, then SIGKILL after %s)", req.Timeout, grace)
		return
	}
	Note(req, "PicoFlow is shutting down: stopping the task (SIGTERM, then SIGKILL after %s)", grace)
}
