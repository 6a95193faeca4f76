//go:build !linux

package daemon

import "errors"

// trimResident needs /proc/self/smaps (Linux). Elsewhere the daemon's
// memory is left to the kernel; the daemon logs this at debug level.
func trimResident() (int64, error) {
	return 0, errors.New("memory trimming reads /proc/self/smaps: Linux only")
}
