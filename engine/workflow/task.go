package workflow

import (
	"fmt"
	"github.com/picoflow/picoflow/executors"
	"strings"

	"go.yaml.in/yaml/v3"
)

var taskKeys = []string{"name", "type", "depends_on", "config", "retry", "timeout", "continue_on_failure", "idempotent", "env", "user"}

var taskTypes = []string{TypeShell, TypeSSH, TypeHTTP}

// taskNode keeps what the graph checks need to point back into the YAML.
type taskNode struct {
	node      *yaml.Node
	path      string
	nameNode  *yaml.Node   // nil when the name is missing or invalid
	depNodes  []*yaml.Node // parallel to Task.DependsOn
	depPaths  []string     // parallel to Task.DependsOn
	retrySet  bool
	timeoutOK bool // timeout given and valid
}

// task decodes one entry of `tasks`. It always returns a Task, so that the
// indexes of later tasks stay right even when this one is broken.
func (d *decoder) task(n *yaml.Node, path string) (*Task, *taskNode) {
	t := &Task{Idempotent: true, Line: n.Line}
	tn := &taskNode{node: n, path: path}
	f, ok := d.mapping(n, path, taskKeys, nil)
	if !ok {
		return t, tn
	}
	t.Line = f.node.Line

	if e, ok := d.require(f, path, "name", "name: dump"); ok {
		p := join(path, "name")
		if s, ok := d.str(e.val, p); ok {
			if len(s) > MaxNameLen {
				d.report(e.val, p, nameTooLong("task", s))
			} else if validName(s, true) {
				t.Name, tn.nameNode = s, e.val
			} else {
				d.report(e.val, p, Problem{
					Msg:  fmt.Sprintf("invalid task name %q", s),
					Hint: "use letters, digits, '_' and '-'",
				})
			}
		}
	}
	if e, ok := d.require(f, path, "type", "type: shell (or ssh, http)"); ok {
		p := join(path, "type")
		if s, ok := d.str(e.val, p); ok {
			if isKnown(s, taskTypes) {
				t.Type = s
			} else {
				pr := Problem{Msg: fmt.Sprintf("unknown task type %q", s), Suggest: suggest(s, taskTypes)}
				if pr.Suggest == "" {
					pr.Hint = "use shell, ssh or http"
				}
				d.report(e.val, p, pr)
			}
		}
	}
	if e, ok := f.get("depends_on"); ok {
		d.dependsOn(t, tn, e.val, join(path, "depends_on"))
	}
	d.taskConfig(t, f, path)
	if e, ok := f.get("retry"); ok {
		p := join(path, "retry")
		if v, ok := d.integer(e.val, p); ok {
			if v < 0 {
				d.errorf(e.val, p, "negative retry %d: retry counts the attempts after the first and must be 0 or more", v)
			} else {
				t.Retry, tn.retrySet = v, true
			}
		}
	}
	if e, ok := f.get("timeout"); ok {
		if v, ok := d.timeout(e.val, join(path, "timeout")); ok {
			t.Timeout, tn.timeoutOK = v, true
		}
	}
	if e, ok := f.get("continue_on_failure"); ok {
		t.ContinueOnFailure, _ = d.boolean(e.val, join(path, "continue_on_failure"))
	}
	if e, ok := f.get("idempotent"); ok {
		if v, ok := d.boolean(e.val, join(path, "idempotent")); ok {
			t.Idempotent = v
		}
	}
	if e, ok := f.get("env"); ok {
		t.Env, _ = d.env(e.val, join(path, "env"))
	}
	if e, ok := f.get("user"); ok {
		p := join(path, "user")
		if s, ok := d.text(e.val, p); ok {
			switch t.Type {
			case TypeSSH:
				d.report(e.key, p, Problem{
					Msg:  "user applies to shell tasks only",
					Hint: "the remote login user of an ssh task is config.user",
				})
			case TypeHTTP:
				d.errorf(e.key, p, "user applies to shell tasks only")
			default:
				t.User = s
			}
		}
	}
	return t, tn
}

