// Package shell runs shell tasks: `/bin/sh -c COMMAND` in a process group of
// its own, so that a timeout or a shutdown can stop every process the task
// started. It must never leave a process of a task running after Execute
// returns.
package shell
