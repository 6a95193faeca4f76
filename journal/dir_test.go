package journal

import (
	"os"
	"path/filepath"
	"testing"
)

// The durability of MkdirDurable is tested on a file system that forgets
// what was not fsynced: cli's TestPowerCutScenarios/first-run-of-a-new-home.
func TestMkdirDurable(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path string
		fails      bool
	}{
		{"new-chain", filepath.Join(dir, "a", "b", "c"), false},
		{"exists", filepath.Join(dir, "a", "b"), false},
		{"file-in-the-way", filepath.Join(file, "x"), true},
		{"is-a-file", file, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := MkdirDurable(c.path, 0o750)
			if (err != nil) != c.fails {
				t.Fatalf("MkdirDurable(%s): %v", c.path, err)
			}
			if fi, serr := os.Stat(c.path); !c.fails && (serr != nil || !fi.IsDir()) {
				t.Fatalf("%s is not a directory: %v", c.path, serr)
			}
		})
	}
}
