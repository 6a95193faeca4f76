//go:build linux

package lazyfs

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// mount mounts a fresh backing directory, prepared by setup before the
// mount (so its content is durable), and unmounts it at the end.
func mount(t *testing.T, setup func(dir string)) (*FS, string, string) {
	t.Helper()
	if why := Unavailable(); why != "" {
		t.Skip(why)
	}
	backing, mnt := t.TempDir(), t.TempDir()
	if setup != nil {
		setup(backing)
	}
	f, err := Mount(backing, mnt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Cut()
		f.Unmount()
	})
	return f, backing, mnt
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	must(t, os.WriteFile(path, []byte(s), 0o644))
}

// fsync fsyncs a file or a directory.
func fsync(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	must(t, f.Sync())
}

// cut cuts the power with fault and returns the backing directory's files
// (path → content; directories as "/").
func cut(t *testing.T, f *FS, backing string, fault Fault, seed uint64) map[string]string {
	t.Helper()
	must(t, f.PowerCut(fault, rand.New(rand.NewPCG(seed, seed))))
	return tree(t, backing)
}

func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	must(t, filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case info.IsDir():
			m[rel] = "/"
		case info.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			m[rel] = "->" + l
			return err
		default:
			b, err := os.ReadFile(p)
			m[rel] = string(b)
			return err
		}
		return nil
	}))
	return m
}

func wantTree(t *testing.T, got map[string]string, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("after the cut: %q, want %q", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("after the cut: %q, want %q", got, want)
		}
	}
}

func TestFileFsync(t *testing.T) {
	old := func(dir string) { write(t, filepath.Join(dir, "f"), "durable") }
	cases := []struct {
		name string
		do   func(t *testing.T, mnt string)
		want string
	}{
		{"write-lost", func(t *testing.T, mnt string) { write(t, filepath.Join(mnt, "f"), "new") }, "durable"},
		{"write-fsynced", func(t *testing.T, mnt string) {
			write(t, filepath.Join(mnt, "f"), "new")
			fsync(t, filepath.Join(mnt, "f"))
		}, "new"},
		{"fdatasync-counts", func(t *testing.T, mnt string) {
			f, err := os.OpenFile(filepath.Join(mnt, "f"), os.O_WRONLY|os.O_APPEND, 0)
			must(t, err)
			defer f.Close()
			_, err = f.WriteString("+more")
			must(t, err)
			must(t, syscall.Fdatasync(int(f.Fd())))
		}, "durable+more"},
		{"fsync-then-more-writes", func(t *testing.T, mnt string) {
			f, err := os.OpenFile(filepath.Join(mnt, "f"), os.O_WRONLY|os.O_APPEND, 0)
			must(t, err)
			defer f.Close()
			_, err = f.WriteString("+one")
			must(t, err)
			must(t, f.Sync())
			_, err = f.WriteString("+two")
			must(t, err)
		}, "durable+one"},
		{"truncate-lost", func(t *testing.T, mnt string) { must(t, os.Truncate(filepath.Join(mnt, "f"), 3)) }, "durable"},
		{"truncate-fsynced", func(t *testing.T, mnt string) {
			f, err := os.OpenFile(filepath.Join(mnt, "f"), os.O_WRONLY, 0)
			must(t, err)
			defer f.Close()
			must(t, f.Truncate(3))
			must(t, f.Sync())
		}, "dur"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, backing, mnt := mount(t, old)
			c.do(t, mnt)
			wantTree(t, cut(t, f, backing, Clear, 1), map[string]string{"f": c.want})
		})
	}
}

