package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// testInheritedFds starts picoflow holding descriptors it did not open,
// as a shell's `exec 7>file` or a parent's leaked pipe leaves them: its
// tasks must not inherit them. The task lists its shell's open descriptors
// and where they lead; only 0, 1 and 2 may be there (the gate's fd 3 is
// closed before the command runs).
func testInheritedFds(t *testing.T, bin string) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	marker := filepath.Join(dir, "inherited-marker")
	f, err := os.Create(marker)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	// ls, a child, lists the shell's table: the shell itself opens nothing.
	list := `ls -l /proc/$$/fd`
	file := writeWorkflow(t, dir, "fds", "", spec{name: "list", cmd: list})
	cmd := exec.Command(bin, "run", "--home", home, file)
	cmd.Env = append(os.Environ(), "PICOFLOW_HOME=", "PICOFLOW_CONFIG=")
	// fds 3-9 in picoflow: some above the gate's fd 3, which would hide an
	// inherited fd 3 in the task anyway.
	cmd.ExtraFiles = []*os.File{f, w, f, w, f, w, f}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	res := picoflow(t, "logs", "--home", home, "fds", "list")
	var fds []string
	for _, l := range strings.Split(res.stdout, "\n") {
		if _, link, ok := strings.Cut(l, " -> "); ok {
			fields := strings.Fields(strings.TrimSuffix(l, " -> "+link))
			fds = append(fds, fields[len(fields)-1])
		}
	}
	if !slices.Equal(fds, []string{"0", "1", "2"}) || strings.Contains(res.stdout, marker) {
		t.Errorf("the task's open descriptors are %v, want [0 1 2]:\n%s", fds, res)
	}
}

// TestCloseListedOnExec: the fallback for kernels without close_range
// marks a descriptor opened without close-on-exec, as one inherited is.
func TestCloseListedOnExec(t *testing.T) {
	fd, err := syscall.Open(filepath.Join(t.TempDir(), "f"), syscall.O_CREAT|syscall.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	closeListedOnExec("/proc/self/fd")
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatal(err)
	}
	if flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("fd %d is not close-on-exec after closeListedOnExec", fd)
	}
}
