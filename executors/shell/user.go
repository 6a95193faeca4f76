package shell

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"github.com/picoflow/picoflow/executors"
)

// credential makes c run as the named user with its groups. Only root can
// do that; for anyone else a task with `user:` fails with a clear error
// rather than silently running as the wrong user.
func credential(c *command, name string) error {
	if name == "" {
		return nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("task user %q: %w", name, err)
	}
	if os.Geteuid() != 0 {
		cur, _ := user.Current()
		if cur != nil && cur.Uid == u.Uid {
			return nil
		}
		return fmt.Errorf("task user %q: picoflow must run as root to switch users (it runs as uid %d)", name, os.Geteuid())
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return fmt.Errorf("task user %q: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return fmt.Errorf("task user %q: gid %q: %w", name, u.Gid, err)
	}
	var groups []uint32
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				groups = append(groups, uint32(n))
			}
		}
	}
	c.sys.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}
	return nil
}

// userOutput hands a task that runs as another user (c's credential) its
// $PICOFLOW_OUTPUT file as an open descriptor the user owns: the path lies
// in the run's log directory, which only picoflow's own user may enter.
// $PICOFLOW_OUTPUT becomes /dev/fd/N, whose open reopens the file itself
// without passing through that directory. The caller closes the returned
// file once the process has started (nil: nothing to do).
func userOutput(c *command, req *executors.Request) (*os.File, error) {
	cred := c.sys.Credential
	if cred == nil || req.OutputFile == "" {
		return nil, nil
	}
	f, err := os.OpenFile(req.OutputFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("output file: %w", err)
	}
	if err := f.Chown(int(cred.Uid), int(cred.Gid)); err != nil {
		f.Close()
		return nil, fmt.Errorf("output file: %w", err)
	}
	fd := len(c.files)
	c.files = append(c.files, f.Fd())
	env := make([]string, 0, len(c.env))
	for _, kv := range c.env {
		if !strings.HasPrefix(kv, "PICOFLOW_OUTPUT=") {
			env = append(env, kv)
		}
	}
	c.env = append(env, "PICOFLOW_OUTPUT=/dev/fd/"+strconv.Itoa(fd))
	return f, nil
}
