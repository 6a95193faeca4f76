package cli

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/journal"
)

// uiToken is the ui.token of testDaemonUIToken: characters that escape
// differently in a URL, JSON and a shell word.
const uiToken = `uitok&Zq9/Xf+Lm"W3p=é'r`

// testDaemonUIToken runs a daemon serving the UI with ui.token set in
// HOME/config.yaml, logs in (the right token and a wrong one), sends the
// token as a bearer to the UI, its API and /metrics, and runs a workflow
// whose task prints its environment and fails. No form of the token may
// be in any file of the home but the config file the user wrote, nor in
// the daemon's own log.
func testDaemonUIToken(t *testing.T, bin string) {
	e := newDmnEnv(t, bin, map[string]string{
		"tok.yaml": "name: tok\ntasks:\n  - {name: a, type: shell, config: {command: \"env; exit 3\"}}\n"})
	if err := os.MkdirAll(e.home, 0o750); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(e.home, "config.yaml")
	writeFile(t, cfg, "ui:\n  token: '"+uiTokenYAML()+"'\n")
	p := e.startDaemon("--listen", "127.0.0.1:0")
	m := regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(p.stderr.String())
	if m == nil {
		t.Fatalf("no listen address in the daemon's log:\n%s", p.stderr)
	}
	base := "http://" + m[1]
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string, bearer bool, want int) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		if bearer {
			req.Header.Set("Authorization", "Bearer "+uiToken)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	get("/login?token="+url.QueryEscape(uiToken), false, http.StatusSeeOther)
	get("/login?token="+url.QueryEscape(uiToken+"x"), false, http.StatusUnauthorized)
	for _, path := range []string{"/", "/api/runs", "/metrics"} {
		get(path, true, http.StatusOK)
	}
	if code, out, errs := e.run("trigger", "tok"); code != ExitOK {
		t.Fatalf("trigger: exit %d %s%s", code, out, errs)
	}
	e.waitFor(20*time.Second, "the run to end", func() bool {
		return e.count(func(ev *journal.Event) bool { return ev.Type == journal.RunFinished }) == 1
	})
	get("/api/runs", true, http.StatusOK) // the finished run, through the database
	if code := p.stop(t); code != ExitOK {
		t.Fatalf("daemon exit %d\n%s", code, p.stderr)
	}

	forms := map[string]string{}
	for kind, f := range secretForms(t, uiToken) {
		forms[f] = kind + " form of ui.token"
	}
	homeHoldsNone(t, e.home, cfg, forms, 3)
	for f, what := range forms {
		if strings.Contains(p.stderr.String(), f) {
			t.Errorf("the daemon's log holds the %s:\n%s", what, p.stderr)
		}
	}
}

// uiTokenYAML is uiToken inside a YAML single-quoted scalar.
func uiTokenYAML() string { return strings.ReplaceAll(uiToken, "'", "''") }
