package engine

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// oTmpfile is O_TMPFILE, which package syscall does not define: its
// value includes O_DIRECTORY, which differs between architectures.
const oTmpfile = 0o20000000 | syscall.O_DIRECTORY

// openUnnamed creates an unnamed log file in dir, which linkUnnamed
// names path; path is its name meanwhile (os.File.Name). dir is not made:
// in a new home the layout's upgrade comes first (cli/upgrade.go).
func openUnnamed(dir, path string) (*os.File, error) {
	for {
		fd, err := syscall.Open(dir, oTmpfile|syscall.O_RDWR|syscall.O_CLOEXEC, 0o640)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: dir, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
}

// linkUnnamed gives f, made by openUnnamed, its name. linkat(2) of the
// descriptor itself (AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; of its
// /proc/self/fd link it does not.
func linkUnnamed(f *os.File, path string) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	err = rc.Control(func(fd uintptr) {
		lerr = linkat(fmt.Sprintf("/proc/self/fd/%d", fd), path)
	})
	if err != nil {
		return err
	}
	return lerr
}

func linkat(from, to string) error {
	const atSymlinkFollow = 0x400
	atFdcwd := ^uintptr(99) // AT_FDCWD, -100
	p0, err := syscall.BytePtrFromString(from)
	if err != nil {
		return err
	}
	p1, err := syscall.BytePtrFromString(to)
	if err != nil {
		return err
	}
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_LINKAT, atFdcwd, uintptr(unsafe.Pointer(p0)),
			atFdcwd, uintptr(unsafe.Pointer(p1)), atSymlinkFollow, 0)
		switch e {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		}
		return &os.LinkError{Op: "link", Old: from, New: to, Err: e}
	}
}
