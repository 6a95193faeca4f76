//go:build !linux

package engine

import "errors"

// leasesWork: elsewhere PicoFlow cannot tell that no process holds a file
// open, and creates a log file per attempt.
const leasesWork = false

func lease(uintptr) error { return errors.ErrUnsupported }

func dropLease(uintptr) {}
