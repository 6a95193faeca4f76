package shell

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/executors"
)

// fullDisk mounts a small tmpfs, fills it, and returns a log file created
// on it: every write that needs a block fails with ENOSPC.
func fullDisk(t *testing.T) *os.File {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs to fill it needs root; run the tests as root to cover a full disk")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	f, err := os.Create(filepath.Join(dir, "t.1.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	err = os.WriteFile(filepath.Join(dir, "filler"), make([]byte, 1<<20), 0o600)
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("filling the tmpfs: %v", err)
	}
	return f
}

// TestLogOnFullDisk runs a task whose log sits on a full disk, with the
// process writing to the log file itself and through a writer of PicoFlow's
// own (as the secret masking does): the attempt fails naming the cause
// and the log, not with a bare "exit status 1".
func TestLogOnFullDisk(t *testing.T) {
	for _, tc := range []struct {
		name   string
		masked bool
	}{{"direct-to-file", false}, {"through-a-writer", true}} {
		t.Run(tc.name, func(t *testing.T) {
			f := fullDisk(t)
			req := &executors.Request{Run: "r", Workflow: "w", Attempt: 1, Env: os.Environ(), Log: f,
				KillGrace: 5 * time.Second, Task: &executors.Task{Name: "t",
					Shell: &executors.ShellConfig{Command: "echo hello"}}}
			if tc.masked {
				req.Stdout = struct{ io.Writer }{f}
			}
			res := (&Shell{}).Execute(context.Background(), req)
			want := "write log " + f.Name() + ": no space left on device"
			if res.Status != executors.Failed || res.Err == nil || !strings.Contains(res.Err.Error(), want) {
				t.Fatalf("status %s, err %v: want failed with %q", res.Status, res.Err, want)
			}
			t.Logf("%v", res.Err)
		})
	}
}
