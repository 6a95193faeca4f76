package journal

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory and unmounts
// it when the test ends. It needs root (the tests of this package run as
// root in CI and in the dev container).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs to fill it needs root; run the tests as root to cover a full disk")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0755", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// remount remounts the tmpfs at dir with opts (e.g. "ro").
func remount(t *testing.T, dir, opts string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,"+opts, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s %s: %v: %s", dir, opts, err, out)
	}
}

// TestDiskFull fills a real file system under the journal: the failed
// append names the cause and the file, later appends return that error
// (not "journal is closed"), readers keep working on the full disk, and
// once space is freed a reopen repairs the tail and appends go on; no
// entry whose Append returned nil is lost.
func TestDiskFull(t *testing.T) {
	fs := mountTmpfs(t, "512k")
	dir := filepath.Join(fs, "journal")
	// The filler leaves room for a few entries only.
	filler := filepath.Join(fs, "filler")
	if err := os.WriteFile(filler, make([]byte, 400<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	j, err := Open(dir, Options{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var acked []string
	var werr error
	for i := 0; i < 10000 && werr == nil; i++ {
		e := testEvent(i, 900)
		if werr = j.Append(e); werr == nil {
			acked = append(acked, describe(e))
		}
	}
	if werr == nil {
		t.Fatal("10000 appends fit in a 512 KiB file system")
	}
	if !errors.Is(werr, syscall.ENOSPC) || !strings.Contains(werr.Error(), "no space left on device") ||
		!strings.Contains(werr.Error(), filepath.Join(dir, "0000000000000000")) {
		t.Fatalf("append on a full disk: %v; want ENOSPC naming the segment file", werr)
	}
	t.Logf("%d entries acknowledged; then: %v", len(acked), werr)

	for _, op := range []func() error{
		func() error { return j.Append(testEvent(1, 0)) },
		func() error { return j.AppendLazy(testEvent(1, 0)) },
		j.Sync,
	} {
		err := op()
		if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no space left on device") || strings.Contains(err.Error(), "is closed") {
			t.Errorf("after the failed write: %v; want the original error", err)
		}
	}
	j.Close()

	// Readers work on the full disk: nothing they do writes.
	got, err := scanAll(t, dir, ScanOptions{})
	if err != nil || len(got) < len(acked) {
		t.Fatalf("Scan on a full disk: %d entries, %v; want the %d acknowledged", len(got), err, len(acked))
	}
	if _, err := Verify(dir); err != nil {
		t.Fatalf("Verify on a full disk: %v", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	j = openJournal(t, dir, Options{SegmentSize: 64 << 10})
	all := readAll(t, j, 1)
	if d := diffLines(all[:len(acked)], acked); d != "" {
		t.Fatalf("after freeing space: %s", d)
	}
	if err := j.Append(testEvent(1, 0)); err != nil {
		t.Fatalf("append after freeing space: %v", err)
	}
	t.Logf("reopen: %+v", j.Repaired)
}

// TestReadersOnReadOnlyFS: Scan (skipping damage) and Verify work on a
// damaged journal in a read-only file system.
func TestReadersOnReadOnlyFS(t *testing.T) {
	fs := mountTmpfs(t, "4m")
	dir := filepath.Join(fs, "j")
	copyDir(t, filepath.Join("testdata", "damaged-older-segment"), dir)
	remount(t, fs, "ro")
	defer remount(t, fs, "rw")

	v, err := Verify(dir)
	if err != nil || len(v.Damage) != 1 || v.Damage[0].Index != 25 {
		t.Fatalf("Verify on a read-only fs: %+v, %v", v, err)
	}
	_, seqs, damages := scanned(t, dir)
	if damages != 1 || len(seqs) != 43 {
		t.Fatalf("Scan on a read-only fs: %d entries, %d damages", len(seqs), damages)
	}
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("Open for writing succeeded on a read-only fs")
	}
}

// useUpInodes creates empty files in dir until the file system has no
// inode left, then removes keep of them, and returns a function that
// removes the rest.
func useUpInodes(t *testing.T, dir string, keep int) func() {
	t.Helper()
	var made []string
	for i := 0; ; i++ {
		p := filepath.Join(dir, fmt.Sprintf("inode-%d", i))
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		made = append(made, p)
	}
	for range keep {
		if err := os.Remove(made[len(made)-1]); err != nil {
			t.Fatal(err)
		}
		made = made[:len(made)-1]
	}
	return func() {
		for _, p := range made {
			os.Remove(p)
		}
	}
}

// TestBigEntryOutOfInodes: the file system runs out of inodes right after
// a big entry's own segment is written (writeAlone), when it creates the
// empty segment after it. The append fails and the entry is taken back:
// the reopened journal ends before it, so a run whose start failed is not
// resumed later; appends go on from there. The entry's segment is the
// wal's empty tail (a new journal) or a new file (after a tail that holds
// entries).
func TestBigEntryOutOfInodes(t *testing.T) {
	for _, c := range []struct {
		name   string
		before int // entries before the big one
		free   int // inodes left: the new segment files the append makes before it fails
	}{
		{"entry-replaces-the-empty-tail", 0, 0},
		{"entry-in-a-new-segment", 3, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := mountTmpfs(t, "16m,nr_inodes=64")
			dir := filepath.Join(fs, "journal")
			j, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { j.Close() }) // before the unmount
			before := testEvents(1, c.before, 100)
			if len(before) > 0 {
				if err := j.Append(before...); err != nil {
					t.Fatal(err)
				}
			}
			free := useUpInodes(t, fs, c.free)
			aerr := j.Append(bigEvent())
			j.Close()
			free()
			if !errors.Is(aerr, syscall.ENOSPC) {
				t.Fatalf("big append without inodes: %v; want ENOSPC", aerr)
			}
			j, err = Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if d := diffLines(readAll(t, j, 1), describeAll(before, 1)); d != "" {
				t.Fatalf("the append failed, and the reopened journal holds its entry; want the entries before it only:\n%s", d)
			}
			if !strings.Contains(aerr.Error(), "taken back: the journal does not hold it") {
				t.Errorf("big append without inodes: %v; want it to say the entry was taken back", aerr)
			}
			big := bigEvent()
			if err := j.Append(big); err != nil || big.Seq != uint64(c.before+1) {
				t.Fatalf("big append once inodes are free: seq %d, %v; want seq %d", big.Seq, err, c.before+1)
			}
		})
	}
}
