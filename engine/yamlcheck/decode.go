package yamlcheck

import (
	"cmp"
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Decoder walks a yaml.Node tree and records every problem it meets instead
// of stopping at the first. Each helper reports its own problems and returns
// ok=false when the value is unusable, so callers only decide what to do
// with a good value.
type Decoder struct {
	File  string
	Probs Problems

	// Budget bounds the nodes visited, counting every alias expansion, so
	// that a small file of nested aliases ("billion laughs") cannot make
	// the loader do exponential work.
	Budget    int
	exhausted bool

	mergeDepth int // nesting of merge keys; bounded because anchors may be recursive
}

const maxMergeDepth = 8

// NewDecoder returns a Decoder for the file's data, with a node budget
// proportional to its size.
func NewDecoder(file string, data []byte) Decoder {
	return Decoder{File: file, Budget: 10_000 + 16*len(data)}
}

// Field is one key/value pair of a mapping.
type Field struct {
	Key, Val *yaml.Node
	Name     string
}

// Fields is the entries of a mapping with known keys, looked up by name.
// Workflow mappings have a handful of keys, so a linear scan beats a map.
type Fields struct {
	Node      *yaml.Node // the mapping itself, for "missing key" problems
	List      []Field
	Suggested []string // known keys offered for unknown ones ("comand")
}

func (f Fields) Get(name string) (Field, bool) {
	for _, e := range f.List {
		if e.Name == name {
			return e, true
		}
	}
	return Field{}, false
}

// Report records p at node n (nil: no position) and YAML path.
func (d *Decoder) Report(n *yaml.Node, path string, p Problem) {
	p.File, p.Path = d.File, path
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	d.Probs = append(d.Probs, p)
}

// Errorf reports a problem with just a message.
func (d *Decoder) Errorf(n *yaml.Node, path, format string, args ...any) {
	d.Report(n, path, Problem{Msg: fmt.Sprintf(format, args...)})
}

// visit charges one node against the budget and reports false once it is
// spent.
func (d *Decoder) Visit(n *yaml.Node) bool {
	d.Budget--
	if d.Budget >= 0 {
		return true
	}
	if !d.exhausted {
		d.exhausted = true
		d.Report(n, "", Problem{Msg: "document too complex: too many nodes after expanding aliases"})
	}
	return false
}

// resolve follows an alias to the node it names.
func Resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 8; i++ {
		n = n.Alias
	}
	return n
}

// Join appends a key to a YAML path ("a.b").
func Join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Index appends a list index to a YAML path ("a[3]").
func Index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// describe names the kind of a node for "expected X, got Y" messages.
func Describe(n *yaml.Node) string {
	n = Resolve(n)
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

// IsMerge reports whether k is a merge key ("<<").
func IsMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge"
}

// entries returns the key/value pairs of the mapping n, with YAML merge
// keys ("<<: *defaults") expanded: explicit keys win over merged ones, and
// earlier merged mappings over later ones. Duplicate and non-scalar keys are
// reported and dropped.
func (d *Decoder) Entries(n *yaml.Node, path string) ([]Field, bool) {
	n = Resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		d.Errorf(n, path, "expected a mapping, got %s", Describe(n))
		return nil, false
	}
	list := make([]Field, 0, len(n.Content)/2)
	var merges []*yaml.Node
	var seen map[string]int // index into list; only built for big mappings
	find := func(name string) (int, bool) {
		if seen != nil {
			i, ok := seen[name]
			return i, ok
		}
		for i, e := range list {
			if e.Name == name {
				return i, true
			}
		}
		return 0, false
	}
	add := func(f Field) {
		list = append(list, f)
		if seen == nil && len(list) > 16 {
			seen = make(map[string]int, len(n.Content)/2)
			for i, e := range list {
				seen[e.Name] = i
			}
		} else if seen != nil {
			seen[f.Name] = len(list) - 1
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !d.Visit(k) {
			return list, false
		}
		if IsMerge(k) {
			merges = append(merges, v)
			continue
		}
		rk := Resolve(k)
		if rk == nil || rk.Kind != yaml.ScalarNode {
			d.Errorf(k, path, "mapping keys must be strings, got %s", Describe(k))
			continue
		}
		if j, dup := find(rk.Value); dup {
			d.Report(k, Join(path, rk.Value), Problem{
				Msg: fmt.Sprintf("duplicate key %q (first defined at line %d)", rk.Value, list[j].Key.Line),
			})
			continue
		}
		add(Field{Key: k, Val: v, Name: rk.Value})
	}
	for _, m := range merges {
		d.merge(m, path, func(f Field) {
			if _, dup := find(f.Name); !dup {
				add(f)
			}
		})
	}
	return list, true
}

