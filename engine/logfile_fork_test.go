//go:build linux

package engine

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// TestLeaseCountsDescriptions: what refuses a free log's lease is
// another open file description, not another descriptor (lease in
// logfile_linux.go). A child that holds a copy of the attempt's own
// descriptor does not refuse it; a child that holds the description of
// the attempt that wrote the file before does, until it lets go.
func TestLeaseCountsDescriptions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.1.log")
	f, err := openLog(path, syscall.O_CREAT)
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command("cat") // holds f as its fd 3 until its stdin ends
	child.ExtraFiles = []*os.File{f}
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Wait()
	defer stdin.Close()
	if err := lease(f.Fd()); err != nil {
		t.Errorf("a child holding a copy of the attempt's own descriptor refused the lease: %v", err)
	}
	dropLease(f.Fd()) // else it stays with the description the child holds
	f.Close()         // the attempt that wrote it is done; the child still holds its description
	g, err := openLog(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := lease(g.Fd()); !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("a child holding the old description: lease %v, want EAGAIN", err)
	}
	stdin.Close()
	if err := child.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := lease(g.Fd()); err != nil {
		t.Errorf("the child let go: lease %v, want granted", err)
	}
	dropLease(g.Fd())
}

// TestLogRefusedWaitsAtItsOwnPath: a free log whose lease was refused
// waits for the forks in flight (ForkLock) at its own path, not at the
// path of the attempt that tries to reuse it: a kill -9 meanwhile would
// leave it there, and a daemon still holding it would then write into
// that attempt's log. (claim renames a free log only under a granted
// lease: it never stands at another attempt's path while held.)
func TestLogRefusedWaitsAtItsOwnPath(t *testing.T) {
	p, first, next, _ := freeLogOf(t)
	holder, err := os.Open(first) // a reader: the lease is refused
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()

	syscall.ForkLock.Lock() // a fork in flight
	opened := make(chan *os.File, 1)
	go func() {
		g, err := p.open(next)
		if err != nil {
			t.Error(err)
		}
		opened <- g
	}()
	waiting := false
	for i := 0; i < 10000 && !waiting; i++ {
		select {
		case g := <-opened: // it did not wait for the fork: nothing to check
			syscall.ForkLock.Unlock()
			g.Close()
			return
		default:
		}
		buf := make([]byte, 1<<20)
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			waiting = waiting || strings.Contains(g, "RWMutex).RLock") && strings.Contains(g, "logFiles")
		}
		if !waiting {
			runtime.Gosched()
		}
	}
	_, errFirst := os.Stat(first)
	_, errNext := os.Stat(next)
	syscall.ForkLock.Unlock()
	g := <-opened
	defer g.Close()
	if !waiting {
		t.Fatal("the reuse never waited for the fork in flight")
	}
	if errFirst != nil || errNext == nil {
		t.Errorf("while the reuse waited for the fork: the free log at its own path: %v; at the new attempt's: %v, want only at its own",
			errFirst, errNext)
	}
	if fi, err := g.Stat(); err != nil || os.SameFile(fi, stat(t, first)) {
		t.Errorf("the attempt got the held free log (%v)", err)
	}
}
