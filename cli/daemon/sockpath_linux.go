package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxSunPath is the longest path a unix socket address holds
// (struct sockaddr_un's sun_path).
const maxSunPath = len(syscall.RawSockaddrUnix{}.Path)

// viaShortPath calls fn with a name of the socket at path that fits a
// unix socket address. A path too long for sun_path (a deep home) is
// reached through its directory: fn gets /proc/self/fd/N/NAME, N being the
// directory opened O_PATH and kept open until fn returns. Binding or
// connecting through that name reaches the same inode as path.
func viaShortPath(path string, fn func(name string) error) error {
	if len(path) < maxSunPath {
		return fn(path)
	}
	dir, base := filepath.Split(path)
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		return fmt.Errorf("socket path %s is %d bytes, longer than the %d a unix socket address holds, and /proc/self/fd, "+
			"the way around that, is not available (%v); hint: use a shorter home path", path, len(path), maxSunPath-1, err)
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the socket's directory %s: %w", dir, err)
	}
	defer unix.Close(fd)
	return fn("/proc/self/fd/" + strconv.Itoa(fd) + "/" + base)
}
