package shell

import (
	"context"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/picoflow/picoflow/executors"
)

// asNobody is set in the environment of this test binary re-run as the
// user nobody.
const asNobody = "PICOFLOW_TEST_AS_NOBODY"

// TestUserWithoutRoot checks the error a task with `user:` gets when
// picoflow does not run as root. TestUser covers it only when the tests
// run unprivileged; run as root, this test re-runs itself as nobody, so
// that both sides of SEC-004 are exercised on every run.
func TestUserWithoutRoot(t *testing.T) {
	if os.Getenv(asNobody) == "1" {
		checkUserWithoutRoot(t)
		return
	}
	if os.Geteuid() != 0 {
		checkUserWithoutRoot(t) // already unprivileged
		return
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("no user nobody to drop to: %v", err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	// A copy of this test binary that nobody can run, in a directory it can enter.
	dir, err := os.MkdirTemp("", "picoflow-user-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "shell.test")
	if err := copyFile(self, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestUserWithoutRoot$", "-test.v", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), asNobody+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestUserWithoutRoot") {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
}

func checkUserWithoutRoot(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := request(t, "id -u")
	req.Task.User = "root"
	res := (&Shell{}).Execute(context.Background(), req)
	want := `task user "root": picoflow must run as root to switch users (it runs as uid ` + me.Uid + ")"
	if res.Status != executors.Failed || !res.NoRetry || res.Err == nil || res.Err.Error() != want {
		t.Fatalf("got %v noretry %v err %v, want %q", res.Status, res.NoRetry, res.Err, want)
	}

	req, logPath := request(t, "id -u") // naming oneself needs no privilege
	req.Task.User = me.Username
	if res := (&Shell{}).Execute(context.Background(), req); res.Status != executors.Success {
		t.Fatalf("as oneself: %v %v", res.Status, res.Err)
	}
	if got := readLog(t, logPath); got != me.Uid+"\n" {
		t.Errorf("id -u printed %q, want %s", got, me.Uid)
	}
}

func copyFile(from, to string, mode os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
