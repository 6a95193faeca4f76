package shell

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
)

// credential makes cmd run as the named user with its groups. Only root can
// do that; for anyone else a task with `user:` fails with a clear error
// rather than silently running as the wrong user.
func credential(cmd *exec.Cmd, name string) error {
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
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}
	return nil
}