// merge feeds the entries of a merge-key value (a mapping or a list of
// mappings) to add, in precedence order.
func (d *Decoder) merge(v *yaml.Node, path string, add func(Field)) {
	if d.mergeDepth >= maxMergeDepth {
		d.Errorf(v, Join(path, "<<"), "merge keys nested too deeply")
		return
	}
	d.mergeDepth++
	defer func() { d.mergeDepth-- }()
	rv := Resolve(v)
	if rv != nil && rv.Kind == yaml.SequenceNode {
		for _, item := range rv.Content {
			ri := Resolve(item)
			if ri == nil || ri.Kind != yaml.MappingNode {
				d.Errorf(item, Join(path, "<<"), "merge key needs a mapping or a list of mappings, got %s", Describe(item))
				continue
			}
			d.merge(item, path, add)
		}
		return
	}
	if rv == nil || rv.Kind != yaml.MappingNode {
		d.Errorf(v, Join(path, "<<"), "merge key needs a mapping or a list of mappings, got %s", Describe(v))
		return
	}
	list, _ := d.Entries(rv, path)
	for _, f := range list {
		add(f)
	}
}

// mapping decodes a mapping whose keys must all be in known, reporting
// unknown keys with the closest known one. other, if not nil, may replace
// the message or give a hint for a key that belongs somewhere else.
func (d *Decoder) Mapping(n *yaml.Node, path string, known []string, other func(key string) (msg, hint string)) (Fields, bool) {
	list, ok := d.Entries(n, path)
	if !ok {
		return Fields{}, false
	}
	out := Fields{Node: Resolve(n), List: list[:0]}
	for _, f := range list {
		if IsKnown(f.Name, known) {
			out.List = append(out.List, f)
			continue
		}
		p := Problem{Msg: fmt.Sprintf("unknown key %q", f.Name)}
		if other != nil {
			if msg, hint := other(f.Name); msg != "" || hint != "" {
				p.Msg, p.Hint = cmp.Or(msg, p.Msg), hint
				d.Report(f.Key, Join(path, f.Name), p)
				continue
			}
		}
		if p.Hint == "" {
			p.Suggest = Suggest(f.Name, known)
			if p.Suggest != "" {
				out.Suggested = append(out.Suggested, p.Suggest)
			}
		}
		if p.Suggest == "" && p.Hint == "" {
			p.Hint = "known keys: " + strings.Join(known, ", ")
		}
		d.Report(f.Key, Join(path, f.Name), p)
	}
	return out, true
}

// IsKnown reports whether name is one of known.
func IsKnown(name string, known []string) bool {
	for _, k := range known {
		if k == name {
			return true
		}
	}
	return false
}

// require reports a missing required key of the mapping f, unless an
// unknown key was already reported as a likely misspelling of it.
func (d *Decoder) Require(f Fields, path, key, hint string) (Field, bool) {
	e, ok := f.Get(key)
	if !ok && !IsKnown(key, f.Suggested) {
		d.Report(f.Node, path, Problem{Msg: fmt.Sprintf("missing required key %q", key), Hint: hint})
	}
	return e, ok
}

// scalar returns the text of a non-null scalar.
func (d *Decoder) Scalar(n *yaml.Node, path, want string) (*yaml.Node, bool) {
	r := Resolve(n)
	if r == nil || r.Kind != yaml.ScalarNode || r.ShortTag() == "!!null" {
		d.Errorf(n, path, "expected %s, got %s", want, Describe(n))
		return nil, false
	}
	return r, true
}

