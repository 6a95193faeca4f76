package workflow

import (
	"bytes"
	"math"

	"github.com/picoflow/picoflow/engine/yamlcheck"
	"go.yaml.in/yaml/v3"
)

// A workflow file is decoded in one of two ways that give the same result.
//
// The whole way parses the file into one YAML node tree and decodes it. The
// tree costs about 1.5 KiB per task, all of it alive until the last task is
// decoded, which is most of the memory a big DAG takes to load.
//
// The split way, tried first, decodes the tasks one at a time. A prescan
// (scanTasks) finds a top-level "tasks:" key written in block style and
// the byte range of each of its items. The rest of the file, with the
// items' lines left empty so every other line keeps its number, is parsed
// and decoded as usual; when the decoder reaches the tasks it parses each
// item on its own, moves the item's nodes to their line in the file,
// decodes the task and drops the tree. Columns need no fix: an item is
// parsed from its own lines, indentation included.
//
// The split way gives up, and the whole way runs instead, on anything it
// cannot be sure to decode exactly as the whole way would: line breaks
// other than "\n" and "\r\n", document markers and directives, a "tasks:" with its value on the same line (flow
// style, anchors, tags), tabs or odd indentation at the item boundaries,
// any YAML error in the rest of the file or in an item (so syntax errors
// are always reported by the whole parse), an item that does not parse as
// one list entry, and aliases between items (an alias to an anchor outside
// its item is an error of the item's own parse). Problems found by
// decoding (unknown keys, bad values, the graph) are the split way's own,
// at the same lines and columns; TestSplitMatchesWhole and FuzzParse check
// that the two ways agree.

// split is the layout scanTasks found.
type split struct {
	data      []byte
	items     []int32 // offset of each item's first line, then the end of the list
	lines     []int32 // 1-based line of each item's first line
	col       int     // the items' indentation, in spaces
	tasksLine int     // 1-based line of the "tasks:" key
	used      bool    // the decoder took the tasks from the items
	failed    bool    // something did not match: use the whole way
}

// scanTasks finds the items of a block-style top-level task list, or
// returns nil when the file is not laid out that way.
func scanTasks(data []byte) *split {
	if len(data) >= math.MaxInt32 || oddBreaks(data) {
		return nil
	}
	s := &split{data: data, col: -1}
	const before, in, after = 0, 1, 2
	state := before
	for off, line := 0, 1; off < len(data); line++ {
		next := len(data)
		if i := bytes.IndexByte(data[off:], '\n'); i >= 0 {
			next = off + i + 1
		}
		l := bytes.TrimRight(data[off:next], "\r\n")
		indent := len(l) - len(bytes.TrimLeft(l, " "))
		rest := l[indent:]
		if indent == 0 && (bytes.HasPrefix(l, []byte("---")) || bytes.HasPrefix(l, []byte("...")) || bytes.HasPrefix(l, []byte("%"))) {
			return nil // document markers and directives
		}
		blank := len(bytes.TrimLeft(rest, " \t")) == 0 || rest[0] == '#'
		switch {
		case state == before:
			if isTasksKey(l) {
				state, s.tasksLine = in, line
			}
		case state == in && blank:
		case state == in:
			if rest[0] == '\t' && indent <= max(s.col, 0) {
				return nil
			}
			if s.col < 0 { // the first item sets the indentation
				if !isItem(rest) {
					return nil
				}
				s.col = indent
			}
			switch {
			case indent == s.col && isItem(rest):
				s.items = append(s.items, int32(off))
				s.lines = append(s.lines, int32(line))
			case indent > s.col:
			case indent == 0 && rest[0] != '-' && !isTasksKey(l):
				state = after // the next top-level key
				s.items = append(s.items, int32(off))
			default:
				return nil
			}
		case state == after && isTasksKey(l):
			return nil // a duplicate: the whole way reports it
		}
		off = next
	}
	switch {
	case state == before || len(s.lines) == 0:
		return nil
	case state == in:
		s.items = append(s.items, int32(len(data)))
	}
	return s
}

// oddBreaks reports whether data has a line break other than "\n" and
// "\r\n": the YAML parser also breaks lines at a lone "\r" and at NEL,
// LS and PS, where the prescan would count lines differently.
func oddBreaks(data []byte) bool {
	for i := 0; ; i++ {
		j := bytes.IndexByte(data[i:], '\r')
		if j < 0 {
			break
		}
		i += j
		if i+1 == len(data) || data[i+1] != '\n' {
			return true
		}
	}
	for _, b := range []string{"\u0085", "\u2028", "\u2029"} {
		if bytes.Contains(data, []byte(b)) {
			return true
		}
	}
	return false
}

