package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/picoflow/picoflow/executors"
	"github.com/picoflow/picoflow/executors/secret"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

func TestRun(t *testing.T) {
	s := startSSHD(t)
	e := newExec(t, Options{})
	tests := []struct {
		name    string
		command string
		status  executors.Status
		code    int
		log     []string
		err     string
	}{
		{"success", "echo hello; echo to-stderr >&2", executors.Success, 0, []string{"hello\n", "to-stderr\n"}, ""},
		{"exit code", "echo partial; exit 3", executors.Failed, 3, []string{"partial\n"}, "exit status 3"},
		{"stderr and failure", "echo 'no such table' >&2; exit 1", executors.Failed, 1, []string{"no such table\n"}, "exit status 1"},
		{"signal", "kill -KILL $$", executors.Failed, -1, nil, "killed by signal SIGKILL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, log := run(t, e, s.config(tt.command), attempt{})
			if res.Status != tt.status || res.ExitCode != tt.code || res.NoRetry {
				t.Fatalf("got %v exit %d noretry %v (%v), want %v exit %d", res.Status, res.ExitCode, res.NoRetry, res.Err, tt.status, tt.code)
			}
			if tt.err != "" && (res.Err == nil || !strings.Contains(res.Err.Error(), tt.err)) {
				t.Errorf("err = %v, want %q", res.Err, tt.err)
			}
			for _, want := range tt.log {
				if !strings.Contains(log, want) {
					t.Errorf("log %q lacks %q", log, want)
				}
			}
		})
	}
	if n := s.accepted(t); n != 1 {
		t.Errorf("%d connections for %d sequential tasks, want 1", n, len(tests))
	}
}

func TestHostKeys(t *testing.T) {
	s := startSSHD(t)
	other := t.TempDir() + "/other"
	if err := keygen(other, "ed25519", ""); err != nil {
		t.Fatal(err)
	}
	otherPub, _ := os.ReadFile(other + ".pub")
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	write(t, empty, "# nothing yet\n", 0o600)
	changed := filepath.Join(dir, "changed")
	write(t, changed, fmt.Sprintf("[127.0.0.1]:%d %s", s.port, otherPub), 0o600)
	port := strconv.Itoa(s.port)
	tests := []struct {
		name, knownHosts string
		want             []string
	}{
		{"unknown", empty, []string{"is not in " + empty, "ssh-keyscan -p " + port + " '127.0.0.1' >> '" + empty + "'", "ssh-ed25519 SHA256:"}},
		{"no known_hosts file", filepath.Join(dir, "missing"), []string{"does not exist", "ssh-keyscan -p " + port}},
		{"changed", changed, []string{"HAS CHANGED", "attack", "ssh-keygen -R '[127.0.0.1]:" + port + "'", "ssh-keyscan -p " + port}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newExec(t, Options{})
			cfg := s.config("echo should-not-run")
			cfg.KnownHosts = tt.knownHosts
			res, log := run(t, e, cfg, attempt{})
			var hk *HostKeyError
			if res.Status != executors.Failed || !res.NoRetry || !errors.As(res.Err, &hk) {
				t.Fatalf("got %v noretry %v err %v, want a NoRetry HostKeyError", res.Status, res.NoRetry, res.Err)
			}
			for _, w := range tt.want {
				if !strings.Contains(res.Err.Error(), w) {
					t.Errorf("message lacks %q:\n%s", w, res.Err)
				}
			}
			if strings.Contains(log, "should-not-run") {
				t.Error("the command ran")
			}
		})
	}
	t.Run("insecure_ignore_host_key", func(t *testing.T) {
		e := newExec(t, Options{})
		cfg := s.config("echo ran")
		cfg.KnownHosts, cfg.InsecureIgnoreHostKey = changed, true
		res, log := run(t, e, cfg, attempt{})
		if res.Status != executors.Success {
			t.Fatalf("got %v: %v", res.Status, res.Err)
		}
		if !strings.Contains(log, "WARNING: insecure_ignore_host_key") || !strings.Contains(log, "ran\n") {
			t.Errorf("log = %q", log)
		}
	})
	if n := s.accepted(t); n != 1 {
		t.Errorf("%d authenticated connections, want 1 (only the insecure one)", n)
	}
}

