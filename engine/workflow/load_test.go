package workflow

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/picoflow/picoflow/executors"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/invalid")

// TestInvalid loads every testdata/invalid/<scenario>.yaml and compares
// the full error output with <scenario>.golden.
func TestInvalid(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "invalid", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 30 {
		t.Fatalf("found %d invalid scenarios, want at least 30", len(files))
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			w, err := Load(file)
			if err == nil {
				t.Fatalf("Load succeeded, want problems (workflow %q)", w.Name)
			}
			if w != nil {
				t.Errorf("Load returned a workflow with its error")
			}
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("error is %T, want Problems", err)
			}
			for i := 1; i < len(ps); i++ {
				if ps[i].Line < ps[i-1].Line {
					t.Errorf("problems not sorted by line: %d after %d", ps[i].Line, ps[i-1].Line)
				}
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("problems differ from %s (run go test -update to accept):\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

func TestValid(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "valid", "*.y*ml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no valid scenarios")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			w, err := Load(file)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(raw)
			if w.Source != file || !bytes.Equal(w.Raw, raw) || w.Hash != hex.EncodeToString(sum[:]) {
				t.Errorf("Source/Raw/Hash = %q, %d bytes, %s; want %q, %d bytes, %x", w.Source, len(w.Raw), w.Hash, file, len(raw), sum)
			}
			checkGraph(t, w)
		})
	}
}

// checkGraph asserts the invariants of a loaded workflow's graph.
func checkGraph(t *testing.T, w *Workflow) {
	t.Helper()
	order := w.TopoOrder()
	if len(order) != len(w.Tasks) {
		t.Fatalf("TopoOrder has %d tasks, want %d", len(order), len(w.Tasks))
	}
	pos := make([]int, len(w.Tasks))
	for k, i := range order {
		pos[i] = k
	}
	for i, task := range w.Tasks {
		if j, ok := w.Index(task.Name); !ok || j != i {
			t.Errorf("Index(%q) = %d, %v; want %d", task.Name, j, ok, i)
		}
		deps := w.Deps(i)
		for k, j := range deps {
			if int(j) == i || slices.Contains(deps[:k], j) {
				t.Errorf("task %s: Deps %v repeat a task or hold itself", task.Name, deps)
			}
			if pos[j] >= pos[i] {
				t.Errorf("task %s runs before its dependency %s", task.Name, w.Tasks[j].Name)
			}
			if !slices.Contains(w.Downstream(int(j)), int32(i)) {
				t.Errorf("task %s missing from Downstream of %s", task.Name, w.Tasks[j].Name)
			}
		}
	}
}

