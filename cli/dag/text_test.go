package dag

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// textCases are the graphs of the text formats' golden files: plain
// definitions, a run coloured by status, and names with every character
// the formats give a meaning to.
var textCases = []struct {
	name  string
	nodes []Node
}{
	{"definition", []Node{
		{Name: "extract", Kind: "shell"},
		{Name: "transform", Kind: "shell", Deps: []int{0}},
		{Name: "upload", Kind: "ssh", Deps: []int{1}},
		{Name: "notify", Kind: "http", Deps: []int{0, 2}},
	}},
	{"run", []Node{
		{Name: "extract", Kind: "shell", Status: "success", Tooltip: "extract (shell): success"},
		{Name: "transform", Kind: "shell", Status: "failed", Deps: []int{0}},
		{Name: "load", Kind: "shell", Status: "skipped", Deps: []int{1}},
		{Name: "report", Kind: "shell", Status: "running", Deps: []int{0}},
		{Name: "later", Kind: "shell", Deps: []int{3}},
	}},
	{"awkward-names", []Node{
		{Name: `say "hi"`, Kind: "shell"},
		{Name: `back\slash`, Kind: "shell", Deps: []int{0}},
		{Name: "<b>#1</b> & end", Kind: "http", Deps: []int{0, 1}},
		{Name: "ignored-bad-dep", Deps: []int{-1, 9}},
	}},
}

func TestTextGolden(t *testing.T) {
	for _, c := range textCases {
		for _, f := range []struct {
			ext  string
			draw func(*bytes.Buffer) error
		}{
			{"dot", func(b *bytes.Buffer) error { return DOT(b, c.name, c.nodes) }},
			{"mmd", func(b *bytes.Buffer) error { return Mermaid(b, c.nodes) }},
		} {
			t.Run(c.name+"."+f.ext, func(t *testing.T) {
				var b bytes.Buffer
				if err := f.draw(&b); err != nil {
					t.Fatal(err)
				}
				golden(t, filepath.Join("testdata", c.name+"."+f.ext), b.String())
			})
		}
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it)\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// TestDOTRenders hands every golden DOT file to Graphviz (Debian package
// graphviz; scripts/deps.sh installs it): dot must accept it without a
// warning and draw one node per task.
func TestDOTRenders(t *testing.T) {
	dot, err := exec.LookPath("dot")
	if err != nil {
		t.Fatal("dot not found: run scripts/deps.sh (installs the Debian package graphviz)")
	}
	for _, c := range textCases {
		var in, out, errb bytes.Buffer
		if err := DOT(&in, c.name, c.nodes); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(dot, "-Tsvg")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = &in, &out, &errb
		if err := cmd.Run(); err != nil || errb.Len() > 0 {
			t.Errorf("%s: dot -Tsvg: %v\n%s\n%s", c.name, err, errb.String(), in.String())
			continue
		}
		if n := strings.Count(out.String(), `class="node"`); n != len(c.nodes) {
			t.Errorf("%s: dot drew %d nodes, want %d", c.name, n, len(c.nodes))
		}
	}
}