func TestAuth(t *testing.T) {
	s := startSSHD(t)
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(key(t, "ecdsa"))
	write(t, filepath.Join(home, ".ssh", "id_ecdsa"), string(b), 0o600)

	ag := agent.NewKeyring()
	k, err := loadRaw(key(t, "rsa"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ag.Add(agent.AddedKey{PrivateKey: k}); err != nil {
		t.Fatal(err)
	}
	sock := serveAgent(t, ag)

	tests := []struct {
		name       string
		opts       Options
		identity   string
		passphrase string
		ok         bool
		err        string
	}{
		{"ed25519", Options{}, "ed25519", "", true, ""},
		{"ecdsa", Options{}, "ecdsa", "", true, ""},
		{"rsa", Options{}, "rsa", "", true, ""},
		{"encrypted with passphrase", Options{}, "ed25519-enc", testPassphrase, true, ""},
		{"encrypted without passphrase", Options{}, "ed25519-enc", "", false, "is encrypted: set config.passphrase"},
		{"encrypted wrong passphrase", Options{}, "ed25519-enc", "nope", false, "wrong passphrase"},
		{"key not authorized", Options{}, "stranger", "", false, "authentication failed"},
		{"missing identity file", Options{}, "no-such-key", "", false, "no such file"},
		{"agent", Options{AgentSocket: sock}, "", "", true, ""},
		{"default key file", Options{Home: home}, "", "", true, ""},
		{"no key at all", Options{}, "", "", false, "no key to authenticate with"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newExec(t, tt.opts)
			cfg := s.config("echo authenticated")
			cfg.IdentityFile, cfg.Passphrase = "", tt.passphrase
			if tt.identity != "" {
				cfg.IdentityFile = filepath.Join(keyDir, tt.identity)
			}
			res, log := run(t, e, cfg, attempt{})
			if tt.ok {
				if res.Status != executors.Success || log != "authenticated\n" {
					t.Fatalf("got %v (%v), log %q", res.Status, res.Err, log)
				}
				return
			}
			if res.Status != executors.Failed || !res.NoRetry || !strings.Contains(res.Err.Error(), tt.err) {
				t.Fatalf("got %v noretry %v err %v, want NoRetry %q", res.Status, res.NoRetry, res.Err, tt.err)
			}
			if strings.Contains(res.Err.Error(), testPassphrase) {
				t.Error("the passphrase is in the error")
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	key(t, "ed25519")
	e := newExec(t, Options{})
	s := &sshd{addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), user: "nobody", knownHosts: "/dev/null"}
	res, _ := run(t, e, s.config("true"), attempt{})
	if res.Status != executors.Failed || res.NoRetry || !strings.Contains(res.Err.Error(), "refused") {
		t.Fatalf("got %v noretry %v err %v, want a retryable failure", res.Status, res.NoRetry, res.Err)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never speaks
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	key(t, "ed25519")
	e := newExec(t, Options{})
	cfg := (&sshd{addr: l.Addr().String(), user: "nobody", knownHosts: "/dev/null"}).config("true")
	cfg.ConnectTimeout = 200 * time.Millisecond
	res, _ := run(t, e, cfg, attempt{})
	if res.Status != executors.Failed || res.NoRetry || !strings.Contains(res.Err.Error(), "did not finish within 200ms") {
		t.Fatalf("got %v noretry %v err %v, want a retryable handshake timeout", res.Status, res.NoRetry, res.Err)
	}
}

func TestTimeoutAndInterrupt(t *testing.T) {
	s := startSSHD(t)
	e := newExec(t, Options{})
	dir := t.TempDir()
	t.Run("timeout", func(t *testing.T) {
		pidFile := filepath.Join(dir, "pid")
		start := time.Now()
		res, log := run(t, e, s.config("echo $$ > "+pidFile+"; exec sleep 60"), attempt{timeout: 300 * time.Millisecond})
		if res.Status != executors.TimedOut || res.ExitCode != -1 || !strings.Contains(res.Err.Error(), "over its 300ms timeout") {
			t.Fatalf("got %v exit %d err %v", res.Status, res.ExitCode, res.Err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %s", d)
		}
		b, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if s.user != "root" {
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("remote process %d still exists after the timeout (kill 0: %v)", pid, err)
			}
			return
		}
		// OpenSSH refuses signals for root logins: the command is left
		// running and the log says so.
		if !strings.Contains(log, "may still be running on the host") {
			t.Errorf("no warning about the leftover command in %q", log)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Errorf("the leftover remote command %d: %v", pid, err)
		}
	})
	t.Run("interrupt", func(t *testing.T) {
		fifo := filepath.Join(dir, "started")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() { // cancel once the command runs: it writes a line to the fifo
			f, err := os.OpenFile(fifo, os.O_RDONLY, 0)
			if err == nil {
				// Read the line before closing: a reader gone before the
				// echo wrote kills the remote shell with SIGPIPE.
				_, _ = io.ReadAll(f)
				f.Close()
			}
			cancel()
		}()
		res, _ := run(t, e, s.config("echo > "+fifo+"; exec sleep 60"), attempt{ctx: ctx})
		if res.Status != executors.Interrupted {
			t.Fatalf("got %v: %v", res.Status, res.Err)
		}
	})
}

func TestEnv(t *testing.T) {
	s := startSSHD(t)
	e := newExec(t, Options{})
	tricky := `it's "quoted" $HOME ${x} $(id) ` + "`id` \\ back\\slash; rm -rf /nonexistent & echo pwned\n  second line"
	env := []string{
		"PICOFLOW_ACCEPTED=" + tricky, // AcceptEnv PICOFLOW_*: Setenv
		"REFUSED=" + tricky,           // not accepted: export
		"EMPTY=",
		"9BAD=x", // not a shell name: not sent
	}
	cmd := `printf '[%s]\n' "$PICOFLOW_ACCEPTED" "$REFUSED" "${EMPTY-unset}"; env | grep -c '^9BAD' || true`
	for i := 0; i < 2; i++ { // the second run knows what the server refuses
		res, log := run(t, e, s.config(cmd), attempt{env: env})
		if res.Status != executors.Success {
			t.Fatalf("got %v: %v\n%s", res.Status, res.Err, log)
		}
		want := "[" + tricky + "]\n[" + tricky + "]\n[]\n0\n"
		if !strings.HasSuffix(log, want) {
			t.Fatalf("run %d: log\n%q\nwant suffix\n%q", i, log, want)
		}
		if !strings.Contains(log, `env "9BAD" is not a shell variable name`) {
			t.Errorf("no warning for 9BAD in %q", log)
		}
	}
	e.pool.mu.Lock()
	var refused map[string]bool
	for _, list := range e.pool.conns {
		for _, c := range list {
			refused = c.refused
		}
	}
	e.pool.mu.Unlock()
	if !refused["REFUSED"] || !refused["EMPTY"] || refused["PICOFLOW_ACCEPTED"] {
		t.Errorf("refused = %v, want REFUSED and EMPTY only", refused)
	}
}

func TestConnectionReuse(t *testing.T) {
	s := startSSHD(t)
	e := newExec(t, Options{MaxSessions: 2})
	for i := 0; i < 3; i++ {
		if res, _ := run(t, e, s.config("true"), attempt{}); res.Status != executors.Success {
			t.Fatalf("run %d: %v", i, res.Err)
		}
	}
	if n := s.accepted(t); n != 1 {
		t.Fatalf("%d connections after 3 sequential tasks, want 1", n)
	}

	// Four tasks at once, each held until its gate opens: with 2 sessions
	// per connection that takes exactly one more connection.
	const n = 4
	dir := t.TempDir()
	var wg sync.WaitGroup
	results := make([]executors.Result, n)
	for i := range n {
		gate := filepath.Join(dir, fmt.Sprintf("gate%d", i))
		if err := syscall.Mkfifo(gate, 0o600); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _ = run(t, e, s.config("cat "+gate), attempt{name: fmt.Sprint("t", i)})
		}()
	}
	var gates []*os.File
	for i := range n { // opening a fifo for writing waits for its reader: task i runs
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("gate%d", i)), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		gates = append(gates, f)
	}
	for _, f := range gates {
		f.Close()
	}
	wg.Wait()
	for i, r := range results {
		if r.Status != executors.Success {
			t.Errorf("task %d: %v", i, r.Err)
		}
	}
	if got := s.accepted(t); got != 2 {
		t.Errorf("%d connections in all, want 2 (4 concurrent sessions, 2 per connection)", got)
	}
}

func TestIdleClose(t *testing.T) {
	s := startSSHD(t)
	e := newExec(t, Options{IdleTimeout: time.Millisecond})
	closed := make(chan struct{}, 1)
	e.pool.onClose = func() { closed <- struct{}{} }
	for i := 0; i < 2; i++ {
		if res, _ := run(t, e, s.config("true"), attempt{}); res.Status != executors.Success {
			t.Fatalf("run %d: %v", i, res.Err)
		}
		<-closed
	}
	if n := s.accepted(t); n != 2 {
		t.Errorf("%d connections, want 2: the first was closed when idle", n)
	}
}

func TestClosed(t *testing.T) {
	s := startSSHD(t)
	e := newExec(t, Options{})
	if res, _ := run(t, e, s.config("true"), attempt{}); res.Status != executors.Success {
		t.Fatal(res.Err)
	}
	e.Close()
	res, _ := run(t, e, s.config("true"), attempt{})
	if !errors.Is(res.Err, ErrClosed) || !res.NoRetry {
		t.Fatalf("after Close: %v noretry %v", res.Err, res.NoRetry)
	}
}

func TestShellQuote(t *testing.T) {
	for _, v := range []string{"", "plain", "it's", "''", `\'`, "$HOME `id` $(id)", "a\nb", "trailing\\", "'; echo pwned; '"} {
		out, err := exec.Command("/bin/sh", "-c", "printf %s "+shellQuote(v)).Output()
		if err != nil || string(out) != v {
			t.Errorf("%q: got %q (%v)", v, out, err)
		}
	}
}

func serveAgent(t *testing.T, ag agent.Agent) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = agent.ServeAgent(ag, c)
			}()
		}
	}()
	return sock
}

