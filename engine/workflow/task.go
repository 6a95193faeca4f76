package workflow

import (
	"fmt"
	"github.com/picoflow/picoflow/engine/yamlcheck"
	"github.com/picoflow/picoflow/executors"
	"math"
	"slices"
	"strings"
	"unsafe"

	"go.yaml.in/yaml/v3"
)

var taskKeys = []string{"name", "type", "depends_on", "config", "retry", "timeout", "continue_on_failure", "idempotent", "env", "user", "trigger_rule"}

var taskTypes = []string{TypeShell, TypeSSH, TypeHTTP}

// taskNode keeps what the graph checks need to point back into the YAML:
// positions only, not nodes, so that the YAML tree of a task can be dropped
// as soon as the task is decoded (see split.go), and no pointers, so that
// the GC need not scan the 100,000 of them a big DAG has.
type taskNode struct {
	at    pos   // the task's mapping (aliases resolved), for cycles
	name  pos   // of the name's value; zero when missing or invalid
	deps  int32 // its depends_on entries are decoder.deps[deps:deps+ndeps]
	ndeps int32
	item  int32 // its index in its list
	list  uint8 // 0 for tasks, else 1 + the index in HandlerLists of its list

	retrySet  bool
	timeoutOK bool // timeout given and valid
}

// path is the YAML path of the task at index i of Workflow.Tasks.
func (tn *taskNode) path(i int) string {
	if tn.list == 0 {
		return yamlcheck.Index("tasks", i)
	}
	return yamlcheck.Index(HandlerLists[tn.list-1], int(tn.item))
}

// pos is where a node starts, 1-based; zero when unknown.
type pos struct{ line, col int32 }

func posOf(n *yaml.Node) pos {
	if n == nil {
		return pos{}
	}
	return pos{int32(n.Line), int32(n.Column)}
}

// depPos is one entry of depends_on: where it is (item is its index in
// the list, -1 when depends_on is a single name) and its name, as an offset
// and length in the file where keep finds it there, else as -1-k for
// decoder.depNames[k]. 20 bytes, not 32 with a string: a 100,000-task
// chain has 100,000 of them until the graph is checked.
type depPos struct {
	pos
	item int32
	off  int32
	n    int32
}

// dep makes the depPos of the entry n of depends_on, whose name is s.
func (d *decoder) dep(n *yaml.Node, item int32, s string) depPos {
	p := depPos{pos: posOf(n), item: item}
	if off, ok := d.kept(n, s); ok && off+len(s) <= math.MaxInt32 {
		p.off, p.n = int32(off), int32(len(s))
	} else {
		p.off = -1 - int32(len(d.depNames))
		d.depNames = append(d.depNames, s)
	}
	return p
}

// depName is the name of the dependency p.
func (d *decoder) depName(p depPos) string {
	if p.off < 0 {
		return d.depNames[-1-p.off]
	}
	return unsafe.String(&d.src[p.off], int(p.n))
}

// path is the YAML path of the dependency of the task at task.
func (p depPos) path(task string) string {
	path := yamlcheck.Join(task, "depends_on")
	if p.item < 0 {
		return path
	}
	return yamlcheck.Index(path, int(p.item))
}

// task decodes one entry of `tasks` into t, zero but for its handler
// list. It always fills in t, so that the indexes of later tasks stay
// right even when this one is broken.
func (d *decoder) task(t *Task, n *yaml.Node, path string) taskNode {
	t.Idempotent, t.Line = true, int32(n.Line)
	tn := taskNode{at: posOf(yamlcheck.Resolve(n)), deps: int32(len(d.deps))}
	d.rule = nil
	f, ok := d.Mapping(n, path, taskKeys, nil)
	if !ok {
		return tn
	}
	t.Line = int32(f.Node.Line)

	d.taskName(t, &tn, f, path)
	d.taskType(t, f, path)
	if e, ok := f.Get("depends_on"); ok {
		d.dependsOn(e.Val, yamlcheck.Join(path, "depends_on"))
		tn.ndeps = int32(len(d.deps)) - tn.deps
	}
	d.taskConfig(t, f, path)
	if e, ok := f.Get("retry"); ok {
		p := yamlcheck.Join(path, "retry")
		if v, ok := d.retry(e.Val, p); ok {
			t.Retry, tn.retrySet = v, true
		}
	}
	if e, ok := f.Get("timeout"); ok {
		if v, ok := d.timeout(e.Val, yamlcheck.Join(path, "timeout")); ok {
			t.Timeout, tn.timeoutOK = v, true
		}
	}
	if e, ok := f.Get("continue_on_failure"); ok {
		t.ContinueOnFailure, _ = d.Boolean(e.Val, yamlcheck.Join(path, "continue_on_failure"))
	}
	if e, ok := f.Get("trigger_rule"); ok {
		if d.triggerRule(t, e, yamlcheck.Join(path, "trigger_rule")) {
			d.rule = e.Val
		}
	}
	if e, ok := f.Get("idempotent"); ok {
		if v, ok := d.Boolean(e.Val, yamlcheck.Join(path, "idempotent")); ok {
			t.Idempotent = v
		}
	}
	if e, ok := f.Get("env"); ok {
		t.Env = d.taskEnv(e.Val, yamlcheck.Join(path, "env"))
	}
	if e, ok := f.Get("user"); ok {
		p := yamlcheck.Join(path, "user")
		if s, ok := d.Text(e.Val, p); ok {
			switch t.Type() {
			case TypeSSH:
				d.Report(e.Key, p, Problem{
					Msg:  "user applies to shell tasks only",
					Hint: "the remote login user of an ssh task is config.user",
				})
			case TypeHTTP:
				d.Errorf(e.Key, p, "user applies to shell tasks only")
			default:
				t.User = d.keep(e.Val, s)
			}
		}
	}
	return tn
}

