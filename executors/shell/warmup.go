package shell

import "os"

// WarmUp does in the background the one-time work os/exec does before the
// first process it starts, so that the first task does not wait for it.
// On Linux that is a check that pidfds work: pidfd_open of the process
// itself, waitid, pidfd_send_signal and a child cloned with CLONE_PIDFD
// that exits at once, 0.2–0.3 ms before a one-task run's only fork.
// os.FindProcess makes the same check, once per process, when it opens
// a pidfd; a caller about to start tasks calls WarmUp before other work
// (opening and replaying the journal) and the check runs beside it. Were
// a Go release to drop the check, WarmUp would only open and close a
// pidfd; the wait returned is for tests.
func WarmUp() (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			p.Release()
		}
	}()
	return func() { <-done }
}