// dependsOn decodes `depends_on`: a list of task names, or a single name.
// Whether the names exist is checked later, once all tasks are known.
func (d *decoder) dependsOn(t *Task, tn *taskNode, n *yaml.Node, path string) {
	r := resolve(n)
	switch {
	case r == nil:
		return
	case r.Kind == yaml.ScalarNode && r.ShortTag() == "!!null":
		return // "depends_on:" with nothing after it
	case r.Kind == yaml.ScalarNode:
		if s, ok := d.text(n, path); ok {
			t.DependsOn = append(t.DependsOn, s)
			tn.depNodes = append(tn.depNodes, n)
			tn.depPaths = append(tn.depPaths, path)
		}
	case r.Kind == yaml.SequenceNode:
		t.DependsOn = make([]string, 0, len(r.Content))
		for i, item := range r.Content {
			if !d.visit(item) {
				return
			}
			p := index(path, i)
			if s, ok := d.text(item, p); ok {
				t.DependsOn = append(t.DependsOn, s)
				tn.depNodes = append(tn.depNodes, item)
				tn.depPaths = append(tn.depPaths, p)
			}
		}
	default:
		d.errorf(n, path, "expected a task name or a list of task names, got %s", describe(n))
	}
}

// requiredConfig is, per task type, the config keys that must be present
// and an example to show when they are not.
var requiredConfig = map[string]struct {
	keys    []string
	example string
}{
	TypeShell: {[]string{"command"}, `config: {command: "tar -czf /tmp/backup.tgz /srv/data"}`},
	TypeSSH:   {[]string{"host", "user", "command"}, `config: {host: db.example.com, user: backup, command: "pg_dump app > /tmp/app.sql"}`},
	TypeHTTP:  {[]string{"url"}, `config: {url: "https://example.com/health"}`},
}

// taskConfig decodes `config` according to the task type. Without a known
// type the keys cannot be checked, and the type problem is already reported.
func (d *decoder) taskConfig(t *Task, f fields, path string) {
	e, ok := f.get("config")
	if t.Type == "" {
		return
	}
	if !ok {
		req := requiredConfig[t.Type]
		d.report(f.node, path, Problem{
			Msg:  fmt.Sprintf("missing config: %s %s task needs config.%s", article(t.Type), t.Type, strings.Join(req.keys, ", config.")),
			Hint: req.example,
		})
		return
	}
	p := join(path, "config")
	switch t.Type {
	case TypeShell:
		t.Shell = d.shellConfig(e.val, p)
	case TypeSSH:
		t.SSH = d.sshConfig(e.val, p)
	case TypeHTTP:
		t.HTTP = d.httpConfig(e.val, p)
	}
}

var configKeys = map[string][]string{
	TypeShell: {"command", "workdir"},
	TypeSSH:   {"host", "port", "user", "command", "identity_file", "passphrase", "known_hosts", "connect_timeout", "insecure_ignore_host_key"},
	TypeHTTP:  {"url", "method", "headers", "json", "body", "timeout", "expect_status", "outputs", "ca_file"},
}

// otherTypeHint explains a config key that belongs to another task type.
func otherTypeHint(typ string) func(string) (string, string) {
	return func(key string) (string, string) {
		for _, other := range taskTypes {
			if other != typ && isKnown(key, configKeys[other]) {
				return "", fmt.Sprintf("%q is a config key of %s tasks, and this is %s %s task", key, other, article(typ), typ)
			}
		}
		return "", ""
	}
}

// article is the indefinite article for a task type, as read aloud.
func article(typ string) string {
	if typ == TypeShell {
		return "a"
	}
	return "an" // "an ssh task", "an http task"
}

// configText decodes a required or optional non-empty config string that
// may hold references.
func (d *decoder) configText(e field, path string) (string, bool) {
	s, ok := d.text(e.val, path)
	if ok {
		ok = d.refs(e.val, path, s)
	}
	return s, ok
}

func (d *decoder) shellConfig(n *yaml.Node, path string) *executors.ShellConfig {
	f, ok := d.mapping(n, path, configKeys[TypeShell], otherTypeHint(TypeShell))
	if !ok {
		return nil
	}
	c := &executors.ShellConfig{}
	req := requiredConfig[TypeShell]
	if e, ok := d.require(f, path, "command", req.example); ok {
		c.Command, _ = d.configText(e, join(path, "command"))
	}
	if e, ok := f.get("workdir"); ok {
		c.Workdir, _ = d.configText(e, join(path, "workdir"))
	}
	return c
}
