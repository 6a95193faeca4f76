package engine

import "syscall"

// leasesWork: Linux grants a write lease only on the sole open file
// description of a file (fcntl(2), F_SETLEASE).
const leasesWork = true

// lease takes a write lease on fd and lets go of it at once: nil when it
// was granted. It takes no lock: reuse asks a refused file once more
// under ForkLock, having put it back at its own path first.
//
// A fork copies descriptors, not open file descriptions: a child forked
// after fd was opened shares fd's own description, which the lease does
// not count. A child forked while the attempt that wrote the file still
// had it open holds that attempt's description until its exec closes it,
// and the lease is refused for it. Taking ForkLock for every lease made
// every reuse wait for whatever fork was in flight (forks overlap each
// other and hold ForkLock until their child's exec): 9 % of the wall time
// of 1,000 `true` tasks at two at a time.
func lease(fd uintptr) error {
	if _, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETLEASE, syscall.F_WRLCK); e != 0 {
		return e
	}
	_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETLEASE, syscall.F_UNLCK)
	return nil
}
