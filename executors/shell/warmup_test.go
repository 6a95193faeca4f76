package shell

import (
	"os"
	"os/exec"
	"testing"
)

// TestWarmUpLeavesNoDescriptor: the pidfd os.FindProcess opens for the
// check is closed again (a run warms up once, a daemon could call it per
// run), and a process starts after it as before.
func TestWarmUpLeavesNoDescriptor(t *testing.T) {
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd: ", err)
		}
		return len(ents)
	}
	before := fds()
	WarmUp()()
	if after := fds(); after != before {
		t.Errorf("%d descriptors open after WarmUp, %d before", after, before)
	}
	if err := exec.Command("/bin/sh", "-c", "exit 0").Run(); err != nil {
		t.Fatalf("a process after WarmUp: %v", err)
	}
}
