package shell

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// dedupEnvMap is os/exec's deduplication (dedupEnvCase, case-sensitive,
// NUL refused), written out: the reference dedupEnv is held to.
func dedupEnvMap(env []string) ([]string, bool) {
	out := make([]string, 0, len(env))
	saw := make(map[string]bool, len(env))
	for n := len(env); n > 0; n-- {
		kv := env[n-1]
		if strings.IndexByte(kv, 0) != -1 {
			return nil, false
		}
		i := strings.Index(kv, "=")
		if i == 0 {
			i = strings.Index(kv[1:], "=") + 1
		}
		if i < 0 {
			if kv != "" {
				out = append(out, kv)
			}
			continue
		}
		if k := kv[:i]; !saw[k] {
			saw[k] = true
			out = append(out, kv)
		}
	}
	slices.Reverse(out)
	return out, true
}

// TestDedupEnv: dedupEnv keeps what os/exec keeps, in its order, and
// refuses what it refuses, on its quick path (no key twice) and off it.
func TestDedupEnv(t *testing.T) {
	many := make([]string, 0, maxQuickEnv+2)
	for i := range maxQuickEnv + 1 {
		many = append(many, "K"+strings.Repeat("x", i)+"=v")
	}
	cases := map[string][]string{
		"none":                 nil,
		"unique":               {"A=1", "B=2", "PICOFLOW_TASK=t"},
		"last-wins":            {"A=1", "B=2", "A=3"},
		"picoflow-in-picoflow": append(slices.Clone(os.Environ()), "PICOFLOW_TASK=outer", "PICOFLOW_TASK=inner"),
		"empty-entry":          {"A=1", "", "B=2"},
		"no-equals":            {"A=1", "JUNK", "JUNK", "A=2"},
		"windows-keys":         {"=C:=C:\\", "=D:=D:\\", "=C:=E:\\", "=", "=x"},
		"empty-value":          {"A=", "A=1", "B="},
		"prefix-keys":          {"AB=1", "A=2", "ABC=3", "A=4"},
		"nul":                  {"A=1", "B=2\x00x"},
		"nul-in-dup":           {"A=1", "A=\x00"},
		"many":                 many,
		"many-dup":             append(slices.Clone(many), "K=w", "Kx=w"),
	}
	for name, env := range cases {
		t.Run(name, func(t *testing.T) {
			want, ok := dedupEnvMap(env)
			got, err := dedupEnv(env)
			if (err == nil) != ok || !slices.Equal(got, want) {
				t.Errorf("dedupEnv(%q) = %q, %v; os/exec keeps %q (ok %v)", env, got, err, want, ok)
			}
		})
	}
}

// BenchmarkDedupEnv: the environment of a task, PICOFLOW's own plus its
// variables, no key twice.
func BenchmarkDedupEnv(b *testing.B) {
	env := append(os.Environ(), "PICOFLOW_RUN_ID=r", "PICOFLOW_WORKFLOW=w", "PICOFLOW_TASK=t",
		"PICOFLOW_ATTEMPT=1", "PICOFLOW_OUTPUT=/x/y")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dedupEnv(env); err != nil {
			b.Fatal(err)
		}
	}
}
