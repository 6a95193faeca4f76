package workflow

import (
	"fmt"
	"github.com/picoflow/picoflow/engine/yamlcheck"
	"github.com/picoflow/picoflow/executors"
	"math"
	"sort"

	"go.yaml.in/yaml/v3"
)

// decoder is the validation layer's Decoder (engine/yamlcheck: problems,
// node helpers, the alias budget, merge keys) with what a workflow adds:
// the config it decodes the workflow's config: block over.
type decoder struct {
	yamlcheck.Decoder
	base Config // what the workflow's config: block is decoded over

	split *split   // set when the tasks are decoded a group at a time (split.go)
	deps  []depPos // of every task's depends_on, in order: see taskNode

	interned map[string]string // see intern
}

// internMax bounds the strings intern keeps: enough for the commands,
// users and env names a file repeats, and no map as big as the file when
// every string is different.
const internMax = 512

// intern returns s, or an earlier string equal to it, so that the tasks
// of a generated file that all run the same command, or set the same env
// names, share one copy: the YAML parser makes a new string for every
// value.
func (d *decoder) intern(s string) string {
	if v, ok := d.interned[s]; ok {
		return v
	}
	if d.interned == nil {
		d.interned = make(map[string]string)
	}
	if len(d.interned) < internMax && len(s) <= 256 {
		d.interned[s] = s
	}
	return s
}

// retry decodes a retry count: 0 or more, and at most math.MaxInt32 (a
// task keeps it in 32 bits).
func (d *decoder) retry(n *yaml.Node, path string) (int32, bool) {
	v, ok := d.Integer(n, path)
	switch {
	case !ok:
		return 0, false
	case v < 0:
		d.Errorf(n, path, "negative retry %d: retry counts the attempts after the first and must be 0 or more", v)
		return 0, false
	case v > math.MaxInt32:
		d.Errorf(n, path, "retry %d is too large: at most %d", v, math.MaxInt32)
		return 0, false
	}
	return int32(v), true
}

// reportAt is Report at a position kept from a node already dropped.
func (d *decoder) reportAt(at pos, path string, p Problem) {
	p.File, p.Path = d.File, path
	p.Line, p.Column = int(at.line), int(at.col)
	d.Probs = append(d.Probs, p)
}

func (d *decoder) errorAt(at pos, path, format string, args ...any) {
	d.reportAt(at, path, Problem{Msg: fmt.Sprintf(format, args...)})
}

// env decodes an environment block: names must be valid variable names,
// values scalars, which may hold ${secret:..} and ${env:..} references.
func (d *decoder) env(n *yaml.Node, path string) (map[string]string, bool) {
	return d.StringMap(n, path, func(k *yaml.Node, p, name string) bool {
		if !executors.ValidEnvName(name) {
			d.Report(k, p, Problem{
				Msg:  fmt.Sprintf("invalid environment variable name %q", name),
				Hint: "use letters, digits and underscores, not starting with a digit",
			})
			return false
		}
		return true
	}, d.refs)
}

// taskEnv turns a task's env block into an executors.Env, its names
// interned: nil stays nil.
func (d *decoder) taskEnv(m map[string]string) executors.Env {
	if m == nil {
		return nil
	}
	env := make(executors.Env, 0, len(m))
	for k, v := range m {
		env = append(env, executors.EnvVar{Name: d.intern(k), Value: v})
	}
	sort.Slice(env, func(i, j int) bool { return env[i].Name < env[j].Name })
	return env
}

// MaxNameLen bounds workflow and task names, in bytes. PicoFlow names
// files and directories after them (HOME/logs/WORKFLOW/RUN/TASK.ATTEMPT.log,
// a lock file per workflow), and most file systems hold at most 255 bytes
// per name: 200 leaves room for the suffixes.
const MaxNameLen = 200

// nameTooLong is the problem of a name over MaxNameLen.
func nameTooLong(what, s string) Problem {
	return Problem{
		Msg:  fmt.Sprintf("%s name is %d bytes long, more than %d (%.20s...)", what, len(s), MaxNameLen, s),
		Hint: "picoflow names files after it: shorten it",
	}
}

// validName reports whether s is non-empty and every byte is a lowercase
// letter, a digit, '_' or '-' (upper case letters too when upper is set).
func validName(s string, upper bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || upper && c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
