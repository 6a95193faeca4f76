package cli

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestManPage checks that picoflow(1) holds every command, every flag and
// every exit code, and that man renders it without warnings.
func TestManPage(t *testing.T) {
	r := pf(t, t.TempDir(), "help", "--man")
	if r.code != 0 {
		t.Fatalf("help --man: %d %s", r.code, r.stderr)
	}
	page := r.stdout
	for _, n := range commandNames() {
		c := commands[n]
		if !strings.Contains(page, `.SS "picoflow `+roff(n)+`"`) {
			t.Errorf("no section for command %s", n)
		}
		fs, _, _ := c.flags(&globals{})
		fs.VisitAll(func(f *pflag.Flag) {
			if f.Hidden {
				return
			}
			if !strings.Contains(page, `\fB\-\-`+roff(f.Name)+`\fR`) {
				t.Errorf("command %s: flag --%s missing", n, f.Name)
			}
		})
	}
	for _, e := range exitTable {
		if !strings.Contains(page, roff(e.name)+": ") {
			t.Errorf("exit code %d (%s) missing", e.code, e.name)
		}
	}
	man, err := exec.LookPath("man")
	if err != nil {
		t.Skip("no man to render the page")
	}
	cmd := exec.Command(man, "--warnings", "-l", "-")
	cmd.Stdin = strings.NewReader(page)
	cmd.Env = []string{"MANWIDTH=80", "PATH=/usr/bin:/bin"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 || !bytes.Contains(out, []byte("picoflow validate")) {
		t.Fatalf("man: %v\n%s", err, stderr.String())
	}
}