func TestParseFull(t *testing.T) {
	w, err := Load(filepath.Join("testdata", "valid", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if w.Name != "backup-workflow" || w.Description != "Daily backup" || w.Schedule != "CRON_TZ=Europe/Berlin 0 2 * * *" {
		t.Errorf("header = %q %q %q", w.Name, w.Description, w.Schedule)
	}
	wantEnv := map[string]string{"BACKUP_DIR": "/srv/backup", "KEEP": "7", "VERBOSE": "true", "DB_PASSWORD": "${secret:db_password}"}
	if !reflect.DeepEqual(w.Env, wantEnv) {
		t.Errorf("Env = %v, want %v", w.Env, wantEnv)
	}
	wantConfig := Config{
		MaxParallel: 4, RetryDefault: 3, TimeoutDefault: 300 * time.Second,
		Backoff:       Backoff{Initial: 2 * time.Second, Multiplier: 1.5, Max: time.Minute},
		ShutdownGrace: 45 * time.Second,
	}
	if w.Config != wantConfig {
		t.Errorf("Config = %+v, want %+v", w.Config, wantConfig)
	}

	hc, dump, arch, notify := w.Tasks[0], w.Tasks[1], w.Tasks[2], w.Tasks[3]
	wantHTTP := &executors.HTTPConfig{
		URL: "https://db.example.com/health", Method: "GET",
		Headers:      map[string]string{"Authorization": "Bearer ${secret:api_token}", "X-Request-Id": "42"},
		Timeout:      5 * time.Second,
		ExpectStatus: []int{200, 204},
		Outputs:      map[string]string{"version": ".version", "first_id": ".data.items[0].id", "odd": `.["odd key"]`},
		CAFile:       "/etc/picoflow/ca.pem",
	}
	if !reflect.DeepEqual(hc.HTTP, wantHTTP) {
		t.Errorf("health_check HTTP = %+v, want %+v", hc.HTTP, wantHTTP)
	}
	if hc.Retry != 3 || hc.Timeout != 300*time.Second || !hc.Idempotent || hc.Line != 16 {
		t.Errorf("health_check retry/timeout/idempotent/line = %d %v %v %d, want defaults and line 16", hc.Retry, hc.Timeout, hc.Idempotent, hc.Line)
	}
	wantSSH := &executors.SSHConfig{
		Host: "db.example.com:2222", User: "backup", Command: "pg_dump app > /tmp/app.sql",
		IdentityFile: "/etc/picoflow/id_ed25519", Passphrase: "${secret:ssh_passphrase}",
		KnownHosts: "/etc/picoflow/known_hosts", ConnectTimeout: 10 * time.Second,
	}
	if !reflect.DeepEqual(dump.SSH, wantSSH) {
		t.Errorf("dump SSH = %+v, want %+v", dump.SSH, wantSSH)
	}
	if dump.Retry != 0 || dump.Timeout != 90*time.Minute || dump.Idempotent || !slices.Equal(w.Deps(1), []int32{0}) {
		t.Errorf("dump = retry %d timeout %v idempotent %v deps %v", dump.Retry, dump.Timeout, dump.Idempotent, w.Deps(1))
	}
	if !arch.ContinueOnFailure || arch.User != "backup" || arch.Shell.Workdir != "/tmp" || arch.Env.Get("PGHOST") != "localhost" {
		t.Errorf("Archive-Local = %+v %+v", arch, arch.Shell)
	}
	if got := arch.SecretRefs(); !slices.Equal(got, []string{"api_token"}) {
		t.Errorf("Archive-Local SecretRefs = %v", got)
	}
	if got := w.SecretRefs(); !slices.Equal(got, []string{"api_token", "db_name", "db_password", "ssh_passphrase"}) {
		t.Errorf("workflow SecretRefs = %v", got)
	}
	wantJSON := map[string]any{
		"text": "backup of ${secret:db_name} done", "count": int64(3), "ratio": 0.5, "ok": true,
		"none": nil, "tags": []any{"a", "b"}, "200": "numeric key",
	}
	if notify.HTTP.Method != "POST" || !reflect.DeepEqual(notify.HTTP.JSON, wantJSON) {
		t.Errorf("notify = %s %#v", notify.HTTP.Method, notify.HTTP.JSON)
	}
	if !slices.Equal(w.TopoOrder(), []int{0, 1, 2, 3}) || !slices.Equal(w.Deps(2), []int32{1, 0}) || !slices.Equal(w.Downstream(0), []int32{1, 2}) {
		t.Errorf("order %v, Archive-Local deps %v, health_check downstream %v", w.TopoOrder(), w.Deps(2), w.Downstream(0))
	}
	s, err := cronOf(w)
	if err != nil {
		t.Fatal(err)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone database")
	}
	next := s.Next(time.Date(2024, 6, 30, 12, 0, 0, 0, time.UTC))
	if want := time.Date(2024, 7, 1, 2, 0, 0, 0, berlin); !next.Equal(want) {
		t.Errorf("next run = %v, want %v", next, want)
	}
}

func TestParseDefaults(t *testing.T) {
	w, err := Load(filepath.Join("testdata", "valid", "minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Backoff:       Backoff{Initial: time.Second, Multiplier: 2, Max: 5 * time.Minute},
		ShutdownGrace: 30 * time.Second,
	}
	if w.Config != want {
		t.Errorf("Config = %+v, want %+v", w.Config, want)
	}
	task := w.Tasks[0]
	if task.Retry != 0 || task.Timeout != 0 || !task.Idempotent || task.ContinueOnFailure || task.Shell.Command != "echo hello" {
		t.Errorf("task = %+v", task)
	}
	if s, err := cronOf(w); s != nil || err != nil {
		t.Errorf("cronOf = %v, %v for an unscheduled workflow", s, err)
	}
}

func TestParseAnchors(t *testing.T) {
	w, err := Load(filepath.Join("testdata", "valid", "anchors.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{w.Tasks[0].Name, w.Tasks[1].Name, w.Tasks[2].Name}
	if !slices.Equal(names, []string{"first", "second", "third"}) {
		t.Fatalf("names = %v", names)
	}
	second, third := w.Tasks[1], w.Tasks[2]
	if second.Retry != 5 || second.Shell.Command != "echo second" || second.Env.Get("REGION") != "eu" {
		t.Errorf("second = retry %d command %q env %v", second.Retry, second.Shell.Command, second.Env)
	}
	if third.Retry != 1 || third.Shell.Command != "echo first" || !slices.Equal(w.Deps(2), []int32{0, 1}) {
		t.Errorf("third = retry %d command %q deps %v", third.Retry, third.Shell.Command, w.Deps(2))
	}
}

// TestParseFields covers single values through small inline workflows.
func TestParseFields(t *testing.T) {
	const head = "name: w\ntasks:\n  - name: a\n    type: shell\n    config: {command: x}\n"
	tests := []struct {
		name  string
		yaml  string
		check func(*Workflow) bool
	}{
		{"timeout seconds", head + "    timeout: 90\n", func(w *Workflow) bool { return w.Tasks[0].Timeout == 90*time.Second }},
		{"timeout string", head + "    timeout: 1h30m\n", func(w *Workflow) bool { return w.Tasks[0].Timeout == 90*time.Minute }},
		{"timeout default", "config: {timeout_default: 5m}\n" + head, func(w *Workflow) bool { return w.Tasks[0].Timeout == 5*time.Minute }},
		{"timeout none over a default", "config: {timeout_default: 5m}\n" + head + "    timeout: none\n", func(w *Workflow) bool { return w.Tasks[0].Timeout == 0 }},
		{"retry default", "config: {retry_default: 4}\n" + head, func(w *Workflow) bool { return w.Tasks[0].Retry == 4 }},
		{"retry override zero", "config: {retry_default: 4}\n" + head + "    retry: 0\n", func(w *Workflow) bool { return w.Tasks[0].Retry == 0 }},
		{"shutdown grace zero", "config: {shutdown_grace: 0}\n" + head, func(w *Workflow) bool { return w.Config.ShutdownGrace == 0 }},
		{"backoff partial", "config: {backoff: {max: 10s}}\n" + head, func(w *Workflow) bool {
			return w.Config.Backoff == Backoff{Initial: time.Second, Multiplier: 2, Max: 10 * time.Second}
		}},
		{"depends_on null", head + "    depends_on:\n", func(w *Workflow) bool { return len(w.Deps(0)) == 0 }},
		{"idempotent false", head + "    idempotent: false\n", func(w *Workflow) bool { return !w.Tasks[0].Idempotent }},
		{"schedule 6 fields", "schedule: '0 */5 * * * *'\n" + head, func(w *Workflow) bool { return w.Schedule == "0 */5 * * * *" }},
		{"schedule descriptor", "schedule: '@hourly'\n" + head, func(w *Workflow) bool { return w.Schedule == "@hourly" }},
		{"schedule every", "schedule: '@every 1h30m'\n" + head, func(w *Workflow) bool { return w.Schedule == "@every 1h30m" }},
		{"schedule utc prefix", "schedule: 'CRON_TZ=UTC @daily'\n" + head, func(w *Workflow) bool { return w.Schedule == "CRON_TZ=UTC @daily" }},
		{"ssh ipv6", "name: w\ntasks:\n  - {name: a, type: ssh, config: {host: '::1', user: u, command: c}}\n", func(w *Workflow) bool { return w.Tasks[0].SSH.Host == "::1" }},
		{"ssh ipv6 port", "name: w\ntasks:\n  - {name: a, type: ssh, config: {host: '[::1]:2222', user: u, command: c}}\n", func(w *Workflow) bool { return w.Tasks[0].SSH.Host == "[::1]:2222" }},
		{"ssh port", "name: w\ntasks:\n  - {name: a, type: ssh, config: {host: db, port: 2222, user: u, command: c}}\n", func(w *Workflow) bool { return w.Tasks[0].SSH.Port == 2222 }},
		{"ssh host ref", "name: w\ntasks:\n  - {name: a, type: ssh, config: {host: '${env:DB_HOST}', user: u, command: c}}\n", func(w *Workflow) bool { return w.Tasks[0].SSH.Host == "${env:DB_HOST}" }},
		{"http defaults", "name: w\ntasks:\n  - {name: a, type: http, config: {url: 'http://localhost:8080/x'}}\n", func(w *Workflow) bool {
			c := w.Tasks[0].HTTP
			return c.Method == "GET" && c.ExpectStatus == nil && c.JSON == nil
		}},
		{"http expect single", "name: w\ntasks:\n  - {name: a, type: http, config: {url: 'https://h', expect_status: 201}}\n", func(w *Workflow) bool {
			return slices.Equal(w.Tasks[0].HTTP.ExpectStatus, []int{201})
		}},
		{"http url ref", "name: w\ntasks:\n  - {name: a, type: http, config: {url: '${env:URL}'}}\n", func(w *Workflow) bool { return w.Tasks[0].HTTP.URL == "${env:URL}" }},
		{"shell variables left alone", head[:len(head)-len("    config: {command: x}\n")] + "    config: {command: 'echo ${HOME:-/root} ${secret:tok}'}\n", func(w *Workflow) bool {
			return slices.Equal(w.Tasks[0].SecretRefs(), []string{"tok"})
		}},
		{"crlf line endings", strings.ReplaceAll(head, "\n", "\r\n"), func(w *Workflow) bool { return w.Tasks[0].Shell.Command == "x" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := Parse("test.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatalf("Parse:\n%v\ninput:\n%s", err, tt.yaml)
			}
			if !tt.check(w) {
				t.Errorf("check failed for:\n%s", tt.yaml)
			}
		})
	}
}

func TestProblemsAreErrors(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "does-not-exist.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(err, fs.ErrNotExist) = false for %v", err)
	}
	var p Problem
	if !errors.As(err, &p) || p.File != filepath.Join("testdata", "does-not-exist.yaml") {
		t.Errorf("errors.As(err, &Problem) = %+v", p)
	}
	if got, want := err.Error(), "testdata/does-not-exist.yaml: read workflow: no such file or directory"; got != want {
		t.Errorf("err = %q, want %q", got, want)
	}
}

func TestLoadPaths(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const task = "tasks:\n  - {name: a, type: shell, config: {command: x}}\n"
	write("b.yaml", "name: beta\n"+task)
	write("a.yml", "name: alpha\n"+task)
	write("c.yaml", "name: alpha\n"+task)
	write("d.yaml", "name: broken\ntasks: []\n")
	write("notes.txt", "not a workflow")
	write("sub/e.yaml", "name: nested\n"+task) // not loaded: non-recursive
	extra := write("extra.conf", "name: extra\n"+task)

	ws, err := LoadPaths([]string{dir, filepath.Join(dir, "a.yml"), extra, filepath.Join(dir, "missing.yaml")})
	var names []string
	for _, w := range ws {
		names = append(names, w.Name)
	}
	if !slices.Equal(names, []string{"alpha", "beta", "extra"}) {
		t.Errorf("loaded %v, want alpha, beta, extra", names)
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("err = %v, want Problems", err)
	}
	got := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
	want := strings.Join([]string{
		filepath.Join(dir, "missing.yaml") + ": load workflows: no such file or directory",
		`c.yaml:1:7: name: workflow name "alpha" is already declared in ` + filepath.Join(dir, "a.yml") + ` (hint: workflow names must be unique)`,
		`d.yaml:2:8: tasks: no tasks (hint: a workflow needs at least one task)`,
	}, "\n")
	want = strings.ReplaceAll(want, dir+string(filepath.Separator), "")
	if got != want {
		t.Errorf("problems:\n%s\nwant:\n%s", got, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(err, fs.ErrNotExist) = false")
	}

	empty := t.TempDir()
	if _, err := LoadPaths([]string{empty}); err == nil || !strings.Contains(err.Error(), "no workflow files") {
		t.Errorf("empty dir: err = %v", err)
	}
	if ws, err := LoadPaths([]string{filepath.Join(dir, "b.yaml")}); err != nil || len(ws) != 1 {
		t.Errorf("single file: %v, %v", ws, err)
	}
}

// TestAliasBombs checks that nested aliases cannot make the loader do
// exponential work: each input must come back with problems, quickly.
func TestAliasBombs(t *testing.T) {
	// laughs defines l0 as ten items and each next level as ten aliases
	// of the previous one: l11 stands for 10^12 items.
	laughs := func(indent, item, open, close string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "%sl0: &l0 %s%s%s\n", indent, open, strings.Repeat(item+", ", 9)+item, close)
		for i := 1; i < 12; i++ {
			ref := fmt.Sprintf("*l%d", i-1)
			fmt.Fprintf(&b, "%sl%d: &l%d %s%s%s\n", indent, i, i, open, strings.Repeat(ref+", ", 9)+ref, close)
		}
		return b.String()
	}
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"json laughs", "name: x\ntasks:\n  - name: a\n    type: http\n    config:\n      url: https://x\n      json:\n" +
			laughs("        ", "x", "[", "]"), "too complex"},
		{"merge laughs", "name: x\nx-defs:\n" + laughs("  ", "{K: v}", "{<<: [", "]}") +
			"tasks:\n  - {name: a, type: shell, config: {command: x}, env: *l11}\n", "too"},
		{"recursive merge", "name: x\nx: &a {b: 1, <<: *a}\ntasks:\n  - {name: a, type: shell, config: {command: x}, env: *a}\n", "nested too deeply"},
		{"recursive json", "name: x\ntasks:\n  - {name: a, type: http, config: {url: 'https://x', json: &j [*j]}}\n", "nested more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bomb.yaml", []byte(tt.src))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestProblemJSON(t *testing.T) {
	p := Problem{File: "a.yaml", Line: 3, Column: 5, Path: "tasks[0].type", Msg: `unknown task type "shel"`, Suggest: "shell", Err: fs.ErrNotExist}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"file":"a.yaml","line":3,"column":5,"path":"tasks[0].type","message":"unknown task type \"shel\"","suggest":"shell"}`
	if string(b) != want {
		t.Errorf("json = %s, want %s", b, want)
	}
}

// globalBase is a base with every field replaced, as the cli builds it from
// a global config that sets every default.
func globalBase() Config {
	return Config{
		MaxParallel: 3, RetryDefault: 2, TimeoutDefault: time.Minute, ShutdownGrace: 10 * time.Second,
		Backoff: Backoff{Initial: 2 * time.Second, Multiplier: 3, Max: time.Minute},
	}
}

// precedenceSrc is a one-task workflow with cfg under config: and task
// among the task's keys ("" leaves either out).
func precedenceSrc(cfg, task string) []byte {
	var b strings.Builder
	b.WriteString("name: p\n")
	if cfg != "" {
		b.WriteString("config:\n  " + cfg + "\n")
	}
	b.WriteString("tasks:\n  - name: a\n    type: shell\n    config: {command: \"true\"}\n")
	if task != "" {
		b.WriteString("    " + task + "\n")
	}
	return []byte(b.String())
}

// TestParseWithPrecedence checks every field a base supplies at every
// layer: task key > workflow config > base (global defaults) > built-in.
func TestParseWithPrecedence(t *testing.T) {
	fields := []struct {
		name       string
		get        func(*Workflow) any
		file, task string // the workflow's config: entry, the task's key ("": none)
		builtin    any    // the value with neither a base nor the file
		global     any    // the value from globalBase()
		fromFile   any
		fromTask   any
	}{
		{name: "max_parallel", get: func(w *Workflow) any { return w.Config.MaxParallel },
			file: "max_parallel: 4", builtin: 0, global: 3, fromFile: 4},
		{name: "retry_default", get: func(w *Workflow) any { return w.Config.RetryDefault },
			file: "retry_default: 5", builtin: 0, global: 2, fromFile: 5},
		{name: "task retry", get: func(w *Workflow) any { return int(w.Tasks[0].Retry) },
			file: "retry_default: 5", task: "retry: 1", builtin: 0, global: 2, fromFile: 5, fromTask: 1},
		{name: "task retry zero", get: func(w *Workflow) any { return int(w.Tasks[0].Retry) },
			file: "retry_default: 0", task: "retry: 0", builtin: 0, global: 2, fromFile: 0, fromTask: 0},
		{name: "timeout_default", get: func(w *Workflow) any { return w.Config.TimeoutDefault },
			file: "timeout_default: 2m", builtin: time.Duration(0), global: time.Minute, fromFile: 2 * time.Minute},
		{name: "task timeout", get: func(w *Workflow) any { return w.Tasks[0].Timeout },
			file: "timeout_default: 2m", task: "timeout: 5s", builtin: time.Duration(0), global: time.Minute,
			fromFile: 2 * time.Minute, fromTask: 5 * time.Second},
		{name: "shutdown_grace", get: func(w *Workflow) any { return w.Config.ShutdownGrace },
			file: "shutdown_grace: 20s", builtin: DefaultShutdownGrace, global: 10 * time.Second, fromFile: 20 * time.Second},
		{name: "backoff.initial", get: func(w *Workflow) any { return w.Config.Backoff.Initial },
			file: "backoff: {initial: 3s}", builtin: DefaultBackoffInitial, global: 2 * time.Second, fromFile: 3 * time.Second},
		{name: "backoff.multiplier", get: func(w *Workflow) any { return w.Config.Backoff.Multiplier },
			file: "backoff: {multiplier: 1.5}", builtin: DefaultBackoffMultiplier, global: 3.0, fromFile: 1.5},
		{name: "backoff.max", get: func(w *Workflow) any { return w.Config.Backoff.Max },
			file: "backoff: {max: 4m}", builtin: DefaultBackoffMax, global: time.Minute, fromFile: 4 * time.Minute},
	}
	type layer struct {
		name       string
		base       Config
		file, task string
		want       any
	}
	for _, f := range fields {
		layers := []layer{
			{"built-in only", BuiltinConfig(), "", "", f.builtin},
			{"global only", globalBase(), "", "", f.global},
			{"file over built-in", BuiltinConfig(), f.file, "", f.fromFile},
			{"file over global", globalBase(), f.file, "", f.fromFile},
		}
		if f.task != "" {
			layers = append(layers,
				layer{"task over both", globalBase(), f.file, f.task, f.fromTask},
				layer{"task over global", globalBase(), "", f.task, f.fromTask})
		}
		for _, l := range layers {
			t.Run(f.name+"/"+l.name, func(t *testing.T) {
				w, err := ParseWith("p.yaml", precedenceSrc(l.file, l.task), l.base)
				if err != nil {
					t.Fatal(err)
				}
				if got := f.get(w); got != l.want {
					t.Errorf("got %v (%T), want %v (%T)", got, got, l.want, l.want)
				}
			})
		}
	}
}

// TestParseIsBuiltin checks that Parse, Load and LoadPaths are their With
// forms over BuiltinConfig, and that LoadWith and LoadPathsWith pass the
// base on.
func TestParseIsBuiltin(t *testing.T) {
	src := precedenceSrc("", "")
	w, err := Parse("p.yaml", src)
	if err != nil {
		t.Fatal(err)
	}
	if w.Config != BuiltinConfig() {
		t.Errorf("Parse: Config = %+v, want %+v", w.Config, BuiltinConfig())
	}
	path := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if w, err := LoadWith(path, globalBase()); err != nil || w.Config != globalBase() || w.Tasks[0].Retry != 2 {
		t.Errorf("LoadWith: %+v, %v", w, err)
	}
	ws, err := LoadPathsWith([]string{filepath.Dir(path)}, globalBase())
	if err != nil || len(ws) != 1 || ws[0].Config != globalBase() {
		t.Errorf("LoadPathsWith: %v, %v", ws, err)
	}
	if w, err := Load(path); err != nil || w.Config != BuiltinConfig() {
		t.Errorf("Load: %+v, %v", w, err)
	}
}

// TestBackoffConflict checks that backoff max >= initial holds for the
// effective values, and that the problem names where each came from.
func TestBackoffConflict(t *testing.T) {
	withBackoff := func(initial, max time.Duration) Config {
		c := BuiltinConfig()
		if initial > 0 {
			c.Backoff.Initial = initial
		}
		if max > 0 {
			c.Backoff.Max = max
		}
		return c
	}
	const globalHint = " (hint: max caps the delay and must be at least initial; set both in this workflow's config.backoff, or change defaults.backoff in the global config)"
	const hint = " (hint: max caps the delay and must be at least initial)"
	tests := []struct {
		name string
		base Config
		cfg  string
		want string // "" = valid
	}{
		{name: "file both", base: BuiltinConfig(), cfg: "backoff: {initial: 2m, max: 1m}",
			want: "p.yaml:3:31: config.backoff.max: max 1m0s is less than initial 2m0s" + hint},
		{name: "file initial over built-in max", base: BuiltinConfig(), cfg: "backoff: {initial: 10m}",
			want: "p.yaml:3:12: config.backoff.max: the default max 5m0s is less than initial 10m0s" + hint},
		{name: "file max under built-in initial", base: BuiltinConfig(), cfg: "backoff: {max: 500ms}",
			want: "p.yaml:3:18: config.backoff.max: max 500ms is less than the default initial 1s" + hint},
		{name: "file initial over global max", base: withBackoff(0, time.Minute), cfg: "backoff: {initial: 2m}",
			want: "p.yaml:3:12: config.backoff.max: the global default max 1m0s is less than initial 2m0s" + globalHint},
		{name: "file max under global initial", base: withBackoff(10*time.Minute, time.Hour), cfg: "backoff: {max: 1m}",
			want: "p.yaml:3:18: config.backoff.max: max 1m0s is less than the global default initial 10m0s" + globalHint},
		{name: "global initial over built-in max, no config", base: withBackoff(10*time.Minute, 0),
			want: "p.yaml:1:1: config.backoff.max: the default max 5m0s is less than the global default initial 10m0s" + globalHint},
		{name: "global initial over built-in max, config without backoff", base: withBackoff(10*time.Minute, 0), cfg: "retry_default: 1",
			want: "p.yaml:3:3: config.backoff.max: the default max 5m0s is less than the global default initial 10m0s" + globalHint},
		{name: "file max fixes global initial", base: withBackoff(10*time.Minute, 0), cfg: "backoff: {max: 20m}"},
		{name: "file initial fixes global max", base: withBackoff(0, 500*time.Millisecond), cfg: "backoff: {initial: 100ms}"},
		{name: "global both", base: withBackoff(2*time.Second, time.Minute)},
		{name: "bad file value is not compared", base: BuiltinConfig(), cfg: "backoff: {initial: 10m, max: soon}",
			want: `p.yaml:3:32: config.backoff.max: invalid duration "soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseWith("p.yaml", precedenceSrc(tt.cfg, ""), tt.base)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if tt.want == "" && got != "" || !strings.HasPrefix(got, tt.want) || strings.Contains(got, "\n") {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// TestLoadFileSizeCap refuses a workflow file over the limit of its base,
// or over DefaultMaxFileSize when the base sets none, before parsing it.
func TestLoadFileSizeCap(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small.yaml")
	body := "name: capped\ntasks:\n  - name: a\n    type: shell\n    config: {command: \"echo a\"}\n"
	if err := os.WriteFile(small, []byte(body+"# "+strings.Repeat("x", 2000)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte(body+"# "+strings.Repeat("x", DefaultMaxFileSize)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		path  string
		limit int64
		ok    bool
	}{
		{"default allows a small file", small, 0, true},
		{"default refuses over 1 MiB", big, 0, false},
		{"configured limit refuses", small, 1024, false},
		{"configured limit allows", big, 2 << 20, true},
	} {
		base := BuiltinConfig()
		base.MaxFileSize = tc.limit
		_, err := LoadWith(tc.path, base)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "resources.max_workflow_file") {
			t.Errorf("%s: the error does not name the setting: %v", tc.name, err)
		}
	}
}

// TestTimeoutNoneOverGlobalDefault switches off a global default timeout
// in a workflow (timeout_default: none) and in a task (timeout: none).
func TestTimeoutNoneOverGlobalDefault(t *testing.T) {
	base := BuiltinConfig()
	base.TimeoutDefault = time.Hour
	for name, src := range map[string]string{
		"workflow": "name: w\nconfig: {timeout_default: none}\ntasks:\n  - {name: a, type: shell, config: {command: c}}\n",
		"task":     "name: w\ntasks:\n  - {name: a, type: shell, timeout: none, config: {command: c}}\n",
	} {
		w, err := ParseWith("w.yaml", []byte(src), base)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if w.Tasks[0].Timeout != 0 {
			t.Errorf("%s: timeout %s, want none", name, w.Tasks[0].Timeout)
		}
	}
}

// TestShellCommandLength: the longest command a shell can be given passes;
// one byte more is a problem at the command's line, with a hint.
func TestShellCommandLength(t *testing.T) {
	doc := func(n int) []byte {
		return []byte("name: long\ntasks:\n  - name: a\n    type: shell\n    config:\n      command: " +
			strings.Repeat("x", n) + "\n")
	}
	if _, err := Parse("long.yaml", doc(executors.MaxShellCommand)); err != nil {
		t.Fatalf("a %d-byte command: %v", executors.MaxShellCommand, err)
	}
	_, err := Parse("long.yaml", doc(executors.MaxShellCommand+1))
	want := fmt.Sprintf("long.yaml:6:16: tasks[0].config.command: command is %d bytes; the most Linux passes to a shell is %d (hint: put the script in a file and run that file)",
		executors.MaxShellCommand+1, executors.MaxShellCommand)
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}
