package cli

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGraphSVG(t *testing.T) {
	dir := t.TempDir()
	for name, src := range uiWorkflows {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	home := t.TempDir()
	byFile := pf(t, home, "graph", filepath.Join(dir, "flaky.yaml"))
	byName := pf(t, home, "graph", "--workflows", dir, "flaky", "--format", "svg")
	if byFile.code != 0 || byName.code != 0 || byFile.stdout != byName.stdout {
		t.Fatalf("graph: %d %s / %d %s", byFile.code, byFile.stderr, byName.code, byName.stderr)
	}
	// A standalone, well-formed SVG document: one node per task, one edge
	// per dependency.
	var doc struct {
		XMLName xml.Name `xml:"http://www.w3.org/2000/svg svg"`
		Nodes   []struct {
			Task string `xml:"data-task,attr"`
		} `xml:"g"`
	}
	if err := xml.Unmarshal([]byte(byFile.stdout), &doc); err != nil {
		t.Fatalf("not XML: %v\n%s", err, byFile.stdout)
	}
	var tasks []string
	for _, n := range doc.Nodes {
		if n.Task != "" {
			tasks = append(tasks, n.Task)
		}
	}
	if strings.Join(tasks, ",") != "prepare,upload,checksum,notify" || strings.Count(byFile.stdout, `class="edge"`) != 4 {
		t.Errorf("nodes %v, edges %d", tasks, strings.Count(byFile.stdout, `class="edge"`))
	}
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"graph"}, ExitUsage},
		{[]string{"graph", filepath.Join(dir, "flaky.yaml"), "--format", "dot"}, ExitUsage},
		{[]string{"graph", "--workflows", dir, "nope"}, ExitNotFound},
		{[]string{"graph", filepath.Join(dir, "missing.yaml")}, ExitUsage},
	} {
		if r := pf(t, home, c.args...); r.code != c.code {
			t.Errorf("%v: %d, want %d (%s)", c.args, r.code, c.code, r.stderr)
		}
	}
}
