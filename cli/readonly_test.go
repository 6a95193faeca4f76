package cli

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readOnlyRoot is run by sh in a new mount namespace (unshare -m): it makes
// each directory of $RW a mount of its own, remounts every other mount
// read-only, then runs its arguments. Mounts stay private to the namespace.
// FUSE mounts are left alone: one whose daemon another test holds stopped
// would hang the remount (and PicoFlow writes to none of them).
const readOnlyRoot = `set -eu
mount --make-rprivate /
for d in $RW; do mount --bind "$d" "$d"; done
awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) !~ /^fuse/) print $5; break } }' /proc/self/mountinfo |
sort -u | while read -r m; do
	case " $RW " in *" $m "*) continue ;; esac
	mount -o remount,bind,ro "$m" 2>/dev/null || true
done
exec "$@"
`

// roCommand runs picoflow with every path read-only except the rw ones.
func roCommand(bin string, rw []string, args ...string) *exec.Cmd {
	cmd := exec.Command("unshare", append([]string{"-m", "sh", "-c", readOnlyRoot, "sh", bin}, args...)...)
	cmd.Env = append(os.Environ(), "RW="+strings.Join(rw, " "), "PICOFLOW_HOME=", "PICOFLOW_CONFIG=", "TMPDIR=")
	return cmd
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// TestReadOnlyRoot runs a workflow, the daemon (with a triggered run and a
// graceful stop) and gc with every path read-only except the home: PicoFlow
// writes nowhere else, since any other write fails with EROFS. A read-only
// home, and one that cannot be created, give one error naming it (exit 7).
func TestReadOnlyRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for unshare -m and mount")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare (util-linux)")
	}
	bin := testBinary(t)
	dir := t.TempDir()
	home, wfDir := filepath.Join(dir, "home"), filepath.Join(dir, "workflows")
	if err := os.Mkdir(home, 0o750); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(wfDir, "ro.yaml"), `name: ro
tasks:
  - {name: a, type: shell, config: {command: 'echo hello; echo k=v >> "$PICOFLOW_OUTPUT"'}}
  - {name: b, type: shell, depends_on: a, config: {command: 'test "$PICOFLOW_OUT_A_K" = v'}}
`)
	rw := []string{home}

	// The harness itself: a write outside the home must fail.
	probe := exec.Command("unshare", "-m", "sh", "-c", readOnlyRoot, "sh", "touch", filepath.Join(dir, "probe"))
	probe.Env = append(os.Environ(), "RW="+home)
	if out, err := probe.CombinedOutput(); err == nil || !strings.Contains(string(out), "Read-only file system") {
		t.Fatalf("the namespace is not read-only outside the home: %v %s", err, out)
	}

	out, err := roCommand(bin, rw, "run", "--home", home, filepath.Join(wfDir, "ro.yaml")).CombinedOutput()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	noEROFS(t, "run", out)

	roDaemonRun(t, bin, rw, home, wfDir)

	out, err = roCommand(bin, rw, "gc", "--home", home).CombinedOutput()
	if err != nil {
		t.Fatalf("gc: %v\n%s", err, out)
	}
	noEROFS(t, "gc", out)

	for name, h := range map[string]string{"read-only": wfDir, "not creatable": filepath.Join(dir, "new", "home")} {
		var stderr strings.Builder
		cmd := roCommand(bin, rw, "run", "--home", h, filepath.Join(wfDir, "ro.yaml"))
		cmd.Stderr = &stderr
		code := exitCode(t, cmd.Run())
		msg := strings.TrimSpace(stderr.String())
		if code != ExitInternal || strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "home "+h) {
			t.Errorf("%s home: exit %d, stderr %q; want exit 7 and one line naming %s", name, code, msg, h)
		}
	}
}

// roDaemonRun starts the daemon with every path read-only except rw,
// triggers workflow ro, waits for its run to succeed, and stops the daemon
// gracefully.
func roDaemonRun(t *testing.T, bin string, rw []string, home, wfDir string) {
	t.Helper()
	d := &child{cmd: roCommand(bin, rw, "daemon", "--home", home, "--workflows", wfDir), done: make(chan struct{})}
	d.cmd.Stdout, d.cmd.Stderr = &d.stdout, &d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() { d.cmd.Process.Kill(); <-d.done })
	d.waitFor(t, "the daemon's socket", exists(filepath.Join(home, "daemon.sock")))
	out, err := roCommand(bin, rw, "trigger", "--home", home, "ro").CombinedOutput()
	if err != nil {
		t.Fatalf("trigger: %v\n%s", err, out)
	}
	noEROFS(t, "trigger", out)
	succeeded := func() bool {
		out, _ := roCommand(bin, rw, "history", "--home", home, "ro").Output()
		return strings.Count(string(out), "success") == 2
	}
	for deadline := time.Now().Add(30 * time.Second); !succeeded(); {
		if time.Now().After(deadline) || d.exited() {
			t.Fatalf("the triggered run did not succeed\n%s", &d.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// unshare and sh exec: the child's PID is the daemon's.
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := d.wait(t); code != 0 {
		t.Fatalf("daemon exit %d\n%s", code, &d.stderr)
	}
	noEROFS(t, "daemon", []byte(d.stderr.String()))
}

// noEROFS fails the test if out shows EROFS: a write elsewhere than the
// home that PicoFlow tolerated would still show there.
func noEROFS(t *testing.T, what string, out []byte) {
	t.Helper()
	if strings.Contains(strings.ToLower(string(out)), "read-only file system") {
		t.Errorf("%s tried to write outside the home:\n%s", what, out)
	}
}
