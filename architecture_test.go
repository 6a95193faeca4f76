package picoflow_test

import (
	"bufio"
	"errors"
	"fmt"
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/picoflow/picoflow"

// TestArchitectureDiagram holds the package diagram of ARCHITECTURE.md to
// the code: every PicoFlow import of every package (tests excluded) is an
// arrow of the diagram and the reverse, and every arrow points down (the
// imported package is listed below the importer).
func TestArchitectureDiagram(t *testing.T) {
	diagram, order, err := readDiagram("ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	code, err := codeImports(".")
	if err != nil {
		t.Fatal(err)
	}
	var diff []string
	for _, pkg := range sortedKeys(code) {
		if _, ok := diagram[pkg]; !ok {
			diff = append(diff, fmt.Sprintf("+ %s: a package the diagram does not list (imports %v)", pkg, code[pkg]))
			continue
		}
		for _, imp := range code[pkg] {
			if !slices.Contains(diagram[pkg], imp) {
				diff = append(diff, fmt.Sprintf("+ %s ──> %s: imported in the code, missing from the diagram", pkg, imp))
			}
		}
	}
	for _, pkg := range order {
		imps, ok := code[pkg]
		if !ok {
			diff = append(diff, fmt.Sprintf("- %s: listed in the diagram, no such package", pkg))
			continue
		}
		for _, imp := range diagram[pkg] {
			if !slices.Contains(imps, imp) {
				diff = append(diff, fmt.Sprintf("- %s ──> %s: in the diagram, not imported by the code", pkg, imp))
			}
		}
	}
	pos := make(map[string]int, len(order))
	for i, pkg := range order {
		pos[pkg] = i
	}
	for _, pkg := range order {
		for _, imp := range diagram[pkg] {
			if p, ok := pos[imp]; ok && p <= pos[pkg] {
				diff = append(diff, fmt.Sprintf("^ %s ──> %s points up: list %s below %s, or drop the import", pkg, imp, imp, pkg))
			}
		}
	}
	if len(diff) > 0 {
		t.Errorf("ARCHITECTURE.md's package diagram and the code disagree (+ code only, - diagram only, ^ arrow up):\n%s",
			strings.Join(diff, "\n"))
	}
}

// readDiagram parses the first fenced block after the heading "Packages
// and dependency direction": lines "PKG ──> DEP DEP ..." or "PKG", with
// "# comments" and brace lists ("executors/{http,ssh}") allowed. It returns
// each package's imports and the packages in the order listed.
func readDiagram(path string) (map[string][]string, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	deps := map[string][]string{}
	var order []string
	state := 0 // 0: before the heading, 1: before the block, 2: in it
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case state == 0 && strings.HasPrefix(line, "## Packages and dependency direction"):
			state = 1
		case state == 1 && strings.HasPrefix(line, "```"):
			state = 2
		case state == 2 && strings.HasPrefix(line, "```"):
			return deps, order, nil
		case state == 2:
			line, _, _ = strings.Cut(line, "#")
			from, to, _ := strings.Cut(line, "──>")
			pkgs := expand(strings.Fields(from))
			if len(pkgs) != 1 {
				return nil, nil, fmt.Errorf("%s: diagram line %q: want one package before ──>", path, line)
			}
			if _, dup := deps[pkgs[0]]; dup {
				return nil, nil, fmt.Errorf("%s: diagram lists %s twice", path, pkgs[0])
			}
			deps[pkgs[0]] = expand(strings.Fields(to))
			order = append(order, pkgs[0])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	return nil, nil, fmt.Errorf("%s: no package diagram (a ``` block after \"## Packages and dependency direction\")", path)
}

// expand turns "a/{b,c}" into "a/b", "a/c".
func expand(words []string) []string {
	var out []string
	for _, w := range words {
		pre, rest, ok := strings.Cut(w, "{")
		if !ok {
			out = append(out, w)
			continue
		}
		list, post, _ := strings.Cut(rest, "}")
		for _, x := range strings.Split(list, ",") {
			out = append(out, pre+x+post)
		}
	}
	return out
}

// codeImports returns, for every package under root, the PicoFlow packages
// its non-test files import, relative to the module path and sorted.
func codeImports(root string) (map[string][]string, error) {
	out := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if name := d.Name(); path != root && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
			return filepath.SkipDir
		}
		pkg, err := build.ImportDir(path, 0)
		var none *build.NoGoError
		if errors.As(err, &none) || path == root {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		var imps []string
		for _, imp := range pkg.Imports {
			if rel, ok := strings.CutPrefix(imp, module+"/"); ok {
				imps = append(imps, rel)
			}
		}
		slices.Sort(imps)
		out[filepath.ToSlash(path)] = imps
		return nil
	})
	return out, err
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
