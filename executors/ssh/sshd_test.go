package ssh

// The harness: a real OpenSSH sshd on 127.0.0.1, one per test, with a
// generated host key, the test keys authorized for the current user and
// its log read from stderr. There is no fallback: without sshd the tests
// fail and say how to install it.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/picoflow/picoflow/executors"
	gossh "golang.org/x/crypto/ssh"
)

const testPassphrase = "correct horse 'battery' $taple"

// keyDir holds the client keys, made once per test binary.
var keyDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "picoflow-ssh-keys-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	keyDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	keysOnce sync.Once
	keysErr  error
)

// key returns the path of a client key: ed25519, ed25519-enc (encrypted
// with testPassphrase), ecdsa, rsa, all authorized, and stranger, not.
func key(t *testing.T, name string) string {
	t.Helper()
	keysOnce.Do(func() {
		for _, k := range []struct{ name, typ, pass string }{
			{"ed25519", "ed25519", ""}, {"ed25519-enc", "ed25519", testPassphrase},
			{"ecdsa", "ecdsa", ""}, {"rsa", "rsa", ""}, {"stranger", "ed25519", ""},
		} {
			if keysErr = keygen(filepath.Join(keyDir, k.name), k.typ, k.pass); keysErr != nil {
				return
			}
		}
	})
	if keysErr != nil {
		t.Fatal(keysErr)
	}
	return filepath.Join(keyDir, name)
}

func keygen(path, typ, pass string) error {
	bin, err := exec.LookPath("ssh-keygen")
	if err != nil {
		return fmt.Errorf("ssh-keygen not found (%v): install openssh-client with scripts/deps.sh", err)
	}
	args := []string{"-q", "-t", typ, "-N", pass, "-C", "picoflow-test", "-f", path}
	if typ == "rsa" {
		args = append(args, "-b", "2048")
	}
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ssh-keygen %s: %v: %s", path, err, out)
	}
	return nil
}

// sshd is a running OpenSSH server.
type sshd struct {
	dir        string
	port       int
	addr       string // 127.0.0.1:port
	hostPub    string // "ssh-ed25519 AAAA..."
	knownHosts string // a known_hosts file that vouches for it
	user       string

	mu    sync.Mutex
	cond  *sync.Cond
	lines []string
	done  bool // stderr closed: sshd exited
	syncs int
}

func sshdPath(t *testing.T) string {
	if p, err := exec.LookPath("sshd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/sshd"); err == nil {
		return "/usr/sbin/sshd"
	}
	t.Fatal("sshd not found: the ssh executor tests run against a real OpenSSH server; " +
		"install it with scripts/deps.sh (Debian package openssh-server)")
	return ""
}

// startSSHD starts sshd with extra config lines; it is stopped when the
// test ends.
func startSSHD(t *testing.T, extra ...string) *sshd {
	t.Helper()
	bin := sshdPath(t)
	if os.Geteuid() == 0 {
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // privilege separation dir
			t.Fatal(err)
		}
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	s := &sshd{dir: t.TempDir(), user: u.Username}
	s.cond = sync.NewCond(&s.mu)
	hostKey := filepath.Join(s.dir, "host_ed25519")
	if err := keygen(hostKey, "ed25519", ""); err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(pub))
	s.hostPub = f[0] + " " + f[1]
	var auth strings.Builder
	for _, k := range []string{"ed25519", "ed25519-enc", "ecdsa", "rsa"} {
		b, err := os.ReadFile(key(t, k) + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		auth.Write(b)
	}
	write(t, filepath.Join(s.dir, "authorized_keys"), auth.String(), 0o600)

	for try := 0; ; try++ {
		s.port = freePort(t)
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		conf := filepath.Join(s.dir, "sshd_config")
		write(t, conf, strings.Join(append([]string{
			"Port " + strconv.Itoa(s.port),
			"ListenAddress 127.0.0.1",
			"HostKey " + hostKey,
			"PidFile " + filepath.Join(s.dir, "sshd.pid"),
			"AuthorizedKeysFile " + filepath.Join(s.dir, "authorized_keys"),
			"UsePAM no",
			"StrictModes no",
			"PasswordAuthentication no",
			"KbdInteractiveAuthentication no",
			"PermitRootLogin prohibit-password",
			"AcceptEnv PICOFLOW_* LANG",
			"LogLevel INFO",
		}, extra...), "\n")+"\n", 0o600)
		if s.run(t, bin, conf) {
			break
		}
		if try == 3 {
			t.Fatalf("sshd did not start:\n%s", s.log())
		}
	}
	s.knownHosts = filepath.Join(s.dir, "known_hosts")
	write(t, s.knownHosts, "[127.0.0.1]:"+strconv.Itoa(s.port)+" "+s.hostPub+"\n", 0o600)
	return s
}

