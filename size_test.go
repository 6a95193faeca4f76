package picoflow_test

import (
	"go/build"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSizeHabits holds the binary-size habits of ARCHITECTURE.md ("Binary
// size") to the packages linked into cmd/picoflow: no package html or
// html/template, and no slices.SortFunc or slices.SortStableFunc (each
// element type gets its own copy of the sort; sort.Slice shares one).
func TestSizeHabits(t *testing.T) {
	code, err := codeImports(".")
	if err != nil {
		t.Fatal(err)
	}
	linked := map[string]bool{}
	var visit func(string)
	visit = func(pkg string) {
		if linked[pkg] {
			return
		}
		linked[pkg] = true
		for _, imp := range code[pkg] {
			visit(imp)
		}
	}
	visit("cmd/picoflow")
	for _, dir := range sortedKeys(code) {
		if !linked[dir] {
			continue
		}
		pkg, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range pkg.Imports {
			if imp == "html" || imp == "html/template" || imp == "text/template" {
				t.Errorf("%s imports %s: use cli/dag.Escape or cli/web's markup (ARCHITECTURE.md, \"Binary size\")", dir, imp)
			}
		}
		for _, f := range pkg.GoFiles {
			src, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			for _, call := range []string{"slices.SortFunc(", "slices.SortStableFunc("} {
				if strings.Contains(string(src), call) {
					t.Errorf("%s/%s calls %s: use sort.Slice/sort.SliceStable (ARCHITECTURE.md, \"Binary size\")", dir, f, call)
				}
			}
		}
	}
}
