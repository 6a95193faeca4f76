package cli

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// examplesDir holds the real-world workflows of the repository (examples/).
const examplesDir = "../examples"

// networkMarker is the comment line that marks an example needing the
// network; every other example runs end to end in TestExamplesRun.
const networkMarker = "# Needs: network"

// TestExamplesValidate checks every example with picoflow validate.
func TestExamplesValidate(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	if len(files) < 15 {
		t.Fatalf("%d examples in %s, want at least 15", len(files), examplesDir)
	}
	r := pf(t, t.TempDir(), "validate", examplesDir)
	if r.code != 0 || strings.Count(r.stdout, "ok  ") != len(files) {
		t.Fatalf("validate examples: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// exampleCase runs one example: setup prepares a scratch directory and
// returns the --param values, check looks at what the run left.
type exampleCase struct {
	setup func(t *testing.T, dir string) []string
	runs  []int // exit code of each run (default: one run, 0)
	check func(t *testing.T, dir string)
}

var exampleCases = map[string]exampleCase{
	"backup-rotate": {
		setup: func(t *testing.T, dir string) []string {
			write(t, filepath.Join(dir, "src", "a.txt"), "alpha\n")
			write(t, filepath.Join(dir, "src", "sub", "b.txt"), "beta\n")
			for _, old := range []string{"20200101T000000Z", "20200102T000000Z", "20200103T000000Z"} {
				write(t, filepath.Join(dir, "bk", "backup-"+old+".tar.gz"), "old")
			}
			return []string{"SRC_DIR=" + filepath.Join(dir, "src"), "BACKUP_DIR=" + filepath.Join(dir, "bk"), "KEEP=2"}
		},
		check: func(t *testing.T, dir string) {
			got, _ := filepath.Glob(filepath.Join(dir, "bk", "backup-*.tar.gz"))
			if len(got) != 2 || !strings.HasSuffix(got[0], "20200103T000000Z.tar.gz") {
				t.Errorf("archives after rotation: %q, want the newest old one and today's", got)
			}
		},
	},
	"cert-expiry-check": {
		setup: func(t *testing.T, dir string) []string {
			openssl(t, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
				"-subj", "/CN=test", "-keyout", filepath.Join(dir, "key.pem"), "-out", filepath.Join(dir, "cert.pem"))
			return []string{"CERT_FILE=" + filepath.Join(dir, "cert.pem"), "DAYS=21",
				"RENEW_COMMAND=touch " + filepath.Join(dir, "renewed"), "RELOAD_COMMAND=true"}
		},
		check: func(t *testing.T, dir string) {
			if !exists_(filepath.Join(dir, "renewed")) {
				t.Error("a certificate expiring in 2 days was not renewed")
			}
		},
	},
	"config-drift-check": {
		setup: func(t *testing.T, dir string) []string {
			write(t, filepath.Join(dir, "a.conf"), "a=1\n")
			write(t, filepath.Join(dir, "b.conf"), "b=1\n")
			return []string{"FILES=" + filepath.Join(dir, "a.conf") + " " + filepath.Join(dir, "b.conf"), "STATE=" + filepath.Join(dir, "state")}
		},
		runs: []int{ExitOK, ExitOK, ExitFailed}, // baseline, no drift, then drift (written by check)
	},
	"csv-aggregate": {
		setup: func(t *testing.T, dir string) []string {
			write(t, filepath.Join(dir, "in.csv"), "2026-01-01T00:00:00Z,cpu,41000\n2026-01-01T00:05:00Z,cpu,43000\n2026-01-01T00:05:00Z,board,30000\n")
			return []string{"INPUT=" + filepath.Join(dir, "in.csv"), "OUT_DIR=" + filepath.Join(dir, "daily")}
		},
		check: func(t *testing.T, dir string) {
			sums, _ := filepath.Glob(filepath.Join(dir, "daily", "summary-*.csv"))
			if len(sums) != 1 {
				t.Fatalf("summaries: %q", sums)
			}
			b, _ := os.ReadFile(sums[0])
			if !strings.Contains(string(b), "cpu,2,41000,43000,42000.00") || !strings.Contains(string(b), "board,1,") {
				t.Errorf("summary:\n%s", b)
			}
		},
	},
	"disk-space-alert": {
		setup: func(t *testing.T, dir string) []string {
			return []string{"MOUNT=" + dir, "THRESHOLD=101"} // never reached: no webhook call
		},
	},
	"log-cleanup": {
		setup: func(t *testing.T, dir string) []string {
			old := filepath.Join(dir, "logs", "old", "app.log.1")
			write(t, old, "old\n")
			write(t, filepath.Join(dir, "logs", "app.log"), "new\n")
			past := time.Now().Add(-30 * 24 * time.Hour)
			if err := os.Chtimes(old, past, past); err != nil {
				t.Fatal(err)
			}
			return []string{"LOG_DIR=" + filepath.Join(dir, "logs"), "DAYS=14"}
		},
		check: func(t *testing.T, dir string) {
			if exists_(filepath.Join(dir, "logs", "old")) || !exists_(filepath.Join(dir, "logs", "app.log")) {
				t.Error("log-cleanup removed the wrong files")
			}
		},
	},
	"sqlite-maintenance": {
		setup: func(t *testing.T, dir string) []string {
			db := filepath.Join(dir, "app.db")
			sqlite(t, db, "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (randomblob(10000)); DELETE FROM t;")
			return []string{"DB=" + db}
		},
	},
	"system-report": {
		setup: func(t *testing.T, dir string) []string { return []string{"REPORT_DIR=" + dir} },
		check: func(t *testing.T, dir string) {
			got, _ := filepath.Glob(filepath.Join(dir, "report-*.txt"))
			if len(got) != 1 {
				t.Fatalf("reports: %q", got)
			}
			if b, _ := os.ReadFile(got[0]); !bytes.Contains(b, []byte("MemTotal")) {
				t.Errorf("report:\n%s", b)
			}
		},
	},
}

// TestExamplesRun runs every example that needs no network end to end with
// the real binary, its paths pointed into a scratch directory by --param.
func TestExamplesRun(t *testing.T) {
	bin := testBinary(t)
	files, _ := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		tc, ok := exampleCases[name]
		network := bytes.Contains(src, []byte("\n"+networkMarker))
		switch {
		case network && ok:
			t.Errorf("%s: marked %q but has an end-to-end case", name, networkMarker)
			continue
		case network:
			continue
		case !ok:
			t.Errorf("%s: needs no network (no %q line) but has no end-to-end case in exampleCases", name, networkMarker)
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runExample(t, bin, f, tc)
		})
	}
}

func runExample(t *testing.T, bin, file string, tc exampleCase) {
	dir, home := t.TempDir(), t.TempDir()
	// The secrets the examples name, declared so that they resolve.
	cfg := filepath.Join(home, "config.yaml")
	write(t, cfg, "secrets:\n  chat_webhook_url: {env: PICOFLOW_TEST_WEBHOOK}\n")
	args := []string{"run", "--home", home, "--config", cfg}
	for _, p := range tc.setup(t, dir) {
		args = append(args, "--param", p)
	}
	args = append(args, file)
	runs := tc.runs
	if runs == nil {
		runs = []int{ExitOK}
	}
	for i, want := range runs {
		if i == len(runs)-1 && want == ExitFailed {
			write(t, filepath.Join(dir, "a.conf"), "a=2\n") // config-drift-check: drift
		}
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "PICOFLOW_HOME=", "PICOFLOW_CONFIG=", "PICOFLOW_TEST_WEBHOOK=http://127.0.0.1:9/unused")
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != want {
			t.Fatalf("run %d: exit %d, want %d\n%s", i+1, code, want, out)
		}
	}
	if tc.check != nil {
		tc.check(t, dir)
	}
}

func openssl(t *testing.T, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("no openssl")
	}
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
}

func sqlite(t *testing.T, db, sql string) {
	t.Helper()
	bin, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Skip("no sqlite3 (scripts/deps.sh installs it)")
	}
	if out, err := exec.Command(bin, db, sql).CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v\n%s", err, out)
	}
}
