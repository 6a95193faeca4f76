package workflow

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/picoflow/picoflow/engine/yamlcheck"
	"github.com/picoflow/picoflow/executors"
)

// checkSplit decodes data both ways (split.go) and fails when the split
// way applies and disagrees with the whole way. It reports whether the
// split way applied.
func checkSplit(t testing.TB, data []byte) bool {
	t.Helper()
	ws, ps, ok := decodeSplit("f.yaml", data, BuiltinConfig())
	if !ok {
		return false
	}
	ww, pw := decodeWhole("f.yaml", data, BuiltinConfig())
	ps.SortByPosition()
	pw.SortByPosition()
	ps, pw = ps.Dedupe(), pw.Dedupe()
	if len(ps) > 0 || len(pw) > 0 {
		if !reflect.DeepEqual(ps, pw) {
			t.Fatalf("problems differ\n--- split\n%v\n--- whole\n%v\n--- input\n%s", ps, pw, data)
		}
		return true
	}
	if !reflect.DeepEqual(ws, ww) {
		t.Fatalf("workflows differ\n--- split\n%+v\n--- whole\n%+v\n--- input\n%s", ws, ww, data)
	}
	return true
}

// splitCases are layouts at the edges of what the prescan accepts: each
// either takes the split way and must agree with the whole way, or must
// fall back (want false).
var splitCases = []struct {
	name  string
	yaml  string
	split bool
}{
	{"plain", "name: a\ntasks:\n  - name: x\n    type: shell\n    config: {command: \"true\"}\n", true},
	{"unindented items", "name: a\ntasks:\n- name: x\n  type: shell\n  config: {command: \"true\"}\n- name: y\n  type: shell\n  depends_on: x\n  config: {command: \"true\"}\n", true},
	{"keys after tasks", "tasks:\n  - name: x\n    type: shell\n    config: {command: \"true\"}\n# c\nname: a\nconfig:\n  retry_default: 2\n", true},
	{"comments between items", "name: a\ntasks:  # the jobs\n  # first\n  - name: x\n    type: shell\n# out of line\n    config: {command: \"true\"}\n\n  - name: y\n    type: shell\n    config: {command: \"true\"}\n", true},
	{"block scalar", "name: a\ntasks:\n  - name: x\n    type: shell\n    config:\n      command: |\n        echo 1\n\n        echo 2\n  - name: y\n    type: shell\n    config: {command: \"true\"}\n", true},
	{"crlf", "name: a\r\ntasks:\r\n  - name: x\r\n    type: shell\r\n    config: {command: \"true\"}\r\n", true},
	{"problems in items", "name: a\ntasks:\n  - name: x\n    type: shel\n    config: {command: \"true\"}\n  - name: x\n    type: shell\n    depends_on: [z, x]\n    comand: 1\n  - 7\n  -\n", true},
	{"cycle", "name: a\ntasks:\n  - name: x\n    type: shell\n    depends_on: [y]\n    config: {command: \"true\"}\n  - name: y\n    type: shell\n    depends_on: [x]\n    config: {command: \"true\"}\n", true},
	{"anchor inside one item", "name: a\ntasks:\n  - name: x\n    type: shell\n    env: &e {A: \"1\"}\n    config: {command: \"true\"}\n    <<: {retry: 2}\n", true},
	{"alias in the same group", "name: a\ntasks:\n  - &t\n    name: x\n    type: shell\n    config: {command: \"true\"}\n  - <<: *t\n    name: y\n", true},
	{"alias from head", "name: a\nenv: &e {A: \"1\"}\ntasks:\n  - name: x\n    type: shell\n    env: *e\n    config: {command: \"true\"}\n", false},
	{"alias to an item after", "name: a\ntasks:\n  - name: x\n    type: shell\n    env: &e {A: \"1\"}\n    config: {command: \"true\"}\nenv: *e\n", false},
	{"flow tasks", "name: a\ntasks: [{name: x, type: shell, config: {command: \"true\"}}]\n", false},
	{"anchored tasks", "name: a\ntasks: &t\n  - name: x\n    type: shell\n    config: {command: \"true\"}\n", false},
	{"document marker", "---\nname: a\ntasks:\n  - name: x\n    type: shell\n    config: {command: \"true\"}\n", false},
	{"two documents", "name: a\ntasks:\n  - name: x\n    type: shell\n    config: {command: \"true\"}\n---\nname: b\n", false},
	{"duplicate tasks", "name: a\ntasks:\n  - name: x\n    type: shell\n    config: {command: \"true\"}\ntasks:\n  - name: y\n", false},
	{"quoted duplicate tasks", "name: a\ntasks:\n  - name: x\n    type: shell\n    config: {command: \"true\"}\n\"tasks\": []\n", true},
	{"tasks in a string", "name: a\ndescription: \"x\ntasks:\n  - y\"\n", false},
	{"fake item in a string", "name: a\ntasks:\n  - name: x\n    type: shell\n    config: {command: \"a\n  - b\"}\n", false},
	{"syntax error in an item", "name: a\ntasks:\n  - name: x\n    type: shell\n    config: {command: \"true\"\n", false},
	{"syntax error in the head", "name: [a\ntasks:\n  - name: x\n", false},
	{"tab indent", "name: a\ntasks:\n\t- name: x\n", false},
	{"odd indent", "name: a\ntasks:\n    - name: x\n      type: shell\n      config: {command: \"true\"}\n  - name: y\n", false},
	{"not a list", "name: a\ntasks:\n  name: x\n", false},
	{"empty tasks", "name: a\ntasks:\nconfig: {}\n", false},
	{"item with a tag", "name: a\ntasks:\n  - !!map\n    name: x\n    type: shell\n    config: {command: \"true\"}\n", true},
	{"nested list item", "name: a\ntasks:\n  - - name: x\n", true},
	{"lone carriage return", "tasks:\n  - \r0", false},
	{"next line", "name: a\ntasks:\n  - name: x\u0085    type: shell\n    config: {command: \"true\"}\n", false},
	{"no newline at the end", "name: a\ntasks:\n- name: x\n  type: shell\n  config: {command: \"true\"}", true},
	// Values decoder.keep may take from the file, or must not: escapes,
	// quotes, folded lines, runes before a value on its line.
	{"kept strings", "name: a\ntasks:\n  - name: x\n    type: shell\n    env: {A: \"\u00e9\u00e9\", B: \"x\", C: 'it''s', D: \"t\\tb\", E: plain}\n    user: \"\\x72oot\"\n" +
		"    config:\n      command: echo\n        two lines\n      workdir: '/tmp'\n" +
		"  - name: y\n    type: shell\n    depends_on: [\"\\x78\"]\n    trigger_rule: 'all_done'\n    config: {command: \"echo \\\"hi\\\"\"}\n" +
		"  - name: z\n    type: shell\n    depends_on: ['x', \"y\"]\n    config: {command: \"true\"}\n", true},
	{"handler with the default trigger rule", "name: a\ntasks:\n  - name: x\n    type: shell\n    config: {command: \"true\"}\n" +
		"on_exit:\n  - name: z\n    type: shell\n    trigger_rule: all_success\n    config: {command: \"true\"}\n", true},
}

