package workflow

import (
	"bytes"
	"runtime"
	"slices"
	"testing"
	"unsafe"
)

// splitCase returns the YAML of the named case of splitCases.
func splitCase(t *testing.T, name string) []byte {
	t.Helper()
	for _, c := range splitCases {
		if c.name == name {
			return []byte(c.yaml)
		}
	}
	t.Fatalf("no split case %q", name)
	return nil
}

// TestKeptStrings checks decoder.keep: values the file holds verbatim
// point into Raw, the others (escapes, folded lines, runes before them
// on the line) are the parser's and still right, and task names never
// point into Raw. The whole way and the split way keep the same ones.
func TestKeptStrings(t *testing.T) {
	data := splitCase(t, "kept strings")
	for _, way := range []string{"split", "whole"} {
		t.Run(way, func(t *testing.T) {
			var w *Workflow
			var probs Problems
			if way == "split" {
				var ok bool
				if w, probs, ok = decodeSplit("f.yaml", data, BuiltinConfig()); !ok {
					t.Fatal("the split way did not apply")
				}
			} else {
				w, probs = decodeWhole("f.yaml", data, BuiltinConfig())
			}
			if len(probs) > 0 {
				t.Fatal(probs)
			}
			w.Raw = data
			x, y := w.Tasks[0], w.Tasks[1]
			inRaw := func(s string) bool {
				p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
				b := uintptr(unsafe.Pointer(unsafe.SliceData(w.Raw)))
				return p >= b && p < b+uintptr(len(w.Raw))
			}
			checks := []struct {
				what, got, want string
				kept            bool
			}{
				{"env A", x.Env.Get("A"), "éé", true},
				{"env B after runes", x.Env.Get("B"), "x", false},
				{"env C quoted quote", x.Env.Get("C"), "it's", false},
				{"env D escape", x.Env.Get("D"), "t\tb", false},
				{"env E plain after runes", x.Env.Get("E"), "plain", false},
				{"env name", x.Env[0].Name, "A", true},
				{"user escape", x.User, "root", false},
				{"folded command", x.Shell.Command, "echo two lines", false},
				{"single-quoted workdir", x.Shell.Workdir, "/tmp", true},
				{"command with escaped quotes", y.Shell.Command, `echo "hi"`, false},
				{"task name", x.Name, "x", false},
			}
			for _, c := range checks {
				if c.got != c.want || inRaw(c.got) != c.kept {
					t.Errorf("%s = %q (in Raw: %v), want %q (in Raw: %v)", c.what, c.got, inRaw(c.got), c.want, c.kept)
				}
			}
			if !slices.Equal(w.Deps(1), []int32{0}) || y.Rule() != RuleAllDone || !slices.Equal(w.Deps(2), []int32{0, 1}) {
				t.Errorf("y: deps %v rule %s; z: deps %v", w.Deps(1), y.Rule(), w.Deps(2))
			}
		})
	}
}

// TestParseCopiesData checks that Parse keeps a copy of the caller's
// bytes, which the workflow's strings point into: the caller may reuse
// its buffer.
func TestParseCopiesData(t *testing.T) {
	data := genDAG(50)
	want := bytes.Clone(data)
	w, err := Parse("f.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	cmd := w.Tasks[7].Shell.Command
	for i := range data {
		data[i] = 'x'
	}
	if !bytes.Equal(w.Raw, want) || cmd != "echo step 7 > /tmp/out-7" || w.Tasks[7].Env.Get("STEP") != "7" {
		t.Errorf("the workflow changed with the caller's buffer: command %q", cmd)
	}
}

// TestLiveBytesPerTask bounds what a loaded task keeps alive besides its
// share of Raw, on tasks written the way people write them (two
// dependencies, an env, a command): the loader's part of a big DAG's
// memory (issue 16; scripts/scale.sh measures the whole process). It was
// 760 bytes before Task was packed and its env became a slice.
func TestLiveBytesPerTask(t *testing.T) {
	if testing.Short() || unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("parses 20,000 tasks; the bound is for 64-bit platforms")
	}
	const n = 20000
	data := genDAG(n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	w, err := ParseWith("f.yaml", data, BuiltinConfig())
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perTask := (int64(after.HeapAlloc) - int64(before.HeapAlloc) - int64(len(w.Raw))) / n
	runtime.KeepAlive(w)
	runtime.KeepAlive(data)
	t.Logf("%d bytes a task besides Raw", perTask)
	if limit := int64(280); perTask > limit {
		t.Errorf("a loaded task keeps %d bytes alive besides Raw, more than %d", perTask, limit)
	}
}
