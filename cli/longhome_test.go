package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/cli/daemon"
	"github.com/picoflow/picoflow/journal"
)

// testDaemonLongHome runs the daemon on a home whose socket path is longer
// than a unix socket address holds (108 bytes on Linux): the daemon failed
// to start with "bind: invalid argument", and every client of the socket
// with it. Trigger, status, cancel, and a restart over the stale socket a
// kill -9 leaves must work there.
func testDaemonLongHome(t *testing.T, bin string) {
	work := t.TempDir()
	mark := filepath.Join(work, "started")
	wf := "name: long\nconfig: {shutdown_grace: 300ms}\ntasks:\n  - {name: work, type: shell, config: {command: \"touch " + mark + "; exec sleep 120\"}}\n"
	e := newDmnEnv(t, bin, map[string]string{"long.yaml": wf})
	e.home = filepath.Join(filepath.Dir(e.home), strings.Repeat("d", 120), "home")
	sock := filepath.Join(e.home, "daemon.sock")
	if len(sock) <= 108 {
		t.Fatalf("socket path %d bytes, want it over 108", len(sock))
	}
	p := e.startDaemon()
	id := e.triggerStarted("long", mark)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := daemon.Call(ctx, sock, daemon.Request{Op: daemon.OpStatus})
	if err != nil || !st.OK || st.Status.Running != 1 {
		t.Fatalf("status: %+v %v", st, err)
	}
	if code, stdout, stderr := e.run("cancel", id); code != ExitOK || !strings.Contains(stdout, "canceled") {
		t.Fatalf("cancel: exit %d\n%s%s", code, stdout, stderr)
	}
	e.waitFor(20*time.Second, "the run to end canceled", func() bool {
		return e.count(func(ev *journal.Event) bool {
			return ev.Type == journal.RunFinished && ev.Run == id && ev.Status == journal.StatusCanceled
		}) == 1
	})
	// kill -9 leaves the socket file; the next daemon removes it and binds.
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("the killed daemon's socket: %v, want it left behind", err)
	}
	p = e.startDaemon()
	if st, err := daemon.Call(ctx, sock, daemon.Request{Op: daemon.OpStatus}); err != nil || !st.OK {
		t.Fatalf("status after restart: %+v %v", st, err)
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("daemon exit %d\n%s", code, p.stderr)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket after a clean stop: %v, want it removed", err)
	}
}