func TestSplitMatchesWhole(t *testing.T) {
	// An alias to an item of an earlier group is an error of its group's
	// parse: the whole way must decode the file.
	var b strings.Builder
	b.WriteString("name: a\ntasks:\n  - &first\n    name: t0\n    type: shell\n    config: {command: \"true\"}\n")
	for i := 1; b.Len() < 2*groupBytes; i++ {
		fmt.Fprintf(&b, "  - name: t%d\n    type: shell\n    config: {command: \"true\"}\n", i)
	}
	b.WriteString("  - <<: *first\n    name: last\n")
	cases := append(splitCases, struct {
		name  string
		yaml  string
		split bool
	}{"alias between groups", b.String(), false})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := checkSplit(t, []byte(c.yaml)); got != c.split {
				t.Errorf("split way applied = %v, want %v", got, c.split)
			}
			if _, err := Parse("f.yaml", []byte(c.yaml)); err != nil {
				_ = err.Error()
			}
		})
	}
}

// TestSplitTestdata runs every workflow under testdata both ways: the
// golden files of the invalid ones are checked by TestInvalid through
// Load, which tries the split way first; this checks that the two ways
// agree wherever the split way applies.
func TestSplitTestdata(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*", "*.y*ml"))
	if err != nil {
		t.Fatal(err)
	}
	split := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(strings.TrimSuffix(filepath.Base(file), filepath.Ext(file)), func(t *testing.T) {
			if checkSplit(t, data) {
				split++
			}
		})
	}
	if checkSplit(t, Example()) {
		split++
	}
	// The memory of a big DAG depends on this: generated and hand-written
	// task lists must take the split way, whose YAML trees are one group
	// of groupBytes at a time.
	if !checkSplit(t, genDAG(2000)) {
		t.Fatal("a generated 2,000-task DAG did not take the split way")
	}
	if s := scanTasks(genDAG(2000)); s != nil {
		for i := 0; i < len(s.lines); {
			items, ok := s.group(i)
			if !ok || i > 0 && len(items) < 2 {
				t.Fatalf("group %d: ok=%v, %d items", i, ok, len(items))
			}
			if size := s.items[i+len(items)] - s.items[i]; size > groupBytes {
				t.Fatalf("group at item %d parses %d bytes, more than %d", i, size, groupBytes)
			}
			i += len(items)
		}
	}
	split++
	// Most files are written in block style; if few take the split way,
	// the prescan has become too strict and big DAGs lose their memory.
	if split < len(files)/2 {
		t.Errorf("the split way applied to %d of %d files, want at least half", split, len(files)+2)
	}
	t.Logf("split way applied to %d of %d files", split, len(files)+2)
}

