package picoflow_test

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The size limits of the structure issue: a file longer than maxFileLines
// wants splitting by concern, a function longer than maxFuncLines wants its
// steps named as helpers (or its cases as a table).
const (
	maxFileLines = 700
	maxFuncLines = 80
)

// TestSizes holds every .go file of the module, tests included, to the size
// limits. It prints one line per offender so that a merge shows exactly
// which files and functions went over.
func TestSizes(t *testing.T) {
	offenders, err := sizeOffenders(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range offenders {
		t.Error(o)
	}
	if len(offenders) > 0 {
		t.Logf("limits: %d lines a file, %d lines a func (from `func` to its closing brace); "+
			"split files by concern, name a long func's steps as helpers", maxFileLines, maxFuncLines)
	}
}

// sizeOffenders walks root (skipping vendor, testdata and hidden
// directories) and returns one line per file over maxFileLines and per func
// or method over maxFuncLines, in walk order.
func sizeOffenders(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (name == "vendor" || name == "testdata" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		o, err := fileOffenders(path)
		out = append(out, o...)
		return err
	})
	return out, err
}

// fileOffenders measures one file: its line count and the span of each
// top-level func declaration, `func` line to closing brace inclusive.
func fileOffenders(path string) ([]string, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	lines := bytes.Count(src, []byte("\n"))
	if len(src) > 0 && src[len(src)-1] != '\n' {
		lines++
	}
	slash := filepath.ToSlash(path)
	if lines > maxFileLines {
		out = append(out, fmt.Sprintf("FILE %s: %d lines (max %d)", slash, lines, maxFileLines))
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
	if err != nil {
		return out, fmt.Errorf("parse %s: %w", slash, err)
	}
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok {
			continue
		}
		n := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1
		if n > maxFuncLines {
			out = append(out, fmt.Sprintf("FUNC %s:%d %s: %d lines (max %d)",
				slash, fset.Position(fn.Pos()).Line, funcName(fn), n, maxFuncLines))
		}
	}
	return out, nil
}

// funcName is "Name" for a function and "Recv.Name" for a method.
func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	typ := fn.Recv.List[0].Type
	for {
		switch x := typ.(type) {
		case *ast.StarExpr:
			typ = x.X
			continue
		case *ast.IndexExpr:
			typ = x.X
			continue
		case *ast.IndexListExpr:
			typ = x.X
			continue
		case *ast.Ident:
			return x.Name + "." + fn.Name.Name
		}
		return fn.Name.Name
	}
}
