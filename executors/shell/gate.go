package shell

import "syscall"

// gateScript goes before the task's command, on the same line so that the
// shell's line numbers stay the command's own: the shell waits for a line
// on fd 3, then closes it so the command never sees it. At end of file (the
// start was not committed, or picoflow died before it was) it exits
// without running anything.
const gateScript = "read _ <&3 || exit 125; exec 3<&-; "

// gate holds a started shell before the task's command until the attempt's
// start is committed (executors.Gater): the fork and exec of the shell
// overlap the commit's fsync instead of following it.
//
// Its pipe is kept as bare descriptors, not *os.File: an *os.File pipe is
// made non-blocking and added to the poller, and switched back to blocking
// to be handed to the shell (ten system calls a task for nothing).
type gate struct {
	r, w int
}

// newGate makes c, a `sh -c SCRIPT` not started yet, wait at a gate.
// Both ends of the pipe are close-on-exec in this process, so no other
// child inherits the write end: the shell sees end of file the moment
// this process lets go of it, even if it is killed.
func newGate(c *command) (*gate, error) {
	r, w, err := cloexecPipe()
	if err != nil {
		return nil, err
	}
	c.files = append(c.files, uintptr(r)) // fd 3
	c.args[len(c.args)-1] = gateScript + c.args[len(c.args)-1]
	return &gate{r: r, w: w}, nil
}

// started closes the shell's end here, once the shell has its own.
func (g *gate) started() { syscall.Close(g.r) }

// open lets the shell run the command (ok) or end without running it. A
// write error means the shell is gone already; its wait status says why.
func (g *gate) open(ok bool) {
	if ok {
		for {
			if _, err := syscall.Write(g.w, newline); err != syscall.EINTR {
				break
			}
		}
	}
	syscall.Close(g.w)
}

var newline = []byte{'\n'}

// abort releases both ends when the shell never started.
func (g *gate) abort() {
	syscall.Close(g.r)
	syscall.Close(g.w)
}
