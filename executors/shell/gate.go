package shell

import (
	"os"
	"os/exec"
)

// gateScript goes before the task's command, on the same line so that the
// shell's line numbers stay the command's own: the shell waits for a line
// on fd 3, then closes it so the command never sees it. At end of file (the
// start was not committed, or picoflow died before it was) it exits
// without running anything.
const gateScript = "read _ <&3 || exit 125; exec 3<&-; "

// gate holds a started shell before the task's command until the attempt's
// start is committed (executors.Gater): the fork and exec of the shell
// overlap the commit's fsync instead of following it.
type gate struct {
	r, w *os.File
}

// newGate makes cmd, a `sh -c SCRIPT` not started yet, wait at a gate.
// Both ends of the pipe are close-on-exec in this process, so no other
// child inherits the write end: the shell sees end of file the moment
// this process lets go of it, even if it is killed.
func newGate(cmd *exec.Cmd) (*gate, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.ExtraFiles = []*os.File{r} // fd 3
	cmd.Args[len(cmd.Args)-1] = gateScript + cmd.Args[len(cmd.Args)-1]
	return &gate{r: r, w: w}, nil
}

// started closes the shell's end here, once the shell has its own.
func (g *gate) started() { g.r.Close() }

// open lets the shell run the command (ok) or end without running it. A
// write error means the shell is gone already; its wait status says why.
func (g *gate) open(ok bool) {
	if ok {
		_, _ = g.w.Write([]byte{'\n'})
	}
	g.w.Close()
}

// abort releases both ends when the shell never started.
func (g *gate) abort() {
	g.r.Close()
	g.w.Close()
}
