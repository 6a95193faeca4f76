package engine

import "syscall"

// leasesWork: Linux grants a write lease only on the sole open file
// description of a file (fcntl(2), F_SETLEASE).
const leasesWork = true

// lease takes a write lease on fd and keeps it: nil when it was granted,
// EAGAIN when another open file description of the file exists. It is
// asked under no lock (logFiles.reuse asks a refused file once more under
// ForkLock). A fork copies descriptors, not open file descriptions: a
// child forked after fd was opened shares fd's own description, which the
// lease does not count. A child forked while the attempt that wrote the
// file still had it open holds that attempt's description until its exec
// closes it, and the lease is refused for it. Taking ForkLock for every
// lease made every reuse wait for whatever fork was in flight (forks
// overlap each other and hold ForkLock until their child's exec): 9 % of
// the wall time of 1,000 `true` tasks at two at a time.
func lease(fd uintptr) error {
	if _, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETLEASE, syscall.F_WRLCK); e != 0 {
		return e
	}
	return nil
}

// dropLease lets go of fd's lease.
func dropLease(fd uintptr) {
	_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETLEASE, syscall.F_UNLCK)
}