// str decodes a string. Numbers and booleans are taken as their text, so
// `user: 1000` works; mappings, lists and empty values are errors.
func (d *Decoder) Str(n *yaml.Node, path string) (string, bool) {
	r, ok := d.Scalar(n, path, "a string")
	if !ok {
		return "", false
	}
	return r.Value, true
}

// text decodes a string that must not be blank.
func (d *Decoder) Text(n *yaml.Node, path string) (string, bool) {
	s, ok := d.Str(n, path)
	if ok && strings.TrimSpace(s) == "" {
		d.Errorf(n, path, "must not be empty")
		return "", false
	}
	return s, ok
}

// integer decodes a YAML integer; quoted numbers are strings, not integers.
func (d *Decoder) Integer(n *yaml.Node, path string) (int, bool) {
	r := Resolve(n)
	if r == nil || r.Kind != yaml.ScalarNode || r.ShortTag() != "!!int" {
		d.Errorf(n, path, "expected an integer, got %s", Describe(n))
		return 0, false
	}
	var v int
	if err := r.Decode(&v); err != nil {
		d.Errorf(n, path, "integer %s out of range", r.Value)
		return 0, false
	}
	return v, true
}

// Boolean decodes true or false.
func (d *Decoder) Boolean(n *yaml.Node, path string) (bool, bool) {
	r := Resolve(n)
	if r == nil || r.Kind != yaml.ScalarNode || r.ShortTag() != "!!bool" {
		d.Errorf(n, path, "expected true or false, got %s", Describe(n))
		return false, false
	}
	var v bool
	if err := r.Decode(&v); err != nil {
		d.Errorf(n, path, "expected true or false, got %s", Describe(n))
		return false, false
	}
	return v, true
}

// number decodes an integer or a float; NaN and infinities are rejected.
func (d *Decoder) Number(n *yaml.Node, path string) (float64, bool) {
	r := Resolve(n)
	if r == nil || r.Kind != yaml.ScalarNode || (r.ShortTag() != "!!int" && r.ShortTag() != "!!float") {
		d.Errorf(n, path, "expected a number, got %s", Describe(n))
		return 0, false
	}
	var v float64
	if err := r.Decode(&v); err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		d.Errorf(n, path, "expected a finite number, got %s", Describe(n))
		return 0, false
	}
	return v, true
}

// StringMap decodes a mapping of names to scalars, each name checked by
// checkKey (nil accepts any), each value by value (nil accepts any).
func (d *Decoder) StringMap(n *yaml.Node, path string, checkKey func(k *yaml.Node, path, name string) bool, value func(v *yaml.Node, path, s string) bool) (map[string]string, bool) {
	list, ok := d.StringFields(n, path, checkKey, value)
	if list == nil {
		return nil, false
	}
	out := make(map[string]string, len(list))
	for _, f := range list {
		out[f.Name] = f.Value
	}
	return out, ok
}

// StringField is an entry of a mapping of names to strings.
type StringField struct {
	Field
	Value string
}

// StringFields is StringMap as the list of the valid entries, in the order
// of Entries, with their nodes; nil when n is not a mapping.
func (d *Decoder) StringFields(n *yaml.Node, path string, checkKey func(k *yaml.Node, path, name string) bool, value func(v *yaml.Node, path, s string) bool) ([]StringField, bool) {
	list, ok := d.Entries(n, path)
	if !ok {
		return nil, false
	}
	out := make([]StringField, 0, len(list))
	for _, f := range list {
		p := Join(path, f.Name)
		if checkKey != nil && !checkKey(f.Key, p, f.Name) {
			ok = false
			continue
		}
		r := Resolve(f.Val)
		if r != nil && r.Kind == yaml.ScalarNode && r.ShortTag() == "!!null" {
			d.Report(f.Val, p, Problem{Msg: "missing value", Hint: `write "" for an empty string`})
			ok = false
			continue
		}
		s, vok := d.Str(f.Val, p)
		if vok && value != nil {
			vok = value(f.Val, p, s)
		}
		if !vok {
			ok = false
			continue
		}
		out = append(out, StringField{f, s})
	}
	return out, ok
}
