package ssh

import (
	"fmt"
	"io"
	"strings"

	gossh "golang.org/x/crypto/ssh"
)

// sendEnv passes env (KEY=VALUE) to the remote command. Each variable is
// offered with Setenv first; OpenSSH accepts only the names its AcceptEnv
// lists, and the names a server refused on a connection are not offered
// again there. The refused ones come back as an `export` prefix for the
// command, every value single-quoted. Names that are not shell names are
// not sent (a warning goes to the log).
func (e *Executor) sendEnv(c *conn, s *gossh.Session, env []string, log io.Writer) (prefix string) {
	var exports []string
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if !validName(k) {
			fmt.Fprintf(log, "picoflow: env %q is not a shell variable name: not sent to the remote host\n", k)
			continue
		}
		if !e.pool.refused(c, k) {
			if err := s.Setenv(k, v); err == nil {
				continue
			}
			e.pool.refuse(c, k)
		}
		exports = append(exports, k+"="+shellQuote(v))
	}
	if len(exports) == 0 {
		return ""
	}
	return "export " + strings.Join(exports, " ") + "; "
}

// shellQuote single-quotes s for a POSIX shell, so that every byte stands
// for itself; a single quote closes the quoting, adds an escaped quote and
// reopens:
//
//	it's  ->  'it'\''s'
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// validName reports whether s is a POSIX shell variable name.
func validName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
