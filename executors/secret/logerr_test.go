package secret_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/picoflow/picoflow/executors"
	"github.com/picoflow/picoflow/executors/secret"
)

// printer is an executor that writes text to the attempt's stdout and
// succeeds.
type printer struct{ text string }

var _ executors.Executor = (*printer)(nil)

func (p *printer) Execute(_ context.Context, req *executors.Request) executors.Result {
	stdout, _ := req.Streams()
	io.WriteString(stdout, p.text)
	return executors.Result{Status: executors.Success}
}

// TestMaskedLogNotWritten: output that the masking writer holds back (it
// may be the start of a secret) and cannot write at its flush fails the
// attempt, naming the log and the cause; a success must not hide a lost
// log.
func TestMaskedLogNotWritten(t *testing.T) {
	const value = "hunter2-secret"
	store := secret.New(map[string]secret.Source{"pw": {Env: "PW"}},
		func(k string) (string, bool) { return value, k == "PW" })
	path := filepath.Join(t.TempDir(), "t.1.log")
	log, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o600) // every write to it fails
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	req := &executors.Request{Run: "r", Workflow: "w", Attempt: 1, Log: log,
		Task: &executors.Task{Name: "t", Shell: &executors.ShellConfig{Command: "true"}}}
	res := store.Wrap(&printer{text: "hunter"}).Execute(context.Background(), req)
	want := "write log " + path + ": bad file descriptor"
	if res.Status != executors.Failed || res.Err == nil || !strings.Contains(res.Err.Error(), want) {
		t.Fatalf("status %s, err %v: want failed with %q", res.Status, res.Err, want)
	}
}
