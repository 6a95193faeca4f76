package shell

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"
)

// command is a shell about to be started: the part of os/exec.Cmd this
// executor needs, started with syscall.StartProcess. It costs a task less
// than os/exec on the path from one task's end to the next one's start:
// os/exec switches every file it hands over to blocking mode (two fcntl
// each, after a pipe's were added to the poller), and opens a pidfd with
// the clone that is closed after the wait. Nothing here needs the pidfd:
// the shell is signalled through its process group, whose id stays its
// own until the shell is reaped, and the shell is waited for by its pid.
type command struct {
	args  []string  // args[0] is the shell's path
	dir   string    // the working directory; "" is PicoFlow's own
	env   []string  // KEY=VALUE; of a key given twice the last value wins
	files []uintptr // the shell's descriptors 0, 1, 2, 3 and on
	sys   syscall.SysProcAttr
	pid   int           // once started; the shell's process group too
	cpu   time.Duration // once reaped: its CPU time, with its waited-for children's
}

// start starts the shell; its errors are *os.PathError, as os/exec's.
func (c *command) start() error {
	env, err := dedupEnv(c.env)
	if err != nil {
		return err
	}
	pid, _, err := syscall.StartProcess(c.args[0], c.args,
		&syscall.ProcAttr{Dir: c.dir, Env: env, Files: c.files, Sys: &c.sys})
	if err != nil {
		return &os.PathError{Op: "fork/exec", Path: c.args[0], Err: err}
	}
	c.pid = pid
	return nil
}

// wait reaps the shell: nil when it exited 0, else an *exitError.
func (c *command) wait() error {
	var ws syscall.WaitStatus
	var ru syscall.Rusage
	for {
		_, err := syscall.Wait4(c.pid, &ws, 0, &ru)
		if err == nil {
			break
		}
		if err != syscall.EINTR {
			return os.NewSyscallError("wait4", err)
		}
	}
	c.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if ws.Exited() && ws.ExitStatus() == 0 {
		return nil
	}
	return &exitError{ws}
}

// exitError is how a shell that did not exit 0 ended.
type exitError struct{ ws syscall.WaitStatus }

func (e *exitError) Error() string {
	if e.ws.Signaled() {
		return "killed by signal " + sigName(e.ws.Signal())
	}
	return fmt.Sprintf("exit status %d", e.ws.ExitStatus())
}

// dedupEnv returns env with only the last entry of each key, in order, and
// refuses a NUL byte, as os/exec does. An environment without a key given
// twice (the usual one) is returned as is, found so by a hash table on the
// stack: a map and a copy cost 3 µs a task on the path to its fork.
func dedupEnv(env []string) ([]string, error) {
	if len(env) > maxQuickEnv {
		return dedupEnvSlow(env)
	}
	var table [2 * maxQuickEnv]int16 // index+1 of the entry of a key's hash
	mask := uint32(1)
	for mask < uint32(2*len(env)) {
		mask <<= 1
	}
	mask--
	for i, kv := range env {
		k, ok := envKey(kv)
		if !ok || strings.IndexByte(kv, 0) >= 0 {
			return dedupEnvSlow(env) // to drop "" or refuse NUL as it does
		}
		h := fnv1a(k) & mask
		for table[h] != 0 {
			if other, _ := envKey(env[table[h]-1]); other == k {
				return dedupEnvSlow(env)
			}
			h = (h + 1) & mask
		}
		table[h] = int16(i + 1)
	}
	return env, nil
}

// maxQuickEnv bounds the environments dedupEnv checks on the stack.
const maxQuickEnv = 256

// envKey returns the key of a KEY=VALUE entry as os/exec finds it (a
// leading '=' is part of the key: Windows has "=C:=C:\\"); ok is false for
// an entry without '=', which dedupEnvSlow keeps as is unless it is "".
func envKey(kv string) (key string, ok bool) {
	i := strings.IndexByte(kv, '=')
	if i == 0 {
		i = strings.IndexByte(kv[1:], '=') + 1
	}
	if i < 0 {
		return "", false
	}
	return kv[:i], true
}

func fnv1a(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

// dedupEnvSlow is dedupEnv for any environment.
func dedupEnvSlow(env []string) ([]string, error) {
	saw := make(map[string]struct{}, len(env))
	out := make([]string, 0, len(env))
	for i := len(env) - 1; i >= 0; i-- {
		kv := env[i]
		if strings.IndexByte(kv, 0) >= 0 {
			return nil, errors.New("environment variable contains NUL")
		}
		k, ok := envKey(kv)
		if !ok {
			if kv != "" {
				out = append(out, kv)
			}
			continue
		}
		if _, dup := saw[k]; dup {
			continue
		}
		saw[k] = struct{}{}
		out = append(out, kv)
	}
	slices.Reverse(out)
	return out, nil
}
