package cli

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The secrets of testSecretsNeverWritten: quotes, &, <, >, a space, a
// slash and non-ASCII, so that every escaped form differs from the value.
const (
	tokSecret    = `pa&ss"w0 r'd/<é>`
	unusedSecret = `un&used'S3cret<x>`
	fileSecret   = `f1le&Secret'"é`
)

// secretForms are the forms of v that tools commonly print: raw, URL
// (query, path), inside a JSON string (HTML-escaped as Go, unescaped as
// python and jq, non-ASCII escaped as python's default), and inside a
// shell single-quoted word (as sh and python's shlex.quote write a quote).
func secretForms(t *testing.T, v string) map[string]string {
	t.Helper()
	html, _ := json.Marshal(v)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	plain := strings.TrimSuffix(b.String(), "\n")
	ascii := strings.ReplaceAll(plain[1:len(plain)-1], "é", `\u00e9`)
	return map[string]string{
		"raw":           v,
		"query-escaped": url.QueryEscape(v),
		"path-escaped":  url.PathEscape(v),
		"json-html":     string(html[1 : len(html)-1]),
		"json":          plain[1 : len(plain)-1],
		"json-ascii":    ascii,
		"shell-quoted":  strings.ReplaceAll(v, "'", `'\''`),
		"shlex-quoted":  strings.ReplaceAll(v, "'", `'"'"'`),
	}
}

// testSecretsNeverWritten runs the real binary with three configured
// secrets: one from an env variable a task references, one from an env
// variable nothing references, and one from a file. Tasks print their
// whole environment, the referenced secret, and every form of every
// secret (from a file outside the home, as a program might), and one
// fails with a secret in its output. No form of any secret may appear in
// any file of the home (binary ones included), on the console, or in the
// --json output of the commands that read the home; the variables behind
// the env secrets are not in the environment tasks inherit.
func testSecretsNeverWritten(t *testing.T, bin string) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	secretFile := filepath.Join(dir, "file-secret")
	if err := os.WriteFile(secretFile, []byte(fileSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	writeFile(t, cfg, "secrets:\n  tok: {env: PF_TOK}\n  unused: {env: PF_UNUSED}\n  file: {file: "+secretFile+"}\n")
	var all []string
	forms := map[string]string{}
	for _, v := range []string{tokSecret, unusedSecret, fileSecret} {
		for kind, f := range secretForms(t, v) {
			forms[f] = kind + " form of " + v
			all = append(all, f)
		}
	}
	writeFile(t, filepath.Join(dir, "forms.txt"), strings.Join(all, "\n")+"\n")

	file := writeWorkflow(t, dir, "leaky", "",
		spec{name: "printenv", cmd: `env; env | grep -q '^PF_' && echo "PF_ VARIABLES INHERITED"; true`},
		spec{name: "forms", cmd: `cat "$T/forms.txt"; cat "$T/forms.txt" >&2`},
		spec{name: "use", cmd: `echo "token=$TOK"; echo "OUT=$TOK" >> "$PICOFLOW_OUTPUT"`,
			extra: "env: {TOK: \"${secret:tok}\"}"},
		spec{name: "fail", cmd: `cat "$T/forms.txt"; echo "failing with $TOK"; exit 3`,
			extra: "env: {TOK: \"${secret:tok}\"}", deps: []string{"use"}})
	env := append(os.Environ(), "PF_TOK="+tokSecret, "PF_UNUSED="+unusedSecret,
		"PICOFLOW_HOME="+home, "PICOFLOW_CONFIG="+cfg, "TZ=UTC")
	pf := func(args ...string) string {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	console := map[string]string{"run": pf("run", file)}
	m := runIDRe.FindStringSubmatch(console["run"])
	if m == nil {
		t.Fatalf("no run id in\n%s", console["run"])
	}
	for _, args := range [][]string{
		{"history"}, {"history", "--json"}, {"history", "--tasks"}, {"history", "--tasks", "--json"},
		{"replay", m[1]}, {"replay", "--json", m[1]}, {"status"}, {"status", "--json"},
		{"logs", "leaky", "forms"}, {"logs", "leaky", "fail"}, {"logs", "leaky", "printenv"}, {"logs", "leaky", "use"},
	} {
		console[strings.Join(args, " ")] = pf(args...)
	}
	for name, out := range console {
		if strings.Contains(out, "PF_ VARIABLES INHERITED") || strings.Contains(out, "PF_TOK=") {
			t.Errorf("%s: the variables behind env secrets reached a task:\n%s", name, out)
		}
		for f, what := range forms {
			if strings.Contains(out, f) {
				t.Errorf("picoflow %s prints the %s:\n%s", name, what, out)
			}
		}
	}
	if !strings.Contains(console["logs leaky use"], "token=***") {
		t.Errorf("the task that references the secret did not get it (masked):\n%s", console["logs leaky use"])
	}
	homeHoldsNone(t, home, "", forms, 5)
}

// homeHoldsNone reports each file of home (but skip) that holds one of
// forms (a form -> what it is), binary files included; at least min files
// must have been read.
func homeHoldsNone(t *testing.T, home, skip string, forms map[string]string, min int) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(home, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path == skip {
			return err
		}
		files++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for f, what := range forms {
			if bytes.Contains(b, []byte(f)) {
				t.Errorf("%s holds the %s", path, what)
			}
		}
		return nil
	})
	if err != nil || files < min {
		t.Fatalf("walked %d files of the home: %v", files, err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
