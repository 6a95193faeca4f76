package cli

import "golang.org/x/sys/unix"

// closeRangeCloexec is CLOSE_RANGE_CLOEXEC of <linux/close_range.h>,
// which x/sys/unix does not name.
const closeRangeCloexec = 1 << 2

// closeInheritedOnExec marks every descriptor from 3 up close-on-exec, in
// one close_range call (Linux 5.11 and later), or one by one as
// /proc/self/fd lists them on older kernels.
func closeInheritedOnExec() {
	if unix.CloseRange(3, ^uint(0), closeRangeCloexec) == nil {
		return
	}
	closeListedOnExec("/proc/self/fd")
}
