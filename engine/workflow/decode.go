package workflow

import (
	"cmp"
	"fmt"
	"github.com/picoflow/picoflow/executors"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decoder walks a yaml.Node tree and records every problem it meets instead
// of stopping at the first. Each helper reports its own problems and returns
// ok=false when the value is unusable, so callers only decide what to do
// with a good value.
type decoder struct {
	file  string
	probs Problems
	base  Config // what the workflow's config: block is decoded over

	// budget bounds the nodes visited, counting every alias expansion, so
	// that a small file of nested aliases ("billion laughs") cannot make
	// the loader do exponential work.
	budget    int
	exhausted bool

	mergeDepth int // nesting of merge keys; bounded because anchors may be recursive
}

const maxMergeDepth = 8

// field is one key/value pair of a mapping.
type field struct {
	key, val *yaml.Node
	name     string
}

// fields is the entries of a mapping with known keys, looked up by name.
// Workflow mappings have a handful of keys, so a linear scan beats a map.
type fields struct {
	node      *yaml.Node // the mapping itself, for "missing key" problems
	list      []field
	suggested []string // known keys offered for unknown ones ("comand")
}

func (f fields) get(name string) (field, bool) {
	for _, e := range f.list {
		if e.name == name {
			return e, true
		}
	}
	return field{}, false
}

func (d *decoder) report(n *yaml.Node, path string, p Problem) {
	p.File, p.Path = d.file, path
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	d.probs = append(d.probs, p)
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.report(n, path, Problem{Msg: fmt.Sprintf(format, args...)})
}

// visit charges one node against the budget and reports false once it is
// spent.
func (d *decoder) visit(n *yaml.Node) bool {
	d.budget--
	if d.budget >= 0 {
		return true
	}
	if !d.exhausted {
		d.exhausted = true
		d.report(n, "", Problem{Msg: "document too complex: too many nodes after expanding aliases"})
	}
	return false
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 8; i++ {
		n = n.Alias
	}
	return n
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// describe names the kind of a node for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	n = resolve(n)
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.DocumentNode:
		return "a document"
	case yaml.ScalarNode:
	default:
		return "an alias"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:37] + "..."
	}
	switch n.ShortTag() {
	case "!!null":
		return "an empty value"
	case "!!str":
		return "string " + strconv.Quote(v)
	case "!!int":
		return "integer " + v
	case "!!float":
		return "number " + v
	case "!!bool":
		return "boolean " + v
	case "!!timestamp":
		return "timestamp " + v
	default:
		return n.ShortTag() + " value " + strconv.Quote(v)
	}
}

func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge"
}

// entries returns the key/value pairs of the mapping n, with YAML merge
// keys ("<<: *defaults") expanded: explicit keys win over merged ones, and
// earlier merged mappings over later ones. Duplicate and non-scalar keys are
// reported and dropped.
func (d *decoder) entries(n *yaml.Node, path string) ([]field, bool) {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", describe(n))
		return nil, false
	}
	list := make([]field, 0, len(n.Content)/2)
	var merges []*yaml.Node
	var seen map[string]int // index into list; only built for big mappings
	find := func(name string) (int, bool) {
		if seen != nil {
			i, ok := seen[name]
			return i, ok
		}
		for i, e := range list {
			if e.name == name {
				return i, true
			}
		}
		return 0, false
	}
	add := func(f field) {
		list = append(list, f)
		if seen == nil && len(list) > 16 {
			seen = make(map[string]int, len(n.Content)/2)
			for i, e := range list {
				seen[e.name] = i
			}
		} else if seen != nil {
			seen[f.name] = len(list) - 1
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !d.visit(k) {
			return list, false
		}
		if isMerge(k) {
			merges = append(merges, v)
			continue
		}
		rk := resolve(k)
		if rk == nil || rk.Kind != yaml.ScalarNode {
			d.errorf(k, path, "mapping keys must be strings, got %s", describe(k))
			continue
		}
		if j, dup := find(rk.Value); dup {
			d.report(k, join(path, rk.Value), Problem{
				Msg: fmt.Sprintf("duplicate key %q (first defined at line %d)", rk.Value, list[j].key.Line),
			})
			continue
		}
		add(field{key: k, val: v, name: rk.Value})
	}
	for _, m := range merges {
		d.merge(m, path, func(f field) {
			if _, dup := find(f.name); !dup {
				add(f)
			}
		})
	}
	return list, true
}

// merge feeds the entries of a merge-key value (a mapping or a list of
// mappings) to add, in precedence order.
func (d *decoder) merge(v *yaml.Node, path string, add func(field)) {
	if d.mergeDepth >= maxMergeDepth {
		d.errorf(v, join(path, "<<"), "merge keys nested too deeply")
		return
	}
	d.mergeDepth++
	defer func() { d.mergeDepth-- }()
	rv := resolve(v)
	if rv != nil && rv.Kind == yaml.SequenceNode {
		for _, item := range rv.Content {
			ri := resolve(item)
			if ri == nil || ri.Kind != yaml.MappingNode {
				d.errorf(item, join(path, "<<"), "merge key needs a mapping or a list of mappings, got %s", describe(item))
				continue
			}
			d.merge(item, path, add)
		}
		return
	}
	if rv == nil || rv.Kind != yaml.MappingNode {
		d.errorf(v, join(path, "<<"), "merge key needs a mapping or a list of mappings, got %s", describe(v))
		return
	}
	list, _ := d.entries(rv, path)
	for _, f := range list {
		add(f)
	}
}

