package shell

import "syscall"

// cloexecPipe returns a pipe whose two ends are close-on-exec from birth,
// so that no child forked meanwhile inherits them.
func cloexecPipe() (r, w int, err error) {
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		return -1, -1, err
	}
	return p[0], p[1], nil
}
