package cli

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// TestJournalDamageRepro is the repro: two runs of a → b → c, then
// bit 0 of byte 30 of the 5th entry's envelope flipped. The next run must
// refuse with exit 7 naming file, offset and entry (it used to cut the
// journal there and go on); verify reports it; salvage keeps every entry
// that verifies; then runs work again, and nothing that completed ran twice.
func TestJournalDamageRepro(t *testing.T) {
	dir, hm, file := abcHome(t)
	for range 2 {
		if res := picoflow(t, "run", "--home", hm, file); res.code != ExitOK {
			t.Fatalf("run: %s", res)
		}
	}
	jdir := journalDir(hm, "abc")
	recordOff := flipBit(t, jdir, 5, 30, 1)
	ran := len(readLedger(t, dir))

	res := picoflow(t, "run", "--home", hm, file)
	if res.code != ExitInternal {
		t.Fatalf("run on a damaged journal: %s", res)
	}
	for _, want := range []string{"00000000000000000001", "offset " + strconv.Itoa(recordOff), "entry 5", "picoflow journal salvage"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("run's error does not name %q:\n%s", want, res.stderr)
		}
	}
	if got := len(readLedger(t, dir)); got != ran {
		t.Fatalf("a task ran on a damaged journal: ledger %v", readLedger(t, dir))
	}

	res = picoflow(t, "journal", "verify", "--home", hm)
	if res.code != ExitInternal || !strings.Contains(res.stdout, "entry 5") || !strings.Contains(res.stdout, "offset "+strconv.Itoa(recordOff)) {
		t.Fatalf("verify: %s", res)
	}
	res = picoflow(t, "journal", "verify", "--json", "--home", hm)
	var v []verifyJSON
	if err := json.Unmarshal([]byte(res.stdout), &v); err != nil || res.code != ExitInternal {
		t.Fatalf("verify --json: %v\n%s", err, res)
	}
	if len(v) != 1 || v[0].Clean || len(v[0].Damage) != 1 || v[0].Damage[0].Entry != 5 || v[0].Damage[0].Offset != int64(recordOff) {
		t.Fatalf("verify --json: %+v", v)
	}

	res = picoflow(t, "journal", "salvage", "--home", hm, "abc")
	if res.code != ExitOK || !strings.Contains(res.stdout, "marked damaged") || !strings.Contains(res.stdout, "renumbered") {
		t.Fatalf("salvage: %s", res)
	}
	copies, _ := filepath.Glob(filepath.Join(jdir, "damaged", "salvage-*", "00000000000000000001"))
	if len(copies) != 1 {
		t.Errorf("no copy of the damaged segment: %v", copies)
	}
	if res := picoflow(t, "journal", "verify", "--home", hm); res.code != ExitOK {
		t.Fatalf("verify after salvage: %s", res)
	}
	if got := len(readLedger(t, dir)); got != ran {
		t.Fatalf("salvage ran tasks: ledger %v", readLedger(t, dir))
	}
	if res := picoflow(t, "run", "--home", hm, file); res.code != ExitOK {
		t.Fatalf("run after salvage: %s", res)
	}
	if got := readLedger(t, dir)[ran:]; strings.Join(got, " ") != "a b c" {
		t.Errorf("the run after salvage ran %v, want a new run of a b c", got)
	}
}

func TestJournalUsage(t *testing.T) {
	hm := filepath.Join(t.TempDir(), "home")
	for _, args := range [][]string{{"journal"}, {"journal", "salvage"}, {"journal", "fix", "x"}} {
		if res := picoflow(t, append(args, "--home", hm)...); res.code != ExitUsage || !strings.Contains(res.stderr, "usage: picoflow journal") {
			t.Errorf("%v: %s", args, res)
		}
	}
	if res := picoflow(t, "journal", "verify", "--home", hm); res.code != ExitOK {
		t.Errorf("verify of a home without a journal: %s", res)
	}
}

