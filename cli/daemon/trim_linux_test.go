package daemon

import (
	"os"
	"strings"
	"testing"
)

// TestTrimResident unmaps the test binary's clean pages and goes on
// running: code, read-only data and relocations are intact.
func TestTrimResident(t *testing.T) {
	n, err := trimResident()
	if err != nil {
		t.Fatal(err)
	}
	if n <= 0 {
		t.Errorf("trimmed %d bytes; the test binary's code was resident", n)
	}
	b, err := os.ReadFile("/proc/self/status") // runs code that was just unmapped
	if err != nil || !strings.Contains(string(b), "VmRSS") {
		t.Fatalf("after trim: %v", err)
	}
	if _, err := JobOf(sampleWorkflow()); err != nil { // type data and tables still readable
		t.Fatal(err)
	}
}