// taskName decodes a task's required name.
func (d *decoder) taskName(t *Task, tn *taskNode, f yamlcheck.Fields, path string) {
	if e, ok := d.Require(f, path, "name", "name: dump"); ok {
		p := yamlcheck.Join(path, "name")
		if s, ok := d.Str(e.Val, p); ok {
			if len(s) > MaxNameLen {
				d.Report(e.Val, p, nameTooLong("task", s))
			} else if validName(s, true) {
				t.Name, tn.name = s, posOf(e.Val)
			} else {
				d.Report(e.Val, p, Problem{
					Msg:  fmt.Sprintf("invalid task name %q", s),
					Hint: "use letters, digits, '_' and '-'",
				})
			}
		}
	}
}

// taskType decodes a task's required type.
func (d *decoder) taskType(t *Task, f yamlcheck.Fields, path string) {
	if e, ok := d.Require(f, path, "type", "type: shell (or ssh, http)"); ok {
		p := yamlcheck.Join(path, "type")
		if s, ok := d.Str(e.Val, p); ok {
			if k := slices.Index(taskTypes, s); k >= 0 {
				t.kind = uint8(k + 1)
			} else {
				pr := Problem{Msg: fmt.Sprintf("unknown task type %q", s), Suggest: yamlcheck.Suggest(s, taskTypes)}
				if pr.Suggest == "" {
					pr.Hint = "use shell, ssh or http"
				}
				d.Report(e.Val, p, pr)
			}
		}
	}
}

// dependsOn decodes `depends_on`, a list of task names or a single name,
// into d.deps. Whether the names exist is checked later, once all tasks
// are known.
func (d *decoder) dependsOn(n *yaml.Node, path string) {
	r := yamlcheck.Resolve(n)
	switch {
	case r == nil:
		return
	case r.Kind == yaml.ScalarNode && r.ShortTag() == "!!null":
		return // "depends_on:" with nothing after it
	case r.Kind == yaml.ScalarNode:
		if s, ok := d.Text(n, path); ok {
			d.deps = append(d.deps, d.dep(n, -1, s))
		}
	case r.Kind == yaml.SequenceNode:
		for i, item := range r.Content {
			if !d.Visit(item) {
				return
			}
			p := yamlcheck.Index(path, i)
			if s, ok := d.Text(item, p); ok {
				d.deps = append(d.deps, d.dep(item, int32(i), s))
			}
		}
	default:
		d.Errorf(n, path, "expected a task name or a list of task names, got %s", yamlcheck.Describe(n))
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
func (d *decoder) taskConfig(t *Task, f yamlcheck.Fields, path string) {
	e, ok := f.Get("config")
	typ := t.Type()
	if typ == "" {
		return
	}
	if !ok {
		req := requiredConfig[typ]
		d.Report(f.Node, path, Problem{
			Msg:  fmt.Sprintf("missing config: %s %s task needs config.%s", article(typ), typ, strings.Join(req.keys, ", config.")),
			Hint: req.example,
		})
		return
	}
	p := yamlcheck.Join(path, "config")
	switch typ {
	case TypeShell:
		t.Shell = d.shellConfig(e.Val, p)
	case TypeSSH:
		t.SSH = d.sshConfig(e.Val, p)
	case TypeHTTP:
		t.HTTP = d.httpConfig(e.Val, p)
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
			if other != typ && yamlcheck.IsKnown(key, configKeys[other]) {
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
func (d *decoder) configText(e yamlcheck.Field, path string) (string, bool) {
	s, ok := d.Text(e.Val, path)
	if ok {
		ok = d.refs(e.Val, path, s)
	}
	return d.keep(e.Val, s), ok
}

func (d *decoder) shellConfig(n *yaml.Node, path string) *executors.ShellConfig {
	f, ok := d.Mapping(n, path, configKeys[TypeShell], otherTypeHint(TypeShell))
	if !ok {
		return nil
	}
	c := &executors.ShellConfig{}
	req := requiredConfig[TypeShell]
	if e, ok := d.Require(f, path, "command", req.example); ok {
		p := yamlcheck.Join(path, "command")
		c.Command, _ = d.configText(e, p)
		if len(c.Command) > executors.MaxShellCommand {
			d.Report(e.Val, p, Problem{
				Msg:  fmt.Sprintf("command is %d bytes; the most Linux passes to a shell is %d", len(c.Command), executors.MaxShellCommand),
				Hint: "put the script in a file and run that file",
			})
		}
		d.noNUL(e.Val, p, c.Command)
	}
	if e, ok := f.Get("workdir"); ok {
		p := yamlcheck.Join(path, "workdir")
		c.Workdir, _ = d.configText(e, p)
		d.noNUL(e.Val, p, c.Workdir)
	}
	return c
}

// noNUL reports a NUL byte in s, which no process can be given.
func (d *decoder) noNUL(n *yaml.Node, path, s string) {
	if i := strings.IndexByte(s, 0); i >= 0 {
		d.Report(n, path, Problem{
			Msg:  fmt.Sprintf("holds a NUL byte (at byte %d), which a command line cannot carry", i),
			Hint: `remove the "\0"`,
		})
	}
}
