package ssh

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyError is a host key that known_hosts does not vouch for: unknown,
// changed or revoked. Retrying cannot fix it, so the task fails at once.
type HostKeyError struct {
	Host, Port string
	File       string // known_hosts file
	Key        gossh.PublicKey
	Want       []knownhosts.KnownKey // the keys on file; empty = unknown host
	Revoked    bool
	Missing    bool // the known_hosts file does not exist
}

func (e *HostKeyError) Error() string {
	got := e.Key.Type() + " " + gossh.FingerprintSHA256(e.Key)
	keyscan := keyscanCmd(e.Host, e.Port, e.File)
	switch {
	case e.Revoked:
		return fmt.Sprintf("host key of %s (%s) is marked @revoked in %s: refusing to connect", e.addr(), got, e.File)
	case len(e.Want) == 0:
		where := "is not in " + e.File
		if e.Missing {
			where = "cannot be verified: " + e.File + " does not exist"
		}
		return fmt.Sprintf("host key of %s %s (the server offered %s). Check that fingerprint with the host's "+
			"administrator (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the host), then add it: %s",
			e.addr(), where, got, keyscan)
	}
	var was []string
	for _, k := range e.Want {
		was = append(was, fmt.Sprintf("%s %s (%s:%d)", k.Key.Type(), gossh.FingerprintSHA256(k.Key), k.Filename, k.Line))
	}
	return fmt.Sprintf("HOST KEY OF %s HAS CHANGED: the server offered %s, %s has %s. "+
		"This may be an attack (someone intercepting the connection); do not update the key before the "+
		"host's administrator confirms the new fingerprint. If the change is expected (host reinstalled), "+
		"remove the old entry with ssh-keygen -R %s -f %s, then add the new one: %s",
		e.addr(), got, e.File, strings.Join(was, ", "), shellQuote(knownhosts.Normalize(net.JoinHostPort(e.Host, e.Port))), e.File, keyscan)
}

func (e *HostKeyError) addr() string { return net.JoinHostPort(e.Host, e.Port) }

func keyscanCmd(host, port, file string) string {
	p := ""
	if port != "22" {
		p = "-p " + port + " "
	}
	return fmt.Sprintf("ssh-keyscan %s%s >> %s", p, shellQuote(host), shellQuote(file))
}

// hostKeyCheck returns the host key callback for t and the host key
// algorithms to ask the server for: those of the keys known_hosts has for
// the host, so that a server holding several keys presents one we know
// rather than look changed.
func hostKeyCheck(t *target) (gossh.HostKeyCallback, []string, error) {
	if t.insecure {
		return gossh.InsecureIgnoreHostKey(), nil, nil
	}
	host, port, _ := net.SplitHostPort(t.addr)
	file := t.knownHosts
	cb, err := knownhosts.New(file)
	missing := false
	if errors.Is(err, os.ErrNotExist) {
		missing = true
		cb = func(string, net.Addr, gossh.PublicKey) error { return &knownhosts.KeyError{} }
	} else if err != nil {
		return nil, nil, &configError{fmt.Errorf("known_hosts: %w", err)}
	}
	check := func(hostname string, remote net.Addr, key gossh.PublicKey) error {
		err := cb(hostname, remote, key)
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case errors.As(err, &ke):
			return &HostKeyError{Host: host, Port: port, File: file, Key: key, Want: ke.Want, Missing: missing}
		case errors.As(err, &re):
			return &HostKeyError{Host: host, Port: port, File: file, Key: key, Revoked: true}
		}
		return err
	}
	return check, knownAlgorithms(cb, t.addr), nil
}

// probeKey is a key no known_hosts holds: checking it returns the host's
// known keys in a KeyError.
var probeKey, _ = gossh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))

func knownAlgorithms(cb gossh.HostKeyCallback, addr string) []string {
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	var ke *knownhosts.KeyError
	if err := cb(addr, &net.TCPAddr{IP: net.IPv4zero, Port: p}, probeKey); !errors.As(err, &ke) {
		return nil
	}
	var algos []string
	add := func(a ...string) {
		for _, x := range a {
			if !contains(algos, x) {
				algos = append(algos, x)
			}
		}
	}
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case gossh.KeyAlgoRSA:
			add(gossh.KeyAlgoRSASHA512, gossh.KeyAlgoRSASHA256, gossh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	return algos
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