// TestNamesMatchMaps checks decoder.names, which sorts, against the two
// maps it replaced, on random names that clash often.
func TestNamesMatchMaps(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for round := range 300 {
		n := 1 + r.IntN(40)
		w := &Workflow{}
		nodes := make([]taskNode, n)
		for i := range n {
			name := ""
			for range r.IntN(4) {
				name += string("aA-_b"[r.IntN(5)])
			}
			w.Tasks = append(w.Tasks, &Task{Task: executors.Task{Name: name}, Line: int32(10 + i)})
			nodes[i].name = pos{int32(10 + i), 5}
		}
		d := newDecoder("f.yaml", nil, BuiltinConfig())
		w.byName = d.names(w, nodes)
		want := newDecoder("f.yaml", nil, BuiltinConfig())
		first := map[string]int{}
		vars := map[string]int{}
		for i, t := range w.Tasks {
			if t.Name == "" {
				continue
			}
			at, path := nodes[i].name, yamlcheck.Join(yamlcheck.Index("tasks", i), "name")
			if j, dup := first[t.Name]; dup {
				want.errorAt(at, path, "duplicate task name %q (first defined at line %d)", t.Name, w.Tasks[j].Line)
				continue
			}
			first[t.Name] = i
			v := envPart(t.Name)
			if j, clash := vars[v]; clash {
				want.reportAt(at, path, Problem{
					Msg: fmt.Sprintf("task names %q and %q (line %d) give the same output variables %s*",
						t.Name, w.Tasks[j].Name, w.Tasks[j].Line, OutputVar(t.Name, "")),
					Hint: "task names must differ by more than case, '-' and '_'",
				})
				continue
			}
			vars[v] = i
		}
		d.Probs.SortByPosition()
		if !reflect.DeepEqual(d.Probs, want.Probs) {
			t.Fatalf("round %d: names %q\n--- got\n%v\n--- want\n%v", round, taskNames(w), d.Probs, want.Probs)
		}
		for name, i := range first {
			if j, ok := w.Index(name); !ok || j != i {
				t.Fatalf("round %d: Index(%q) = %d, %v, want %d", round, name, j, ok, i)
			}
		}
		if _, ok := w.Index("zz"); ok {
			t.Fatalf("Index of an unknown name succeeded")
		}
	}
}

func taskNames(w *Workflow) []string {
	var out []string
	for _, t := range w.Tasks {
		out = append(out, t.Name)
	}
	return out
}
