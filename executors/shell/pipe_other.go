//go:build !linux

package shell

import "syscall"

// cloexecPipe returns a pipe whose two ends are close-on-exec before any
// child can be forked (ForkLock, as os.Pipe does where there is no pipe2).
func cloexecPipe() (r, w int, err error) {
	var p [2]int
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	if err := syscall.Pipe(p[:]); err != nil {
		return -1, -1, err
	}
	syscall.CloseOnExec(p[0])
	syscall.CloseOnExec(p[1])
	return p[0], p[1], nil
}
