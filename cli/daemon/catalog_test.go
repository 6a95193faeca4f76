package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/picoflow/picoflow/engine/workflow"
)

// TestCatalogDefaults checks that the catalog loads files over its base
// (the global defaults) and that a file's own config wins over it.
func TestCatalogDefaults(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"plain.yaml": "name: plain\ntasks:\n  - {name: a, type: shell, config: {command: x}}\n",
		"own.yaml":   "name: own\nconfig: {retry_default: 1, shutdown_grace: 5s}\ntasks:\n  - {name: a, type: shell, config: {command: x}}\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := workflow.BuiltinConfig()
	base.RetryDefault, base.ShutdownGrace = 2, time.Minute
	c := newCatalog(dir, base, slog.New(slog.DiscardHandler))
	if _, failed, err := c.scan(true); err != nil || failed != 0 {
		t.Fatalf("scan: %d failed, %v", failed, err)
	}
	wfs := c.workflows()
	tests := []struct {
		workflow string
		retry    int
		grace    time.Duration
	}{
		{"plain", 2, time.Minute},
		{"own", 1, 5 * time.Second},
	}
	for _, tt := range tests {
		wf := wfs[tt.workflow]
		if wf == nil {
			t.Fatalf("%s not loaded", tt.workflow)
		}
		if int(wf.Tasks[0].Retry) != tt.retry || wf.Config.ShutdownGrace != tt.grace {
			t.Errorf("%s: retry %d, grace %s; want %d, %s", tt.workflow, wf.Tasks[0].Retry, wf.Config.ShutdownGrace, tt.retry, tt.grace)
		}
	}
}
