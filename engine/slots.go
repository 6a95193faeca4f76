package engine

import "sync"

// Slots is a budget of task attempts shared by the runs of several
// engines: the daemon's global max_parallel. A run launches an attempt only
// when its own max_parallel allows it and TryAcquire succeeds, and releases
// the slot when the attempt's result is in. A run that found no free slot
// waits on the channel Freed returned before its TryAcquire: it is closed
// (or receives) when a slot may have become free.
type Slots interface {
	TryAcquire() bool
	Release()
	Freed() <-chan struct{}
}

var _ Slots = (*Semaphore)(nil)

// Semaphore is the Slots of one process: n slots, and a broadcast to every
// waiting run on each release.
type Semaphore struct {
	mu    sync.Mutex
	n     int
	used  int
	freed chan struct{} // closed and replaced on each release
}

// NewSemaphore returns a budget of n slots (at least 1).
func NewSemaphore(n int) *Semaphore {
	return &Semaphore{n: max(n, 1), freed: make(chan struct{})}
}

// TryAcquire takes a slot if one is free.
func (s *Semaphore) TryAcquire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used >= s.n {
		return false
	}
	s.used++
	return true
}

// Release returns a slot and wakes the runs waiting for one.
func (s *Semaphore) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used > 0 {
		s.used--
	}
	close(s.freed)
	s.freed = make(chan struct{})
}

// Freed returns a channel that is closed at the next Release.
func (s *Semaphore) Freed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.freed
}

// InUse returns the number of slots taken (running attempts).
func (s *Semaphore) InUse() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// Size returns the number of slots.
func (s *Semaphore) Size() int { return s.n }