// dirFsyncCases are the directory operations of TestDirFsync, each on a
// directory holding the durable file "old", and the tree a crash keeps.
var dirFsyncCases = []struct {
	name string
	do   func(t *testing.T, mnt string)
	want map[string]string
}{
	{"create-fsynced-file-dir-not", func(t *testing.T, mnt string) {
		write(t, filepath.Join(mnt, "new"), "x")
		fsync(t, filepath.Join(mnt, "new"))
	}, map[string]string{"old": "o"}},
	{"create-dir-fsynced-file-not", func(t *testing.T, mnt string) {
		write(t, filepath.Join(mnt, "new"), "x")
		fsync(t, mnt)
	}, map[string]string{"old": "o", "new": ""}},
	{"create-both-fsynced", func(t *testing.T, mnt string) {
		write(t, filepath.Join(mnt, "new"), "x")
		fsync(t, filepath.Join(mnt, "new"))
		fsync(t, mnt)
	}, map[string]string{"old": "o", "new": "x"}},
	{"unlink-lost", func(t *testing.T, mnt string) {
		must(t, os.Remove(filepath.Join(mnt, "old")))
	}, map[string]string{"old": "o"}},
	{"unlink-fsynced", func(t *testing.T, mnt string) {
		must(t, os.Remove(filepath.Join(mnt, "old")))
		fsync(t, mnt)
	}, map[string]string{}},
	{"rename-lost", func(t *testing.T, mnt string) {
		must(t, os.Rename(filepath.Join(mnt, "old"), filepath.Join(mnt, "moved")))
	}, map[string]string{"old": "o"}},
	{"rename-fsynced", func(t *testing.T, mnt string) {
		must(t, os.Rename(filepath.Join(mnt, "old"), filepath.Join(mnt, "moved")))
		fsync(t, mnt)
	}, map[string]string{"moved": "o"}},
	{"rename-over-keeps-durable-victim", func(t *testing.T, mnt string) {
		write(t, filepath.Join(mnt, "tmp"), "replacement")
		fsync(t, filepath.Join(mnt, "tmp"))
		must(t, os.Rename(filepath.Join(mnt, "tmp"), filepath.Join(mnt, "old")))
		// The victim's inode number must not be reused meanwhile.
		for i := range 20 {
			write(t, filepath.Join(mnt, "churn"), string(rune('a'+i)))
			fsync(t, filepath.Join(mnt, "churn"))
			must(t, os.Remove(filepath.Join(mnt, "churn")))
		}
	}, map[string]string{"old": "o"}},
	{"atomic-replace", func(t *testing.T, mnt string) {
		write(t, filepath.Join(mnt, "tmp"), "replacement")
		fsync(t, filepath.Join(mnt, "tmp"))
		must(t, os.Rename(filepath.Join(mnt, "tmp"), filepath.Join(mnt, "old")))
		fsync(t, mnt)
	}, map[string]string{"old": "replacement"}},
	{"mkdir-parent-not-fsynced", func(t *testing.T, mnt string) {
		must(t, os.MkdirAll(filepath.Join(mnt, "a", "b"), 0o755))
		write(t, filepath.Join(mnt, "a", "b", "f"), "x")
		fsync(t, filepath.Join(mnt, "a", "b", "f"))
		fsync(t, filepath.Join(mnt, "a", "b"))
		fsync(t, filepath.Join(mnt, "a"))
	}, map[string]string{"old": "o"}},
	{"mkdir-chain-fsynced", func(t *testing.T, mnt string) {
		must(t, os.MkdirAll(filepath.Join(mnt, "a", "b"), 0o755))
		write(t, filepath.Join(mnt, "a", "b", "f"), "x")
		fsync(t, filepath.Join(mnt, "a", "b", "f"))
		fsync(t, filepath.Join(mnt, "a", "b"))
		fsync(t, filepath.Join(mnt, "a"))
		fsync(t, mnt)
	}, map[string]string{"old": "o", "a": "/", "a/b": "/", "a/b/f": "x"}},
	{"rmdir-lost", func(t *testing.T, mnt string) {
		must(t, os.Remove(filepath.Join(mnt, "d")))
	}, map[string]string{"old": "o"}},
	{"symlink-fsynced", func(t *testing.T, mnt string) {
		must(t, os.Symlink("old", filepath.Join(mnt, "l")))
		fsync(t, mnt)
	}, map[string]string{"old": "o", "l": "->old"}},
}

func TestDirFsync(t *testing.T) {
	for _, c := range dirFsyncCases {
		t.Run(c.name, func(t *testing.T) {
			f, backing, mnt := mount(t, func(dir string) { write(t, filepath.Join(dir, "old"), "o") })
			if c.name == "rmdir-lost" {
				must(t, os.Mkdir(filepath.Join(mnt, "d"), 0o755))
				fsync(t, mnt)
				c.want = map[string]string{"old": "o", "d": "/"}
			}
			c.do(t, mnt)
			wantTree(t, cut(t, f, backing, Clear, 1), c.want)
		})
	}
}