// mapping decodes a mapping whose keys must all be in known, reporting
// unknown keys with the closest known one. other, if not nil, may replace
// the message or give a hint for a key that belongs somewhere else.
func (d *decoder) mapping(n *yaml.Node, path string, known []string, other func(key string) (msg, hint string)) (fields, bool) {
	list, ok := d.entries(n, path)
	if !ok {
		return fields{}, false
	}
	out := fields{node: resolve(n), list: list[:0]}
	for _, f := range list {
		if isKnown(f.name, known) {
			out.list = append(out.list, f)
			continue
		}
		p := Problem{Msg: fmt.Sprintf("unknown key %q", f.name)}
		if other != nil {
			if msg, hint := other(f.name); msg != "" || hint != "" {
				p.Msg, p.Hint = cmp.Or(msg, p.Msg), hint
				d.report(f.key, join(path, f.name), p)
				continue
			}
		}
		if p.Hint == "" {
			p.Suggest = suggest(f.name, known)
			if p.Suggest != "" {
				out.suggested = append(out.suggested, p.Suggest)
			}
		}
		if p.Suggest == "" && p.Hint == "" {
			p.Hint = "known keys: " + strings.Join(known, ", ")
		}
		d.report(f.key, join(path, f.name), p)
	}
	return out, true
}

func isKnown(name string, known []string) bool {
	for _, k := range known {
		if k == name {
			return true
		}
	}
	return false
}

// require reports a missing required key of the mapping f, unless an
// unknown key was already reported as a likely misspelling of it.
func (d *decoder) require(f fields, path, key, hint string) (field, bool) {
	e, ok := f.get(key)
	if !ok && !isKnown(key, f.suggested) {
		d.report(f.node, path, Problem{Msg: fmt.Sprintf("missing required key %q", key), Hint: hint})
	}
	return e, ok
}

// scalar returns the text of a non-null scalar.
func (d *decoder) scalar(n *yaml.Node, path, want string) (*yaml.Node, bool) {
	r := resolve(n)
	if r == nil || r.Kind != yaml.ScalarNode || r.ShortTag() == "!!null" {
		d.errorf(n, path, "expected %s, got %s", want, describe(n))
		return nil, false
	}
	return r, true
}

// str decodes a string. Numbers and booleans are taken as their text, so
// `user: 1000` works; mappings, lists and empty values are errors.
func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	r, ok := d.scalar(n, path, "a string")
	if !ok {
		return "", false
	}
	return r.Value, true
}

// text decodes a string that must not be blank.
func (d *decoder) text(n *yaml.Node, path string) (string, bool) {
	s, ok := d.str(n, path)
	if ok && strings.TrimSpace(s) == "" {
		d.errorf(n, path, "must not be empty")
		return "", false
	}
	return s, ok
}

// integer decodes a YAML integer; quoted numbers are strings, not integers.
func (d *decoder) integer(n *yaml.Node, path string) (int, bool) {
	r := resolve(n)
	if r == nil || r.Kind != yaml.ScalarNode || r.ShortTag() != "!!int" {
		d.errorf(n, path, "expected an integer, got %s", describe(n))
		return 0, false
	}
	var v int
	if err := r.Decode(&v); err != nil {
		d.errorf(n, path, "integer %s out of range", r.Value)
		return 0, false
	}
	return v, true
}

func (d *decoder) boolean(n *yaml.Node, path string) (bool, bool) {
	r := resolve(n)
	if r == nil || r.Kind != yaml.ScalarNode || r.ShortTag() != "!!bool" {
		d.errorf(n, path, "expected true or false, got %s", describe(n))
		return false, false
	}
	var v bool
	if err := r.Decode(&v); err != nil {
		d.errorf(n, path, "expected true or false, got %s", describe(n))
		return false, false
	}
	return v, true
}

// number decodes an integer or a float; NaN and infinities are rejected.
func (d *decoder) number(n *yaml.Node, path string) (float64, bool) {
	r := resolve(n)
	if r == nil || r.Kind != yaml.ScalarNode || (r.ShortTag() != "!!int" && r.ShortTag() != "!!float") {
		d.errorf(n, path, "expected a number, got %s", describe(n))
		return 0, false
	}
	var v float64
	if err := r.Decode(&v); err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		d.errorf(n, path, "expected a finite number, got %s", describe(n))
		return 0, false
	}
	return v, true
}

// stringMap decodes a mapping of names to scalars, each name checked by
// checkKey (nil accepts any), each value by value (nil accepts any).
func (d *decoder) stringMap(n *yaml.Node, path string, checkKey func(k *yaml.Node, path, name string) bool, value func(v *yaml.Node, path, s string) bool) (map[string]string, bool) {
	list, ok := d.entries(n, path)
	if !ok {
		return nil, false
	}
	out := make(map[string]string, len(list))
	for _, f := range list {
		p := join(path, f.name)
		if checkKey != nil && !checkKey(f.key, p, f.name) {
			ok = false
			continue
		}
		r := resolve(f.val)
		if r != nil && r.Kind == yaml.ScalarNode && r.ShortTag() == "!!null" {
			d.report(f.val, p, Problem{Msg: "missing value", Hint: `write "" for an empty string`})
			ok = false
			continue
		}
		s, vok := d.str(f.val, p)
		if vok && value != nil {
			vok = value(f.val, p, s)
		}
		if !vok {
			ok = false
			continue
		}
		out[f.name] = s
	}
	return out, ok
}

// env decodes an environment block: names must be valid variable names,
// values scalars, which may hold ${secret:..} and ${env:..} references.
func (d *decoder) env(n *yaml.Node, path string) (map[string]string, bool) {
	return d.stringMap(n, path, func(k *yaml.Node, p, name string) bool {
		if !executors.ValidEnvName(name) {
			d.report(k, p, Problem{
				Msg:  fmt.Sprintf("invalid environment variable name %q", name),
				Hint: "use letters, digits and underscores, not starting with a digit",
			})
			return false
		}
		return true
	}, d.refs)
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
