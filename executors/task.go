package executors

import "time"

// Task is what an executor sees of a task definition: its name, the user to
// run as, its env, and the config of its type. The workflow loader
// (engine/workflow) decodes and validates these; its Task embeds this one.
// The executors own the types so that the loader imports them (downward)
// rather than the executors importing the loader.
type Task struct {
	Name string
	Env  map[string]string
	User string // run as this user (shell, when root)

	Shell *ShellConfig // set when the task type is shell
	SSH   *SSHConfig   // set when the task type is ssh
	HTTP  *HTTPConfig  // set when the task type is http
}

// ShellConfig is the `config:` of a shell task.
type ShellConfig struct {
	Command string
	Workdir string
}

// SSHConfig is the `config:` of an ssh task.
type SSHConfig struct {
	Host                  string // host or host:port
	Port                  int    // 0 = from Host or 22
	User                  string
	Command               string
	IdentityFile          string
	Passphrase            string // usually "${secret:NAME}"
	KnownHosts            string
	ConnectTimeout        time.Duration
	InsecureIgnoreHostKey bool
}

// HTTPConfig is the `config:` of an http task.
type HTTPConfig struct {
	URL          string
	Method       string
	Headers      map[string]string
	JSON         any    // encoded as the request body when set
	Body         string // raw body, exclusive with JSON
	Timeout      time.Duration
	ExpectStatus []int             // empty = any 2xx
	Outputs      map[string]string // output name -> path into the JSON response (".a.b[0]")
	CAFile       string
}
