package shell

import (
	"syscall"
	"testing"
)

// subreaper makes this test process the parent of orphaned grandchildren,
// so that a test can reap one itself and then see ESRCH deterministically
// instead of waiting on PID 1.
func subreaper(t *testing.T) {
	t.Helper()
	const prSetChildSubreaper = 36
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		t.Skipf("prctl(PR_SET_CHILD_SUBREAPER): %v", errno)
	}
}
