//go:build !linux

package cli

// closeInheritedOnExec marks every descriptor from 3 up close-on-exec, as
// /dev/fd lists them.
func closeInheritedOnExec() { closeListedOnExec("/dev/fd") }