// isTasksKey reports whether a line is "tasks:" with nothing after it
// but a comment.
func isTasksKey(l []byte) bool {
	rest, ok := bytes.CutPrefix(l, []byte("tasks:"))
	if !ok {
		return false
	}
	if len(rest) > 0 && rest[0] != ' ' && rest[0] != '\t' {
		return false // "tasks:x" is a plain scalar
	}
	rest = bytes.TrimLeft(rest, " \t")
	return len(rest) == 0 || rest[0] == '#'
}

// isItem reports whether an unindented line starts a block list entry.
func isItem(rest []byte) bool {
	return len(rest) > 0 && rest[0] == '-' && (len(rest) == 1 || rest[1] == ' ')
}

// head returns the file with the items' lines emptied.
func (s *split) head() []byte {
	start, end := s.items[0], s.items[len(s.items)-1]
	n := bytes.Count(s.data[start:end], []byte("\n"))
	out := make([]byte, 0, len(s.data)-int(end-start)+n)
	out = append(out, s.data[:start]...)
	out = append(out, bytes.Repeat([]byte("\n"), n)...)
	return append(out, s.data[end:]...)
}

// placeholder reports whether the tasks entry of the head is the empty
// value left where the items were.
func (s *split) placeholder(e yamlcheck.Field) bool {
	k, v := e.Key, e.Val
	return k.Line == s.tasksLine && k.Column == 1 && k.Kind == yaml.ScalarNode && k.Style == 0 &&
		v.Kind == yaml.ScalarNode && v.Tag == "!!null" && v.Value == "" && v.Anchor == "" && v.Style == 0
}

// groupBytes bounds the source parsed at once: the YAML tree of a group
// takes about 25 times its text, and one parse per item would spend more
// on setting up the parser than on parsing.
const groupBytes = 16 << 10

// group parses the items from i on, as many as fit in groupBytes (at least
// one), and moves their nodes to their lines in the file. ok is false when
// they do not parse as exactly that many list entries.
func (s *split) group(i int) (items []*yaml.Node, ok bool) {
	defer func() {
		if recover() != nil { // the whole parse will report it
			items, ok = nil, false
		}
	}()
	j := i + 1
	for j < len(s.lines) && s.items[j+1]-s.items[i] <= groupBytes {
		j++
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(s.data[s.items[i]:s.items[j]], &doc); err != nil {
		return nil, false
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, false
	}
	seq := doc.Content[0]
	if seq.Kind != yaml.SequenceNode || seq.Tag != "!!seq" || seq.Anchor != "" || seq.Style != 0 ||
		seq.Line != 1 || seq.Column != s.col+1 || len(seq.Content) != j-i {
		return nil, false
	}
	for _, n := range seq.Content {
		shift(n, int(s.lines[i])-1)
	}
	return seq.Content, true
}

// shift adds d to the line of n and of every node under it.
func shift(n *yaml.Node, d int) {
	n.Line += d
	for _, c := range n.Content {
		shift(c, d)
	}
}

// splitTasks decodes the tasks a group of items at a time (see split), at the point
// where the whole way decodes the task list, so problems and the node
// budget come out the same.
func (d *decoder) splitTasks(w *Workflow, e yamlcheck.Field, top yamlcheck.Fields) {
	s := d.split
	s.used = true
	if !s.placeholder(e) {
		s.failed = true
		return
	}
	n := len(s.lines)
	tasks := newTasks(w, n)
	nodes := make([]taskNode, 0, n)
	for i := 0; i < n; {
		items, ok := s.group(i)
		if !ok {
			s.failed = true
			return
		}
		d.lines.index(s.data, int(s.items[i]), int(s.items[i+len(items)]), int(s.lines[i]))
		for _, item := range items {
			if !d.Visit(item) {
				return
			}
			nodes = append(nodes, d.dagTask(w, &tasks[i], item, i))
			i++
		}
	}
	d.finishTasks(w, nodes, top)
}

// decodeSplit decodes data the split way; ok is false when that way does
// not apply and the whole way must run.
func decodeSplit(src string, data []byte, base Config) (w *Workflow, probs Problems, ok bool) {
	s := scanTasks(data)
	if s == nil {
		return nil, nil, false
	}
	d := newDecoder(src, data, base)
	d.split = s
	root := d.document(s.head())
	if root == nil || len(d.Probs) > 0 {
		return nil, nil, false
	}
	w = d.workflow(root)
	if !s.used || s.failed {
		return nil, nil, false
	}
	return w, d.Probs, true
}
