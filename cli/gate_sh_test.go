package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/picoflow/picoflow/journal"
)

// gatedCases are commands whose output and exit code could change behind
// the shell gate's prefix (`read _ <&3 || exit 125; exec 3<&-; ` on the
// command's first line): line numbers, here-documents on line 1, syntax
// errors there and later, fd 3, $0 and $#, options, traps, signals.
var gatedCases = []string{
	"echo a\nnot_a_cmd_xyz\necho b",
	"cat <<EOF\nhello $0 $#\nEOF\necho after",
	"cat <<EOF; echo x\nexit 125\nEOF",
	"#!/bin/bash\necho hi $0",
	"# nothing but a comment",
	"set -e; false; echo no",
	"set -u; echo $UNSET_XYZ; echo no",
	"set -x; echo traced; true",
	"set -v\necho v1\necho v2",
	"exec echo replaced",
	"trap 'echo bye $?' EXIT; echo hi; exit 7",
	"echo a; fi",
	"if true; then echo a",
	"echo a\necho b\nfi\necho c",
	`echo "unterminated`,
	"\n\nnot_a_cmd_q",
	"f() {\n  not_a_cmd_f\n}\nf",
	"echo a &&\necho b",
	"cat <<EOF\nbody",
	`[ -e /proc/$$/fd/3 ] && echo fd3 open || echo fd3 closed; : >&3; echo $?`,
	`exec 3>"$T/f3"; echo x >&3; exec 3>&-; cat "$T/f3"`,
	`exec 3<&0; read y <&3; echo "y=[$y] rc=$?"`,
	`read x; echo "rc=$? x=[$x]"`,
	`echo "0=$0 #=$# @=$@ ?=$? -=$-"; set -- a b; echo $#`,
	"echo before; kill $$; echo after",
	"exit 125",
	"echo a\r\necho b\r\n",
	"echo a \\",
	"trap",
}

// TestGatedCommandLikePlainSh runs each of gatedCases as a task of the
// real binary and as `/bin/sh -c COMMAND` (stdin /dev/null, the same
// directory): the task's log and exit code are the plain shell's.
func TestGatedCommandLikePlainSh(t *testing.T) {
	bin := testBinary(t)
	dir := t.TempDir()
	var specs []spec
	for i, c := range gatedCases {
		work := filepath.Join(dir, fmt.Sprintf("c%02d", i))
		for _, d := range []string{work, work + "-plain"} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		specs = append(specs, spec{name: fmt.Sprintf("c%02d", i), cmd: c,
			extra: fmt.Sprintf("env: {T: %q}", work)})
	}
	home := filepath.Join(dir, "home")
	file := writeWorkflow(t, dir, "gated", "{max_parallel: 4}", specs...)
	c := start(t, bin, "run", "--home", home, file)
	if code := c.wait(t); code != ExitFailed {
		t.Fatalf("run: exit %d, want %d (some commands fail)\n%s%s", code, ExitFailed, &c.stdout, &c.stderr)
	}
	codes, logs := map[string]int{}, map[string]string{}
	err := journal.Scan(filepath.Join(home, "journal", "gated"), journal.ScanOptions{Strict: true}, func(e *journal.Event) error {
		if e.Type == journal.TaskFinished {
			codes[e.Task] = e.ExitCode
		}
		if e.Type == journal.TaskStarted {
			logs[e.Task] = e.LogPath
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, command := range gatedCases {
		name := fmt.Sprintf("c%02d", i)
		work := filepath.Join(dir, name)
		b, err := os.ReadFile(logs[name])
		if errors.Is(err, os.ErrNotExist) {
			err = nil // an attempt that printed nothing keeps no log
		}
		if err != nil {
			t.Errorf("%q: %v", command, err)
			continue
		}
		got := strings.ReplaceAll(dropNotes(string(b)), work, "$T")
		want, wantCode := plainSh(t, command, work+"-plain")
		if got != want || codes[name] != wantCode {
			t.Errorf("%q: task: exit %d, log\n%s\n/bin/sh -c: exit %d, output\n%s", command, codes[name], got, wantCode, want)
		}
	}
}

// dropNotes removes picoflow's own lines from a task's log.
func dropNotes(log string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(log, "\n") {
		if !strings.HasPrefix(l, "[picoflow ") {
			b.WriteString(l)
		}
	}
	return b.String()
}

// plainSh runs command as /bin/sh -c in work, with T=work, and returns its
// output (work shown as $T) and exit code (-1 when a signal ended it).
func plainSh(t *testing.T, command, work string) (string, int) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "T="+work)
	out, err := cmd.CombinedOutput()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(out), work, "$T"), code
}
