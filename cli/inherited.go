package cli

import (
	"os"
	"strconv"
	"syscall"
)

// Descriptors that whatever started picoflow left open without
// close-on-exec (a shell's `exec 7>file`, a parent's leaked socket or lock)
// would pass on to every task, which could then write to them or hold
// their locks past picoflow's own life. Go opens its own files
// close-on-exec; New marks the inherited ones so too, before anything
// starts a child. A task gets fds 0-2 and only what an executor passes on
// purpose (cmd.ExtraFiles: the gate's fd 3, a user: task's
// $PICOFLOW_OUTPUT). picoflow uses no inherited descriptor itself (no
// socket activation): marking them all is safe.

// closeListedOnExec marks close-on-exec each descriptor from 3 up that dir
// (/proc/self/fd, /dev/fd) lists. The listing's own descriptor is among
// them; marking it does no harm.
func closeListedOnExec(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return // nothing to list: nothing more this process can do
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}
