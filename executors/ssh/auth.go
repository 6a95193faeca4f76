package ssh

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// defaultKeys are tried, in order, when a task names no identity_file.
var defaultKeys = []string{"id_ed25519", "id_ecdsa", "id_rsa"}

// configError is a problem with the task's own settings (a key that
// cannot be read, a wrong passphrase): retrying cannot fix it.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// auth is the public key method for t and a description of the keys it
// offers, for the message when the server accepts none of them. close
// releases the agent connection once the handshake is over.
type auth struct {
	method gossh.AuthMethod
	tried  string
	close  func()
}

// authFor picks the keys: identity_file alone when set; else the keys of
// the ssh-agent followed by the default key files that exist (an
// encrypted one only when a passphrase is given).
func (e *Executor) authFor(t *target) (*auth, error) {
	if t.identity != "" {
		path := e.expandHome(t.identity)
		s, err := loadKey(path, t.passphrase)
		if err != nil {
			return nil, &configError{err}
		}
		return &auth{method: gossh.PublicKeys(s), tried: "identity_file " + path, close: func() {}}, nil
	}
	var signers []gossh.Signer
	var tried []string
	a := &auth{close: func() {}}
	if sock := e.agentSocket(); sock != "" {
		if c, err := net.Dial("unix", sock); err == nil {
			if s, err := agent.NewClient(c).Signers(); err == nil && len(s) > 0 {
				signers = append(signers, s...)
				tried = append(tried, fmt.Sprintf("%d ssh-agent key(s)", len(s)))
				a.close = func() { c.Close() }
			} else {
				c.Close()
			}
		} else {
			e.log.Debug("ssh-agent unreachable", "socket", sock, "err", err)
		}
	}
	var skipped []string
	for _, name := range defaultKeys {
		path := filepath.Join(e.home(), ".ssh", name)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		s, err := loadKey(path, t.passphrase)
		if err != nil {
			skipped = append(skipped, err.Error())
			continue
		}
		signers = append(signers, s)
		tried = append(tried, path)
	}
	if len(signers) == 0 {
		msg := "no key to authenticate with: set identity_file, run an ssh-agent (SSH_AUTH_SOCK) or create " +
			filepath.Join(e.home(), ".ssh", defaultKeys[0])
		if len(skipped) > 0 {
			msg += " (" + strings.Join(skipped, "; ") + ")"
		}
		return nil, &configError{errors.New(msg)}
	}
	a.method = gossh.PublicKeys(signers...)
	a.tried = strings.Join(tried, ", ")
	return a, nil
}

// loadKey reads a private key (ed25519, ECDSA or RSA, OpenSSH or PEM
// format), decrypting it with passphrase when it is encrypted.
func loadKey(path, passphrase string) (gossh.Signer, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("identity file: %w", err)
	}
	s, err := gossh.ParsePrivateKey(pem)
	var missing *gossh.PassphraseMissingError
	switch {
	case err == nil:
		return s, nil
	case !errors.As(err, &missing):
		return nil, fmt.Errorf("identity file %s: %w", path, err)
	case passphrase == "":
		return nil, fmt.Errorf("identity file %s is encrypted: set config.passphrase, usually to ${secret:NAME}", path)
	}
	s, err = gossh.ParsePrivateKeyWithPassphrase(pem, []byte(passphrase))
	if errors.Is(err, x509.IncorrectPasswordError) {
		return nil, fmt.Errorf("identity file %s: wrong passphrase", path)
	}
	if err != nil {
		return nil, fmt.Errorf("identity file %s: %w", path, err)
	}
	return s, nil
}

func (e *Executor) home() string {
	if e.opts.Home != "" {
		return e.opts.Home
	}
	h, _ := os.UserHomeDir()
	return h
}

// expandHome expands a leading "~/" to the home directory.
func (e *Executor) expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		return filepath.Join(e.home(), rest)
	}
	return p
}

func (e *Executor) agentSocket() string {
	if e.opts.NoAgent {
		return ""
	}
	if e.opts.AgentSocket != "" {
		return e.opts.AgentSocket
	}
	return os.Getenv("SSH_AUTH_SOCK")
}
