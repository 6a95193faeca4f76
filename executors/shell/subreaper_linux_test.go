package shell

import (
	"testing"

	"golang.org/x/sys/unix"
)

// subreaper makes this test process the parent of orphaned grandchildren,
// so that a test can reap one itself and then see ESRCH deterministically
// instead of waiting on PID 1.
func subreaper(t *testing.T) {
	t.Helper()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("prctl(PR_SET_CHILD_SUBREAPER): %v", err)
	}
}
