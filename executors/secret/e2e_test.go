package secret_test

// Secrets end to end: a workflow whose shell task prints a secret (stdout,
// stderr, $PICOFLOW_OUTPUT, a failure's tail) and whose http task sends it
// in its URL, a header and a JSON body, run by the real engine with a real
// journal, then projected into SQLite. The secret must reach the server and
// no byte of it may be left in any file under the home.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/picoflow/picoflow/engine"
	"github.com/picoflow/picoflow/engine/workflow"
	"github.com/picoflow/picoflow/executors"
	httpx "github.com/picoflow/picoflow/executors/http"
	"github.com/picoflow/picoflow/executors/secret"
	"github.com/picoflow/picoflow/executors/shell"
	"github.com/picoflow/picoflow/journal"
	"github.com/picoflow/picoflow/projector"
)

const (
	fileSecret = "s3cr3t-F1le-value"
	envSecret  = "tok/en+with&odd=chars"
)

func TestSecretsNeverWritten(t *testing.T) {
	home := t.TempDir()
	store := testStore(t)

	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.URL.RawQuery, r.Header.Get("Authorization"), string(b))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"echo": r.Header.Get("Authorization"), "note": "ok"})
	}))
	defer srv.Close()

	wf := secretsWorkflow(t, srv.URL)
	j, err := journal.Open(filepath.Join(home, "journal"), journal.Options{Owner: "test"})
	if err != nil {
		t.Fatal(err)
	}
	hx := httpx.New(httpx.Options{})
	defer hx.Close()
	eng := engine.New(engine.Options{Journal: j, LogDir: filepath.Join(home, "logs"), Redact: store.Redact,
		Executors: map[string]executors.Executor{
			workflow.TypeShell: store.Wrap(&shell.Shell{}),
			workflow.TypeHTTP:  store.Wrap(hx),
		}})
	r, err := eng.Start(context.Background(), wf, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if st := r.Tasks["call"]; st.Status != engine.Success || r.Tasks["fail"].Status != engine.Failed {
		t.Fatalf("call %v (%s), fail %v", st.Status, st.Text().Error, r.Tasks["fail"].Status)
	}

	// The secrets were resolved where they were needed.
	mu.Lock()
	want := []string{"t=" + envSecret, "Bearer " + envSecret} // verbatim, as documented
	if len(seen) != 3 || seen[0] != want[0] || seen[1] != want[1] || !strings.Contains(seen[2], fileSecret) {
		t.Errorf("server saw %q", seen)
	}
	mu.Unlock()
	// Values that are not the definition's are never resolved: the output
	// of show reached fail masked, and stayed masked.
	if got := r.Tasks["show"].Outputs()["LEAK"]; got != "***" {
		t.Errorf("output LEAK = %q", got)
	}
	if got := r.Tasks["call"].Outputs()["echo"]; got != "Bearer ***" {
		t.Errorf("output echo = %q", got)
	}

	db, err := projector.Open(filepath.Join(home, "picoflow.db"), projector.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CatchUp(context.Background(), filepath.Join(home, "journal")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	checkNoSecretOnDisk(t, home, r.ID)
	showLog, _ := os.ReadFile(filepath.Join(home, "logs/secrets", r.ID, "show.1.log"))
	if want := "password is ***\non stderr: ***\nsplit: ***\n"; string(showLog) != want {
		t.Errorf("show log %q, want %q", showLog, want)
	}
}

// testStore is the store of the test's two secrets: db from a file, token
// from the environment.
func testStore(t *testing.T) *secret.Store {
	t.Helper()
	secretPath := filepath.Join(t.TempDir(), "db-password")
	if err := os.WriteFile(secretPath, []byte(fileSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return secret.New(map[string]secret.Source{
		"db":    {File: secretPath},
		"token": {Env: "PICOFLOW_TEST_TOKEN"},
	}, func(k string) (string, bool) {
		if k == "PICOFLOW_TEST_TOKEN" {
			return envSecret, true
		}
		return os.LookupEnv(k)
	})
}

// secretsWorkflow is the workflow of TestSecretsNeverWritten, whose http
// task calls the server at url.
func secretsWorkflow(t *testing.T, url string) *workflow.Workflow {
	t.Helper()
	wf, err := workflow.Parse("secrets.yaml", []byte(`
name: secrets
env:
  DB_PASSWORD: ${secret:db}
tasks:
  - name: show
    type: shell
    config:
      command: |
        echo "password is $DB_PASSWORD"
        echo "on stderr: $DB_PASSWORD" >&2
        printf 'split: %s' "${DB_PASSWORD%%-value}"; printf -- '-value\n'
        echo "LEAK=$DB_PASSWORD" >> "$PICOFLOW_OUTPUT"
  - name: call
    type: http
    depends_on: [show]
    config:
      url: `+url+`/hook?t=${secret:token}
      method: POST
      headers: {Authorization: "Bearer ${secret:token}"}
      json: {password: "${secret:db}", leaked_output: "${env:HOME}"}
      outputs: {echo: .echo}
  - name: fail
    type: shell
    depends_on: [call]
    env:
      TOKEN: ${secret:token}
    config:
      command: echo "failing with $TOKEN and $PICOFLOW_OUT_SHOW_LEAK"; exit 3
`))
	if err != nil {
		t.Fatal(err)
	}
	return wf
}

// checkNoSecretOnDisk checks that no file under home holds a secret, in
// any of the forms a Redactor masks, and that the masks are there instead:
// in the logs of run runID and in the journal.
func checkNoSecretOnDisk(t *testing.T, home, runID string) {
	t.Helper()
	forms := [][]byte{[]byte(fileSecret), []byte(envSecret), []byte("tok%2Fen"), []byte("tok/en%2B"), []byte(`tok/en+with\u0026odd`)}
	masked := map[string]bool{}
	files := 0
	err := filepath.WalkDir(home, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, f := range forms {
			if bytes.Contains(b, f) {
				t.Errorf("%s holds %q", path, f)
			}
		}
		if bytes.Contains(b, []byte(secret.Mask)) {
			rel, _ := filepath.Rel(home, path)
			masked[filepath.ToSlash(filepath.Dir(rel))+"/"+strings.SplitN(d.Name(), ".", 2)[0]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	logDir := "logs/secrets/" + runID
	for _, want := range []string{logDir + "/show", logDir + "/call", logDir + "/fail", "journal/" + journalSegment(t, home)} {
		if !masked[want] {
			t.Errorf("no %q in %s (masked: %v)", secret.Mask, want, masked)
		}
	}
	t.Logf("%d files checked", files)
}

// journalSegment names a journal segment file, without its extension.
func journalSegment(t *testing.T, home string) string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(home, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.IsDir() && e.Name() != "LOCK" {
			return strings.SplitN(e.Name(), ".", 2)[0]
		}
	}
	t.Fatal("no journal segment")
	return ""
}
