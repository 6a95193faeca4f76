package engine

import "syscall"

// leasesWork: Linux grants a write lease only on the sole open file
// description of a file (fcntl(2), F_SETLEASE).
const leasesWork = true

// lease takes a write lease on fd and lets go of it at once: nil when it
// was granted. Holding ForkLock for reading keeps this process from
// forking meanwhile: a child holds copies of every descriptor until its
// exec closes them.
func lease(fd uintptr) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	if _, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETLEASE, syscall.F_WRLCK); e != 0 {
		return e
	}
	_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_SETLEASE, syscall.F_UNLCK)
	return nil
}
