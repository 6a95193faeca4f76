package workflow

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics, that its two outcomes are
// consistent: a workflow with a complete graph, or only Problems, and that
// the split way of decoding agrees with the whole way (split.go).
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*", "*.y*ml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(Example())
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("name: x\ntasks: &t [{<<: *t}]\n"))
	for _, c := range splitCases {
		f.Add([]byte(c.yaml))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSplit(t, data)
		w, err := Parse("fuzz.yaml", data)
		if err != nil {
			var ps Problems
			if w != nil || !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("Parse = %v, %T %v", w, err, err)
			}
			for _, p := range ps {
				if p.Msg == "" || p.File != "fuzz.yaml" {
					t.Fatalf("malformed problem %+v", p)
				}
			}
			_ = err.Error()
			return
		}
		if w.Name == "" || len(w.Tasks) == 0 || len(w.TopoOrder()) != len(w.Tasks) {
			t.Fatalf("valid workflow without name, tasks or full order: %+v", w)
		}
		for _, task := range w.Tasks {
			if task.Shell == nil && task.SSH == nil && task.HTTP == nil {
				t.Fatalf("task %s has no config", task.Name)
			}
			_ = task.SecretRefs()
		}
		if _, err := cronOf(w); err != nil && w.Timezone == "" {
			t.Fatalf("a schedule validate accepts, the daemon's parser rejects: %v", err)
		}
	})
}
