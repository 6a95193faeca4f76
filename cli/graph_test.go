package cli

import (
	"encoding/xml"
	"os"
	"os/exec"
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
		{[]string{"graph", filepath.Join(dir, "flaky.yaml"), "--format", "png"}, ExitUsage},
		{[]string{"graph", "--run", "20990101-000000-deadbeef"}, ExitNotFound},
		{[]string{"graph", "--workflows", dir, "nope"}, ExitNotFound},
		{[]string{"graph", filepath.Join(dir, "missing.yaml")}, ExitUsage},
	} {
		if r := pf(t, home, c.args...); r.code != c.code {
			t.Errorf("%v: %d, want %d (%s)", c.args, r.code, c.code, r.stderr)
		}
	}
}

// TestGraphRun draws a real run's graph in every format, coloured by the
// status each task ended with, and checks the dot text with Graphviz.
func TestGraphRun(t *testing.T) {
	dir, home := t.TempDir(), t.TempDir()
	for name, src := range uiWorkflows {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := pf(t, home, "run", filepath.Join(dir, "flaky.yaml"))
	if r.code != ExitFailed {
		t.Fatalf("run flaky: %+v", r)
	}
	id := runIDOf(t, r.stdout)
	mmd := pf(t, home, "graph", "--run", id[:15], "--format", "mermaid")
	if mmd.code != ExitOK {
		t.Fatalf("graph --run: %+v", mmd)
	}
	for _, want := range []string{"flowchart LR", `t1["upload<br/><small>shell</small>"]`, "t0 --> t1",
		"class t0 st_success", "class t1 st_failed", "classDef st_failed fill:#d64545"} {
		if !strings.Contains(mmd.stdout, want) {
			t.Errorf("mermaid of run %s lacks %q:\n%s", id, want, mmd.stdout)
		}
	}
	if other := pf(t, home, "graph", "etl", "--run", id); other.code != ExitUsage || !strings.Contains(other.stderr, "a run of flaky") {
		t.Errorf("graph etl --run (a run of flaky): %+v", other)
	}
	dot := pf(t, home, "graph", "--workflows", dir, "flaky", "--run", id, "--format", "dot")
	if dot.code != ExitOK || !strings.Contains(dot.stdout, `"prepare" -> "upload";`) || !strings.Contains(dot.stdout, `fillcolor="#2f9e5b"`) {
		t.Fatalf("graph --format dot --run: %+v", dot)
	}
	bin, err := exec.LookPath("dot")
	if err != nil {
		t.Fatal("dot not found: run scripts/deps.sh (installs the Debian package graphviz)")
	}
	cmd := exec.Command(bin, "-Tsvg")
	cmd.Stdin = strings.NewReader(dot.stdout)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "<svg") {
		t.Errorf("dot -Tsvg: %v\n%s", err, out)
	}
}