// TestFaults: four appends after the last fsync; each fault keeps what it
// may, and over many seeds every outcome it may give turns up.
func TestFaults(t *testing.T) {
	parts := []string{"aaaa", "bbbb", "cccc", "dddd"}
	allowed := map[Fault]func(s string) bool{
		Clear: func(s string) bool { return s == "base" },
		TornSeq: func(s string) bool {
			acc := "base"
			for _, p := range parts {
				if s == acc {
					return true
				}
				acc += p
			}
			return s == acc
		},
		TornOp: func(s string) bool {
			full := "base" + parts[0] + parts[1] + parts[2]
			return len(s) >= len(full) && len(s) < len(full)+len(parts[3]) &&
				s == (full + parts[3])[:len(s)]
		},
	}
	for fault, ok := range allowed {
		t.Run(fault.String(), func(t *testing.T) {
			seen := map[string]bool{}
			for seed := range uint64(12) {
				f, backing, mnt := mount(t, func(dir string) { write(t, filepath.Join(dir, "f"), "base") })
				h, err := os.OpenFile(filepath.Join(mnt, "f"), os.O_WRONLY|os.O_APPEND, 0)
				must(t, err)
				for _, p := range parts {
					_, err := h.WriteString(p)
					must(t, err)
				}
				h.Close()
				got := cut(t, f, backing, fault, seed)["f"]
				if !ok(got) {
					t.Fatalf("seed %d: %s kept %q", seed, fault, got)
				}
				seen[got] = true
			}
			if fault != Clear && len(seen) < 2 {
				t.Errorf("%s gave one outcome over 12 seeds: %v", fault, seen)
			}
		})
	}
}

// TestAfterCut: the machine is off; nothing more reaches the disk.
func TestAfterCut(t *testing.T) {
	f, backing, mnt := mount(t, func(dir string) { write(t, filepath.Join(dir, "f"), "durable") })
	h, err := os.OpenFile(filepath.Join(mnt, "f"), os.O_WRONLY, 0)
	must(t, err)
	defer h.Close()
	f.Cut()
	if _, err := h.WriteAt([]byte("late"), 0); !errors.Is(err, syscall.EIO) {
		t.Errorf("write after the cut: %v, want EIO", err)
	}
	if err := h.Sync(); !errors.Is(err, syscall.EIO) {
		t.Errorf("fsync after the cut: %v, want EIO", err)
	}
	if err := os.Mkdir(filepath.Join(mnt, "d"), 0o755); !errors.Is(err, syscall.EIO) {
		t.Errorf("mkdir after the cut: %v, want EIO", err)
	}
	h.Close()
	wantTree(t, cut(t, f, backing, TornSeq, 1), map[string]string{"f": "durable"})
}

// TestCutAfterSyncs: the power goes right after the chosen fsync.
func TestCutAfterSyncs(t *testing.T) {
	f, backing, mnt := mount(t, nil)
	fired := f.CutAfterSyncs(2)
	write(t, filepath.Join(mnt, "a"), "a")
	fsync(t, filepath.Join(mnt, "a"))
	select {
	case <-fired:
		t.Fatal("cut after one fsync")
	default:
	}
	fsync(t, mnt) // the second: it counts, then the power goes
	<-fired
	if err := os.WriteFile(filepath.Join(mnt, "b"), nil, 0o644); !errors.Is(err, syscall.EIO) {
		t.Fatalf("create after the cut: %v, want EIO", err)
	}
	wantTree(t, cut(t, f, backing, Clear, 1), map[string]string{"a": "a"})
}

// TestRemount: a clean unmount keeps the live tree; the next mount starts
// from it.
func TestRemount(t *testing.T) {
	f, backing, mnt := mount(t, nil)
	write(t, filepath.Join(mnt, "f"), "kept")
	must(t, f.Unmount())
	f2, err := Mount(backing, mnt)
	must(t, err)
	t.Cleanup(func() { f2.Unmount() })
	b, err := os.ReadFile(filepath.Join(mnt, "f"))
	must(t, err)
	if string(b) != "kept" {
		t.Fatalf("after remount: %q", b)
	}
	wantTree(t, cut(t, f2, backing, Clear, 1), map[string]string{"f": "kept"})
}

// TestSQLite runs SQLite in WAL mode on the mount (its -shm is an mmap):
// synchronous=FULL commits survive a cut, the database checks out after
// every fault, and it opens and writes again after the remount.
// SQLite on lazyfs (WAL, -shm through a shared mapping, each fault) is
// tested by the power-loss torture, where picoflow is another process.
// Not here: this test process is also the FUSE server, and SQLite's pages
// on its own mount could be written back while the server exits, which
// leaves the process unkillable in the kernel until the connection is
// aborted (/sys/fs/fuse/connections/N/abort).

func TestFaultNames(t *testing.T) {
	got := []string{Clear.String(), TornSeq.String(), TornOp.String(), Fault(9).String()}
	if !slices.Equal(got, []string{"clear", "torn-seq", "torn-op", "fault(9)"}) {
		t.Fatal(got)
	}
}