func loadRaw(path string) (any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return gossh.ParseRawPrivateKey(b)
}

// Through the secret wrapper, as the cli runs it: the key's passphrase and
// an env value are references, and what the remote prints is masked.
func TestSecrets(t *testing.T) {
	s := startSSHD(t)
	const token = "t0ken with 'quotes' and $dollar"
	store := secret.New(map[string]secret.Source{"keypass": {Env: "KEYPASS"}, "token": {Env: "TOKEN"}},
		func(k string) (string, bool) {
			return map[string]string{"KEYPASS": testPassphrase, "TOKEN": token}[k], true
		})
	e := newExec(t, Options{})
	cfg := s.config(`echo "token=$TOKEN"; echo "$TOKEN" >&2; echo "data=$PICOFLOW_OUT_UP_X"`)
	cfg.IdentityFile, cfg.Passphrase = filepath.Join(keyDir, "ed25519-enc"), "${secret:keypass}"
	log, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	env := []string{"TOKEN=${secret:token}", "PICOFLOW_OUT_UP_X=${secret:token}"}
	res := store.Wrap(e).Execute(context.Background(), &executors.Request{Run: "r", Workflow: "w", Attempt: 1, Log: log,
		Task:    &executors.Task{Name: "remote", SSH: cfg},
		TaskEnv: env, Env: env, RefKeys: map[string]bool{"TOKEN": true}})
	if res.Status != executors.Success {
		t.Fatalf("got %v: %v", res.Status, res.Err)
	}
	b, _ := os.ReadFile(log.Name())
	if !strings.Contains(string(b), "token=***\n") || strings.Count(string(b), "***\n") != 2 || strings.Contains(string(b), "t0ken") ||
		!strings.Contains(string(b), "data=${secret:token}\n") { // data is never resolved
		t.Errorf("log %q", b)
	}
}

// TestLogNotWritten runs remote commands whose output cannot be written to
// the log: the attempt fails naming the log and the cause (not the bare
// write error, nor a command blocked on a full channel window).
func TestLogNotWritten(t *testing.T) {
	s := startSSHD(t)
	e := newExec(t, Options{})
	for _, tc := range []struct{ name, command string }{
		{"small", "echo hello"},
		{"more-than-the-window", "head -c 3000000 /dev/zero; echo done"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.1.log")
			log, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o600) // every write to it fails
			if err != nil {
				t.Fatal(err)
			}
			defer log.Close()
			req := &executors.Request{Run: "r1", Workflow: "wf", Attempt: 1, Log: log, Timeout: time.Minute,
				Task: &executors.Task{Name: "remote", SSH: s.config(tc.command)}}
			res := e.Execute(context.Background(), req)
			want := "write log " + path + ": bad file descriptor"
			if res.Status != executors.Failed || res.Err == nil || !strings.Contains(res.Err.Error(), want) {
				t.Fatalf("status %s, err %v: want failed with %q", res.Status, res.Err, want)
			}
		})
	}
}
