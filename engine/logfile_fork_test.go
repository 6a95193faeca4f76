//go:build linux

package engine

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
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
	f.Close() // the attempt that wrote it is done; the child still holds its description
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
}
