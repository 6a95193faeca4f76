package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestGolden parses every testdata/*.yaml and compares the problems (or,
// for a valid file, the parsed configuration) with NAME.golden.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatal("no test files", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			c, err := Load(f)
			var got string
			if err != nil {
				var ps Problems
				if !errors.As(err, &ps) {
					t.Fatalf("error is not Problems: %v", err)
				}
				got = err.Error() + "\n"
			} else {
				got = fmt.Sprintf("%+v\n", *c)
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestExample(t *testing.T) {
	c, err := Parse("example.yaml", []byte(Example))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		File: "example.yaml",
		Defaults: Defaults{MaxParallel: 2, Retry: 1, Timeout: 10 * time.Minute, ShutdownGrace: 30 * time.Second,
			Backoff: Backoff{Initial: 5 * time.Second, Multiplier: 2, Max: 5 * time.Minute}},
		Paths:     Paths{Home: "/var/lib/picoflow", Logs: "/var/lib/picoflow/logs", WorkflowsDir: "/etc/picoflow/workflows"},
		Log:       Log{Format: "text"},
		Retention: Retention{HistoryDays: 30, MaxRunsPerWorkflow: 500, LogDays: 7},
		Resources: Resources{MemoryLimit: 64 << 20, GOGC: 50, MaxWorkflowFile: 1 << 20, SyncWindow: 10 * time.Millisecond},
		HTTP:      HTTP{Listen: "127.0.0.1:9090"},
	}
	secrets := c.Secrets
	c.Secrets = nil
	if fmt.Sprint(*c) != fmt.Sprint(want) {
		t.Fatalf("got  %+v\nwant %+v", *c, want)
	}
	if s := secrets["db_password"]; s.Env != "PICOFLOW_DB_PASSWORD" || s.File != "" {
		t.Fatalf("db_password %+v", s)
	}
	if s := secrets["api_token"]; s.File != "/etc/picoflow/secrets/api_token" || s.Env != "" {
		t.Fatalf("api_token %+v", s)
	}
}

func TestSizes(t *testing.T) {
	for in, want := range map[string]int64{
		"67108864": 64 << 20, "64MiB": 64 << 20, "64M": 64 << 20, "64MB": 64e6, "1.5GiB": 3 << 29, "16384 KiB": 16 << 20,
		"100MB": 100e6, "8388608B": 8 << 20,
	} {
		c, err := Parse("t", []byte("resources: {memory_limit: "+in+"}"))
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if c.Resources.MemoryLimit != want {
			t.Errorf("%s: %d, want %d", in, c.Resources.MemoryLimit, want)
		}
	}
	c, err := Parse("t", []byte("resources: {gogc: off}"))
	if err != nil || c.Resources.GOGC != -1 {
		t.Fatalf("gogc off: %v %v", c, err)
	}
}

// TestSyncWindow: resources.sync_window is a duration of 0..1s; 0 (fsync
// every batch) is kept apart from "not set" as -1.
func TestSyncWindow(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "25ms", want: 25 * time.Millisecond},
		{in: "1s", want: time.Second},
		{in: "0", want: -1},
		{in: "0s", want: -1},
		{in: "2s", err: "resources.sync_window: is 2s, more than 1s"},
		{in: "-5ms", err: "resources.sync_window: must not be negative"},
	} {
		c, err := Parse("t", []byte("resources: {sync_window: "+tc.in+"}"))
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want one with %q", tc.in, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.in, err)
		case c.Resources.SyncWindow != tc.want:
			t.Errorf("%s: %s, want %s", tc.in, c.Resources.SyncWindow, tc.want)
		}
	}
	if c := Default(); c.Resources.SyncWindow != 0 {
		t.Errorf("default sync window %s, want 0 (the engine's)", c.Resources.SyncWindow)
	}
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home.yaml")
	etc := filepath.Join(dir, "etc.yaml")
	explicit := filepath.Join(dir, "explicit.yaml")
	for _, f := range []string{etc, explicit} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := Find("", home, etc); err != nil || got != etc {
		t.Fatalf("default: %q, %v; want %s", got, err, etc)
	}
	if got, err := Find(explicit, home, etc); err != nil || got != explicit {
		t.Fatalf("explicit: %q, %v", got, err)
	}
	if _, err := Find(filepath.Join(dir, "missing.yaml"), home, etc); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing explicit file: %v", err)
	}
	if got, err := Find("", home); err != nil || got != "" {
		t.Fatalf("no file: %q, %v; want none", got, err)
	}
}

func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	private := filepath.Join(dir, "private")
	public := filepath.Join(dir, "public")
	groupw := filepath.Join(dir, "groupw")
	for f, mode := range map[string]os.FileMode{private: 0o600, public: 0o644, groupw: 0o660} {
		if err := os.WriteFile(f, []byte("s3cret"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(f, mode); err != nil { // umask
			t.Fatal(err)
		}
	}
	src := fmt.Sprintf("secrets:\n  a: {file: %s}\n  b: {file: %s}\n  c: {file: %s}\n  d: {file: %s}\n  e: {env: X}\n",
		private, public, groupw, filepath.Join(dir, "missing"))
	c, err := Parse("c.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(c.CheckFiles().Error(), dir, "DIR")
	want := `c.yaml:3: secrets.b.file: DIR/public is readable or writable by every user (mode 0644) (hint: chmod 600 DIR/public)
c.yaml:4: secrets.c.file: DIR/groupw is writable by its group (mode 0660) (hint: chmod g-w DIR/groupw)
c.yaml:5: secrets.d.file: cannot use secret file: stat DIR/missing: no such file or directory`
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(Example))
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data)
		if err == nil && c == nil {
			t.Fatal("nil config without error")
		}
		if err != nil && !bytes.Contains([]byte(err.Error()), []byte("f.yaml")) {
			t.Fatalf("problem without file name: %v", err)
		}
	})
}

// TestAliasBudget feeds the global config a "billion laughs" of merge keys
// (16^7 expansions): the validation layer it shares with workflow files
// charges every expansion to a budget and reports the document instead of
// walking it.
func TestAliasBudget(t *testing.T) {
	var b strings.Builder
	b.WriteString("secrets:\n  s0: &s0 {env: A}\n")
	for i := 1; i <= 7; i++ {
		fmt.Fprintf(&b, "  s%d: &s%d {<<: [%s]}\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*s%d, ", i-1), 16), ", "))
	}
	_, err := Parse("bomb.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "document too complex") {
		t.Fatalf("Parse = %v, want a problem naming the document too complex", err)
	}
}
