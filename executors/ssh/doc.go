// Package ssh runs `type: ssh` tasks: one command on a remote host over
// SSH (golang.org/x/crypto/ssh), its stdout and stderr streamed into the
// task log, its exit status the task's exit code.
//
// Authentication is by key only: the task's identity_file (decrypted with
// passphrase when encrypted), else the keys of the ssh-agent at
// $SSH_AUTH_SOCK followed by the default key files ~/.ssh/id_ed25519,
// id_ecdsa and id_rsa. Host keys are verified against known_hosts
// (~/.ssh/known_hosts by default); the client asks for the key types known
// for the host. An unknown, changed or revoked key fails the task without
// retry (HostKeyError says how to check and add the key, and that a
// changed key may be an attack). insecure_ignore_host_key skips the check
// with a warning in the task log and the daemon log.
//
// Failures are classified for the engine, which owns retries: refused
// connections, DNS errors, handshake timeouts and lost connections are
// retryable; host key, authentication and key file problems are NoRetry.
// A timeout or a shutdown sends SIGTERM to the remote command, then after
// the kill grace SIGKILL and closes the session (closing the whole
// connection if the server does not answer).
//
// Only Request.TaskEnv is sent, never the local environment: each variable
// with Setenv, and those the server refuses (OpenSSH accepts only its
// AcceptEnv names) as an `export K='v'; ` prefix of the command, each
// value single-quoted. The remote login shell must be a POSIX shell.
//
// Connections are pooled: tasks with the same user, host, port, identity
// and host key policy share a connection, up to Options.MaxSessions
// sessions each; more open another. A connection with no session for
// Options.IdleTimeout is closed, and Close closes them all.
//
// The package must never fall back to password or keyboard-interactive
// authentication, never accept a host key that known_hosts does not hold
// unless the task says insecure_ignore_host_key, never retry a command,
// and never send a value unquoted into the remote shell.
package ssh
