package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/picoflow/picoflow/projector"
)

// TestReindexDamagedPage zeroes the first 512 bytes of each page of the
// history database in turn (the header page aside) and runs reindex, the
// documented remedy for a damaged database, with the real binary. A page
// that Open does not read (a table's) made reindex fail on dropping the
// table ("database disk image is malformed", exit 7), and nothing but
// removing the file by hand helped. A query that fails on such damage
// names the remedy.
func TestReindexDamagedPage(t *testing.T) {
	bin := testBinary(t)
	dir := t.TempDir()
	hm := filepath.Join(dir, "home")
	file := writeWorkflow(t, dir, "dmg", "", spec{name: "a", cmd: "echo a"}, spec{name: "b", cmd: "echo b", deps: []string{"a"}})
	pfBin := func(args ...string) (int, string) {
		t.Helper()
		c := start(t, bin, append(args, "--home", hm)...)
		code := c.wait(t)
		return code, c.stdout.String() + c.stderr.String()
	}
	for range 3 {
		if code, out := pfBin("run", file); code != ExitOK {
			t.Fatalf("run: exit %d\n%s", code, out)
		}
	}
	if code, out := pfBin("history"); code != ExitOK {
		t.Fatalf("history: exit %d\n%s", code, out)
	}
	db := filepath.Join(hm, "picoflow.db")
	pristine, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	if len(pristine) < 3*page {
		t.Fatalf("database of %d bytes", len(pristine))
	}
	for off := page; off < len(pristine); off += page {
		spoilt := bytes.Clone(pristine)
		clear(spoilt[off : off+512])
		projector.Remove(db)
		if err := os.WriteFile(db, spoilt, 0o640); err != nil {
			t.Fatal(err)
		}
		for _, cmd := range []string{"history", "status", "gc"} {
			if code, out := pfBin(cmd); code != ExitOK && !strings.Contains(out, "picoflow reindex") {
				t.Errorf("page at %d zeroed: %s: exit %d without naming the remedy\n%s", off, cmd, code, out)
			}
		}
		if code, out := pfBin("reindex"); code != ExitOK {
			t.Errorf("page at %d zeroed: reindex: exit %d\n%s", off, code, out)
			continue
		}
		code, out := pfBin("history")
		if code != ExitOK || strings.Count(out, " success ") != 3 {
			t.Errorf("page at %d zeroed: history after reindex: exit %d\n%s", off, code, out)
		}
	}
}
