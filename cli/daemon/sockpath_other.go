//go:build !linux

package daemon

import "fmt"

// maxSunPath is the longest path a unix socket address holds on the BSDs
// and macOS.
const maxSunPath = 104

// viaShortPath calls fn with path; a path too long for a unix socket
// address is an error with a hint (there is no /proc/self/fd to reach it
// through here).
func viaShortPath(path string, fn func(name string) error) error {
	if len(path) >= maxSunPath {
		return fmt.Errorf("socket path %s is %d bytes, longer than the %d a unix socket address holds; "+
			"hint: use a shorter home path", path, len(path), maxSunPath-1)
	}
	return fn(path)
}