// run starts sshd and waits for it to listen. It returns false when the
// port was taken meanwhile.
func (s *sshd) run(t *testing.T, bin, conf string) bool {
	s.mu.Lock()
	s.lines, s.done = nil, false
	s.mu.Unlock()
	cmd := exec.Command(bin, "-D", "-e", "-f", conf)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.mu.Lock()
			s.lines = append(s.lines, sc.Text())
			s.cond.Broadcast()
			s.mu.Unlock()
		}
		s.mu.Lock()
		s.done = true
		s.cond.Broadcast()
		s.mu.Unlock()
	}()
	if !s.waitLine("Server listening on", 10*time.Second) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		<-read
		if strings.Contains(s.log(), "Address already in use") {
			return false
		}
		t.Fatalf("sshd did not start listening:\n%s", s.log())
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("sshd log:\n%s", s.log())
		}
	})
	return true
}

// waitLine waits until a log line contains sub, sshd exits, or d passes.
func (s *sshd) waitLine(sub string, d time.Duration) bool {
	expired := false
	tm := time.AfterFunc(d, func() {
		s.mu.Lock()
		expired = true
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer tm.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; ; {
		for ; i < len(s.lines); i++ {
			if strings.Contains(s.lines[i], sub) {
				return true
			}
		}
		if s.done || expired {
			return false
		}
		s.cond.Wait()
	}
}

func (s *sshd) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

// accepted returns how many connections sshd has authenticated so far.
// It first makes sshd log a marker through a connection of its own: the
// lines of every earlier connection precede it in the stream, so the
// count is complete once the marker has been read.
func (s *sshd) accepted(t *testing.T) int {
	t.Helper()
	s.mu.Lock()
	s.syncs++
	marker := fmt.Sprintf("picoflow-sync-%d", s.syncs)
	s.mu.Unlock()
	signer := signer(t, key(t, "stranger"))
	c, err := gossh.Dial("tcp", s.addr, &gossh.ClientConfig{User: marker,
		Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)}, HostKeyCallback: gossh.InsecureIgnoreHostKey()})
	if err == nil {
		c.Close()
		t.Fatal("the marker connection was accepted")
	}
	if !s.waitLine("Invalid user "+marker, 10*time.Second) {
		t.Fatalf("sshd did not log the marker %s", marker)
	}
	n := 0
	for _, l := range strings.Split(s.log(), "\n") {
		if strings.Contains(l, "Accepted publickey") {
			n++
		}
	}
	return n
}

func signer(t *testing.T, path string) gossh.Signer {
	t.Helper()
	s, err := loadKey(path, "")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func write(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

// config is an ssh task config for s with the ed25519 key.
func (s *sshd) config(command string) *executors.SSHConfig {
	return &executors.SSHConfig{Host: s.addr, User: s.user, Command: command,
		IdentityFile: filepath.Join(keyDir, "ed25519"), KnownHosts: s.knownHosts}
}

// newExec returns an executor with no agent and an empty home, closed
// when the test ends.
func newExec(t *testing.T, opts Options) *Executor {
	t.Helper()
	opts.NoAgent = opts.AgentSocket == ""
	if opts.Home == "" {
		opts.Home = t.TempDir()
	}
	e := New(opts)
	t.Cleanup(func() { e.Close() })
	return e
}

// attempt is one Execute with its own log file.
type attempt struct {
	ctx     context.Context
	timeout time.Duration
	env     []string
	name    string
}

func run(t *testing.T, e *Executor, cfg *executors.SSHConfig, a attempt) (executors.Result, string) {
	t.Helper()
	if a.ctx == nil {
		a.ctx = context.Background()
	}
	if a.name == "" {
		a.name = "remote"
	}
	log, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	req := &executors.Request{Run: "r1", Workflow: "wf", Attempt: 1,
		Task:    &executors.Task{Name: a.name, SSH: cfg},
		TaskEnv: a.env, Timeout: a.timeout, KillGrace: 2 * time.Second, Log: log}
	res := e.Execute(a.ctx, req)
	b, err := os.ReadFile(log.Name())
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}
