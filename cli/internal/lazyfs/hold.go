//go:build linux

package lazyfs

import (
	"context"
	"sync"
	"syscall"
)

// gate holds fsyncs (of files and directories) while it is closed: a test
// can stop a process in the middle of a commit, at the instant it asks for
// durability, and act then (a kill, a signal) with no timing involved.
type gate struct {
	mu      sync.Mutex
	held    bool
	waiting int           // fsyncs blocked now
	pass    chan struct{} // sends let one blocked fsync through
	open    chan struct{} // closed when the gate opens for all
	changed chan struct{} // closed (and replaced) when waiting changes
}

// HoldSyncs makes every fsync from now on block until Pass lets it
// through or Release opens the gate for all.
func (f *FS) HoldSyncs() {
	g := &f.m.hold
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.held {
		g.held, g.pass, g.open = true, make(chan struct{}), make(chan struct{})
	}
}

// Pass lets one held fsync through, blocking until one is waiting. When
// it returns, Waiting counts that fsync out already.
func (f *FS) Pass() {
	f.m.hold.pass <- struct{}{}
	f.m.hold.passed()
}

// PassUnless is Pass that gives up when done is closed first (the process
// whose fsync was held exited, or was killed, meanwhile); it reports
// whether it let one through.
func (f *FS) PassUnless(done <-chan struct{}) bool {
	select {
	case f.m.hold.pass <- struct{}{}:
		f.m.hold.passed()
		return true
	case <-done:
		return false
	}
}

// Release opens the gate: held fsyncs and all later ones go through.
func (f *FS) Release() {
	g := &f.m.hold
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held {
		g.held = false
		close(g.open)
	}
}

// Waiting returns how many fsyncs are held now, and a channel closed when
// that number changes.
func (f *FS) Waiting() (int, <-chan struct{}) {
	g := &f.m.hold
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.changed == nil {
		g.changed = make(chan struct{})
	}
	return g.waiting, g.changed
}

// wait blocks an fsync while the gate is held; EINTR when the caller's
// request is interrupted (the process was killed).
func (g *gate) wait(ctx context.Context) syscall.Errno {
	g.mu.Lock()
	if !g.held {
		g.mu.Unlock()
		return 0
	}
	pass, open := g.pass, g.open
	g.add(1)
	g.mu.Unlock()
	select {
	case <-pass:
		return 0 // Pass counted it out (passed)
	case <-open:
		g.passed()
		return 0
	case <-ctx.Done():
		g.passed()
		return syscall.EINTR
	}
}

// passed counts one held fsync out: by Pass, before it returns, so that a
// Waiting right after it no longer counts the fsync it let through (which
// a test would take for one still held, and Pass again: it would block
// until some other fsync came, or for ever).
func (g *gate) passed() {
	g.mu.Lock()
	g.add(-1)
	g.mu.Unlock()
}

// add changes waiting and wakes those watching it. Called with mu held.
func (g *gate) add(n int) {
	g.waiting += n
	if g.changed != nil {
		close(g.changed)
	}
	g.changed = make(chan struct{})
}