// TestSalvagedRunNotResumed: an interrupted run whose events a salvage may
// have lost is marked damaged, and run FILE then starts a new run instead
// of resuming it.
func TestSalvagedRunNotResumed(t *testing.T) {
	dir, hm, file := abcHome(t)
	id := crashedRun(t, hm, file, "a")
	j, err := journal.Open(journalDir(hm, "abc"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixNano()
	err = j.Append(
		&journal.Event{Type: journal.TaskFinished, Time: now, Run: id, Task: "a", Attempt: 1, Status: journal.StatusSuccess},
		&journal.Event{Type: journal.TaskStarted, Time: now, Run: id, Task: "b", Attempt: 1},
		&journal.Event{Type: journal.TaskFinished, Time: now, Run: id, Task: "b", Attempt: 1, Status: journal.StatusSuccess},
		&journal.Event{Type: journal.TaskStarted, Time: now, Run: id, Task: "c", Attempt: 1})
	if cerr := j.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	// Flip a bit in entry 3 (a's success): entries on both sides survive.
	flipBit(t, journalDir(hm, "abc"), 3, 24, 0x10)
	if res := picoflow(t, "run", "--home", hm, file); res.code != ExitInternal || !strings.Contains(res.stderr, "entry 3") {
		t.Fatalf("run on the damaged journal: %s", res)
	}
	res := picoflow(t, "journal", "salvage", "--json", "--home", hm, "abc")
	var s salvageJSON
	if err := json.Unmarshal([]byte(res.stdout), &s); err != nil || res.code != ExitOK {
		t.Fatalf("salvage --json: %v\n%s", err, res)
	}
	if s.Kept != 5 || s.Lost != 1 || len(s.Gaps) != 1 || s.Gaps[0] != (gapJSON{Before: 2, After: 3}) || s.Damaged[id] == "" {
		t.Fatalf("salvage: %+v", s)
	}
	res = picoflow(t, "run", "--home", hm, file)
	if res.code != ExitOK || strings.Contains(res.stdout, "resuming") {
		t.Fatalf("run after salvage must start a new run, not resume the damaged one: %s", res)
	}
	if got := strings.Join(readLedger(t, dir), " "); got != "a b c" {
		t.Errorf("ledger %q, want one new run of a b c", got)
	}

	// history shows the run as damaged.
	res = picoflow(t, "history", "--json", "--status", "damaged", "--home", hm)
	if res.code != ExitOK || !strings.Contains(res.stdout, id) || !strings.Contains(res.stdout, `"damaged"`) {
		t.Fatalf("history --status damaged: %s", res)
	}
	// An operator may resume it by id: b's success survived in a verified
	// entry and never runs again; a (whose end was lost) and c do.
	res = picoflow(t, "resume", "--home", hm, id)
	if res.code != ExitOK {
		t.Fatalf("resume of the damaged run: %s", res)
	}
	ran := readLedger(t, dir)[3:]
	slices.Sort(ran) // a and c do not depend on each other: either may go first
	if got := strings.Join(ran, " "); got != "a c" {
		t.Errorf("the resumed damaged run ran %q, want a c (never b, whose success verified)", got)
	}
	res = picoflow(t, "history", "--json", "--home", hm)
	if res.code != ExitOK || strings.Contains(res.stdout, `"damaged"`) {
		t.Errorf("after its resume the run is no longer damaged: %s", res)
	}
}

// abcHome writes the workflow a → b → c (each task records itself in the
// ledger in dir) and returns dir, a home path and the workflow file.
func abcHome(t *testing.T) (dir, hm, file string) {
	dir = t.TempDir()
	file = writeWorkflow(t, dir, "abc", "",
		spec{name: "a", cmd: ledger("a")},
		spec{name: "b", cmd: ledger("b"), deps: []string{"a"}},
		spec{name: "c", cmd: ledger("c"), deps: []string{"b"}})
	return dir, filepath.Join(dir, "home"), file
}

// flipBit flips mask in byte at of the envelope of entry (1-based) of the
// first segment of the journal in jdir, and returns the record's offset.
func flipBit(t *testing.T, jdir string, entry, at int, mask byte) int {
	t.Helper()
	seg := filepath.Join(jdir, "00000000000000000001")
	buf, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	off := 0
	for range entry - 1 {
		n, k := binary.Uvarint(buf[off:])
		off += k + int(n)
	}
	_, k := binary.Uvarint(buf[off:])
	buf[off+k+at] ^= mask
	if err := os.WriteFile(seg, buf, 0o640); err != nil {
		t.Fatal(err)
	}
	return off
}

// TestDamageMessageEverywhere meets a damaged journal through run, gc and
// a daemon (trigger): each says the same, exit 7 naming the segment, the
// entry and the salvage hint.
func TestDamageMessageEverywhere(t *testing.T) {
	bin := testBinary(t)
	dir, hm, file := abcHome(t)
	for range 2 {
		if res := picoflow(t, "run", "--home", hm, file); res.code != ExitOK {
			t.Fatalf("run: %s", res)
		}
	}
	flipBit(t, journalDir(hm, "abc"), 5, 30, 1)
	wfDir := filepath.Join(dir, "workflows")
	if err := os.MkdirAll(wfDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(file, filepath.Join(wfDir, "abc.yaml")); err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(wfDir, "abc.yaml")
	want := []string{"00000000000000000001", "entry 5", "picoflow journal verify abc", "picoflow journal salvage abc"}
	check := func(what string, code int, stderr string) {
		t.Helper()
		if code != ExitInternal {
			t.Errorf("%s on a damaged journal: exit %d, want %d\n%s", what, code, ExitInternal, stderr)
		}
		for _, w := range want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: the error does not say %q:\n%s", what, w, stderr)
			}
		}
	}
	res := picoflow(t, "run", "--home", hm, file)
	check("run", res.code, res.stderr)
	res = picoflow(t, "gc", "--home", hm)
	check("gc", res.code, res.stderr)

	e := &dmnEnv{t: t, bin: bin, home: hm, dir: wfDir}
	d := e.startDaemon()
	code, _, stderr := e.run("trigger", "abc")
	check("trigger (the daemon)", code, stderr)
	if code := d.stop(t); code != 0 {
		t.Errorf("daemon exit %d\n%s", code, d.stderr)
	}
}
