//go:build unix

package executors

import (
	"os"
	"syscall"
)

// diskFull tells whether the file system holding f has no block left for
// an unprivileged write.
func diskFull(f *os.File) bool {
	var st syscall.Statfs_t
	if err := syscall.Fstatfs(int(f.Fd()), &st); err != nil {
		return false
	}
	return st.Bavail == 0
}
