package workflow

import (
	"bytes"
	"fmt"
	"github.com/picoflow/picoflow/engine/yamlcheck"
	"github.com/picoflow/picoflow/executors"
	"math"
	"sort"
	"unsafe"

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
	// depNames are the names in depends_on that keep could not take from
	// the file (see depPos).
	depNames []string
	rule     *yaml.Node // the valid trigger_rule of the task just decoded, else nil

	// src is the file, which the workflow keeps as Raw; lines indexes
	// the lines being decoded, for keep.
	src   []byte
	lines lineIndex
}

// lineIndex is the offset in the file of each line of a range of lines.
type lineIndex struct {
	first int     // the line of offs[0], 1-based
	offs  []int32 // offsets of lines first, first+1, ...
}

// index makes l the index of the lines of src[from:to], the first of
// which is line first.
func (l *lineIndex) index(src []byte, from, to, first int) {
	l.first, l.offs = first, append(l.offs[:0], int32(from))
	for i := from; i < to; {
		k := bytes.IndexByte(src[i:to], '\n')
		if k < 0 {
			break
		}
		i += k + 1
		l.offs = append(l.offs, int32(i))
	}
}

// keep returns s, the value of the scalar n, as a substring of the file
// where the file holds it verbatim, else s itself. The YAML parser makes a
// new string of every value; a task's command, env and dependencies kept
// this way cost no memory of their own, since the workflow keeps the file
// as Raw. Task names are never kept this way: they go into run state and
// events, which would then keep the whole file alive.
func (d *decoder) keep(n *yaml.Node, s string) string {
	if off, ok := d.kept(n, s); ok {
		return unsafe.String(&d.src[off], len(s))
	}
	return s
}

// kept returns where in the file keep finds s, the value of n.
func (d *decoder) kept(n *yaml.Node, s string) (int, bool) {
	k := n.Line - d.lines.first
	if s == "" || k < 0 || k >= len(d.lines.offs) || n.Column < 1 {
		return 0, false
	}
	off := int(d.lines.offs[k]) + n.Column - 1 // columns count runes: checked below
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		off++
	}
	if off+len(s) > len(d.src) || string(d.src[off:off+len(s)]) != s {
		return 0, false
	}
	return off, true
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
	return d.StringMap(n, path, d.envName, d.refs)
}

// envName checks the name of an environment variable.
func (d *decoder) envName(k *yaml.Node, path, name string) bool {
	if !executors.ValidEnvName(name) {
		d.Report(k, path, Problem{
			Msg:  fmt.Sprintf("invalid environment variable name %q", name),
			Hint: "use letters, digits and underscores, not starting with a digit",
		})
		return false
	}
	return true
}

// taskEnv decodes a task's env block, as env does, into an
// executors.Env; nil when it is not a mapping.
func (d *decoder) taskEnv(n *yaml.Node, path string) executors.Env {
	list, _ := d.StringFields(n, path, d.envName, d.refs)
	if list == nil {
		return nil
	}
	env := make(executors.Env, len(list))
	for i, f := range list {
		env[i] = executors.EnvVar{Name: d.keep(f.Key, f.Name), Value: d.keep(f.Val, f.Value)}
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
