package executors

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Task is what an executor sees of a task definition: its name, the user to
// run as, its env, and the config of its type. The workflow loader
// (engine/workflow) decodes and validates these; its Task embeds this one.
// The executors own the types so that the loader imports them (downward)
// rather than the executors importing the loader.
type Task struct {
	Name string
	Env  Env
	User string // run as this user (shell, when root)

	Shell *ShellConfig // set when the task type is shell
	SSH   *SSHConfig   // set when the task type is ssh
	HTTP  *HTTPConfig  // set when the task type is http
}

// Env is a task's env block: its variables sorted by name, each name
// once. It is a slice rather than a map because a big DAG has one per
// task, and a map of one variable takes ten times the memory.
type Env []EnvVar

// EnvVar is one variable of an Env.
type EnvVar struct{ Name, Value string }

// Get returns the value of the named variable, "" when it is not set.
func (e Env) Get(name string) string {
	if i, ok := slices.BinarySearchFunc(e, name, func(v EnvVar, name string) int { return strings.Compare(v.Name, name) }); ok {
		return e[i].Value
	}
	return ""
}

// MaxShellCommand is the longest command a shell task can have: Linux
// passes at most 128 KiB per argument (MAX_ARG_STRLEN, its NUL included)
// and the shell executor puts its gate, under 64 bytes, before the command.
const MaxShellCommand = 128<<10 - 1 - 64

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

// MapStrings returns a copy of t in which every string that may hold a
// ${secret:NAME} or ${env:VAR} reference is replaced by fn(path, s), path
// naming it as the definition does ("config.command", "env.TOKEN",
// "config.json.items[0]"): the env values, the strings of the config of
// each type, http header values and every string of the JSON body, keys
// included. It is the one list of the secret-bearing fields: the secret
// store resolves references with it and the loader lists them with it.
// Header names are tokens that cannot hold a reference. t is not modified.
func (t *Task) MapStrings(fn func(path, s string) string) *Task {
	c := *t
	if t.Env != nil {
		c.Env = make(Env, len(t.Env))
		for k, v := range t.Env {
			c.Env[k] = EnvVar{v.Name, fn("env."+v.Name, v.Value)}
		}
	}
	if t.Shell != nil {
		sh := *t.Shell
		sh.Command = fn("config.command", sh.Command)
		sh.Workdir = fn("config.workdir", sh.Workdir)
		c.Shell = &sh
	}
	if t.SSH != nil {
		x := *t.SSH
		x.Host = fn("config.host", x.Host)
		x.User = fn("config.user", x.User)
		x.Command = fn("config.command", x.Command)
		x.IdentityFile = fn("config.identity_file", x.IdentityFile)
		x.Passphrase = fn("config.passphrase", x.Passphrase)
		x.KnownHosts = fn("config.known_hosts", x.KnownHosts)
		c.SSH = &x
	}
	if t.HTTP != nil {
		h := *t.HTTP
		h.URL = fn("config.url", h.URL)
		h.Body = fn("config.body", h.Body)
		h.CAFile = fn("config.ca_file", h.CAFile)
		if h.Headers != nil {
			h.Headers = make(map[string]string, len(t.HTTP.Headers))
			for k, v := range t.HTTP.Headers {
				h.Headers[k] = fn("config.headers."+k, v)
			}
		}
		h.JSON = mapJSON("config.json", h.JSON, fn)
		c.HTTP = &h
	}
	return &c
}

// mapJSON copies a decoded JSON value with fn applied to its strings, keys
// included.
func mapJSON(path string, v any, fn func(path, s string) string) any {
	switch v := v.(type) {
	case string:
		return fn(path, v)
	case []any:
		a := make([]any, len(v))
		for i, x := range v {
			a[i] = mapJSON(fmt.Sprintf("%s[%d]", path, i), x, fn)
		}
		return a
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[fn(path, k)] = mapJSON(path+"."+k, x, fn)
		}
		return m
	}
	return v
}
