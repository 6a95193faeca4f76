package config

import (
	"fmt"
	"github.com/picoflow/picoflow/engine/yamlcheck"
	"github.com/picoflow/picoflow/executors"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder is the validation layer shared with workflow files
// (engine/yamlcheck.Decoder: the problem list, node helpers, the alias
// budget, merge keys, did-you-mean) and the config's own value checks.
type decoder struct {
	yamlcheck.Decoder
}

// mapping calls fn for each entry of the mapping n whose key is in keys,
// in order, reporting what Mapping reports (not a mapping, duplicate and
// unknown keys). An empty value ("log:") is an empty section.
func (d *decoder) mapping(n *yaml.Node, path string, keys []string, fn func(key string, k, v *yaml.Node)) {
	if isNull(n) {
		return
	}
	f, _ := d.Mapping(n, path, keys, nil)
	for _, e := range f.List {
		fn(e.Name, e.Key, yamlcheck.Resolve(e.Val))
	}
}

// entries calls fn for each entry of the mapping n, whatever its key.
func (d *decoder) entries(n *yaml.Node, path string, fn func(name string, k, v *yaml.Node)) {
	if isNull(n) {
		return
	}
	list, _ := d.Entries(n, path)
	for _, e := range list {
		fn(e.Name, e.Key, yamlcheck.Resolve(e.Val))
	}
}

func isNull(n *yaml.Node) bool {
	r := yamlcheck.Resolve(n)
	return r == nil || r.Kind == yaml.ScalarNode && r.ShortTag() == "!!null"
}

// scalar returns the text of a non-null scalar.
func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	r, ok := d.Scalar(n, path, want)
	if !ok {
		return "", false
	}
	return r.Value, true
}

// integer decodes an integer of at least lo.
func (d *decoder) integer(n *yaml.Node, path string, lo int) (int, bool) {
	v, ok := d.Integer(n, path)
	if ok && v < lo {
		d.Errorf(n, path, "must be at least %d, got %d", lo, v)
		return 0, false
	}
	return v, ok
}

// duration accepts a Go duration ("90s", "5m", "1h30m") or a number of
// seconds.
func (d *decoder) duration(n *yaml.Node, path string) (time.Duration, bool) {
	s, ok := d.scalar(n, path, "a duration")
	if !ok {
		return 0, false
	}
	if n.ShortTag() == "!!int" {
		secs, err := strconv.Atoi(s)
		if err == nil && secs >= 0 && secs <= math.MaxInt32 {
			return time.Duration(secs) * time.Second, true
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.Report(n, path, Problem{Msg: fmt.Sprintf("invalid duration %q", s), Hint: `a number of seconds, or a duration such as "90s", "5m", "1h30m"`})
		return 0, false
	}
	if v < 0 {
		d.Errorf(n, path, "must not be negative, got %s", s)
		return 0, false
	}
	return v, true
}

func (d *decoder) absPath(n *yaml.Node, path string) (string, bool) {
	s, ok := d.Text(n, path)
	if ok && !filepath.IsAbs(s) {
		d.Errorf(n, path, "want an absolute path, got %q", s)
		return "", false
	}
	return filepath.Clean(s), ok
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1},
}

// size accepts a byte count or a number with a unit: 64MiB, 512MB, 1G.
// sizeAtLeast is size, with a problem (and hint) below min bytes.
func (d *decoder) sizeAtLeast(n *yaml.Node, path string, min int64, hint string) (int64, bool) {
	b, ok := d.size(n, path)
	if ok && b < min {
		d.Report(n, path, Problem{Msg: fmt.Sprintf("%d bytes is too small", b), Hint: hint})
		return 0, false
	}
	return b, ok
}

func (d *decoder) size(n *yaml.Node, path string) (int64, bool) {
	s, ok := d.scalar(n, path, "a size")
	if !ok {
		return 0, false
	}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || v*float64(mult) > math.MaxInt64/2 {
		d.Report(n, path, Problem{Msg: fmt.Sprintf("invalid size %q", s), Hint: "bytes, or a number with KiB, MiB, GiB (or KB, MB, GB)"})
		return 0, false
	}
	return int64(v * float64(mult)), true
}

// config decodes the top level.
func (d *decoder) config(n *yaml.Node, c *Config) {
	d.mapping(n, "", []string{"defaults", "paths", "log", "retention", "resources", "http", "ui", "secrets"},
		func(key string, k, v *yaml.Node) {
			switch key {
			case "defaults":
				d.defaults(v, key, &c.Defaults)
			case "paths":
				d.paths(v, key, &c.Paths)
			case "log":
				d.log(v, key, &c.Log)
			case "retention":
				d.retention(v, key, &c.Retention)
			case "resources":
				d.resources(v, key, &c.Resources)
			case "http":
				d.http(v, key, &c.HTTP)
			case "ui":
				d.ui(v, key, &c.UI)
			case "secrets":
				d.secrets(v, key, c.Secrets)
			}
		})
}

func (d *decoder) defaults(n *yaml.Node, path string, c *Defaults) {
	d.mapping(n, path, []string{"max_parallel", "retry", "timeout", "shutdown_grace", "backoff"}, func(key string, k, v *yaml.Node) {
		p := yamlcheck.Join(path, key)
		switch key {
		case "max_parallel":
			c.MaxParallel, _ = d.integer(v, p, 1)
		case "retry":
			c.Retry, _ = d.integer(v, p, 0)
		case "timeout":
			c.Timeout, _ = d.duration(v, p)
		case "shutdown_grace":
			c.ShutdownGrace, _ = d.duration(v, p)
		case "backoff":
			d.backoff(v, p, &c.Backoff)
		}
	})
}

func (d *decoder) backoff(n *yaml.Node, path string, b *Backoff) {
	var maxNode *yaml.Node
	d.mapping(n, path, []string{"initial", "multiplier", "max"}, func(key string, k, v *yaml.Node) {
		p := yamlcheck.Join(path, key)
		switch key {
		case "initial":
			b.Initial, _ = d.duration(v, p)
		case "max":
			b.Max, _ = d.duration(v, p)
			maxNode = v
		case "multiplier":
			s, ok := d.scalar(v, p, "a number")
			if !ok {
				return
			}
			f, err := strconv.ParseFloat(s, 64)
			switch {
			case err != nil || (v.ShortTag() != "!!float" && v.ShortTag() != "!!int"):
				d.Errorf(v, p, "want a number, got %s", yamlcheck.Describe(v))
			case f < 1 || f > 100:
				d.Report(v, p, Problem{Msg: fmt.Sprintf("must be between 1 and 100, got %s", s),
					Hint: "1 keeps the delay constant; 2 doubles it on every retry"})
			default:
				b.Multiplier = f
			}
		}
	})
	if b.Max > 0 && b.Initial > b.Max {
		d.Errorf(maxNode, yamlcheck.Join(path, "max"), "must not be less than initial (%s), got %s", b.Initial, b.Max)
	}
}

func (d *decoder) paths(n *yaml.Node, path string, p *Paths) {
	d.mapping(n, path, []string{"home", "logs", "workflows_dir"}, func(key string, k, v *yaml.Node) {
		switch key {
		case "home":
			p.Home, _ = d.absPath(v, yamlcheck.Join(path, key))
		case "logs":
			p.Logs, _ = d.absPath(v, yamlcheck.Join(path, key))
		case "workflows_dir":
			p.WorkflowsDir, _ = d.absPath(v, yamlcheck.Join(path, key))
		}
	})
}

func (d *decoder) log(n *yaml.Node, path string, l *Log) {
	d.mapping(n, path, []string{"format"}, func(key string, k, v *yaml.Node) {
		s, ok := d.Text(v, yamlcheck.Join(path, key))
		if !ok {
			return
		}
		if s != "text" && s != "json" {
			d.Report(v, yamlcheck.Join(path, key), Problem{Msg: fmt.Sprintf("must be text or json, got %q", s),
				Suggest: yamlcheck.Suggest(s, []string{"text", "json"})})
			return
		}
		l.Format = s
	})
}

func (d *decoder) retention(n *yaml.Node, path string, r *Retention) {
	var logNode *yaml.Node
	d.mapping(n, path, []string{"history_days", "max_runs_per_workflow", "log_days"}, func(key string, k, v *yaml.Node) {
		p := yamlcheck.Join(path, key)
		switch key {
		case "history_days":
			if days, ok := d.integer(v, p, 1); ok {
				r.HistoryDays = days
			}
		case "max_runs_per_workflow":
			r.MaxRunsPerWorkflow, _ = d.integer(v, p, 0)
		case "log_days":
			r.LogDays, _ = d.integer(v, p, 0)
			logNode = v
		}
	})
	if r.LogDays > r.HistoryDays {
		d.Report(logNode, yamlcheck.Join(path, "log_days"), Problem{
			Msg:  fmt.Sprintf("is more than history_days (%d): logs go with their runs", r.HistoryDays),
			Hint: "leave log_days out, or make it smaller than history_days"})
	}
}

func (d *decoder) resources(n *yaml.Node, path string, r *Resources) {
	d.mapping(n, path, []string{"memory_limit", "gogc", "max_workflow_file", "sync_window"}, func(key string, k, v *yaml.Node) {
		p := yamlcheck.Join(path, key)
		switch key {
		case "memory_limit":
			if b, ok := d.sizeAtLeast(v, p, 8<<20, "at least 8MiB; the limit is soft, for Go's heap"); ok {
				r.MemoryLimit = b
			}
		case "max_workflow_file":
			if b, ok := d.sizeAtLeast(v, p, 1<<10, "at least 1KiB; the default is 1MiB"); ok {
				r.MaxWorkflowFile = b
			}
		case "sync_window":
			r.SyncWindow = d.syncWindow(v, p)
		case "gogc":
			if v.Kind == yaml.ScalarNode && v.Value == "off" {
				r.GOGC = -1
				return
			}
			if g, ok := d.integer(v, p, 1); ok {
				r.GOGC = g
			}
		}
	})
}

// syncWindow decodes resources.sync_window: a duration of 0..1s, 0 stored
// as -1 (Resources.SyncWindow).
func (d *decoder) syncWindow(v *yaml.Node, p string) time.Duration {
	w, ok := d.duration(v, p)
	switch {
	case !ok:
		return 0
	case w > MaxSyncWindow:
		d.Report(v, p, Problem{Msg: fmt.Sprintf("is %s, more than %s", w, MaxSyncWindow),
			Hint: "the longest a finished task's end may stay not durable; the default is 10ms, 0 fsyncs every batch"})
		return 0
	case w == 0:
		return -1
	}
	return w
}

func (d *decoder) http(n *yaml.Node, path string, h *HTTP) {
	d.mapping(n, path, []string{"listen"}, func(key string, k, v *yaml.Node) {
		p := yamlcheck.Join(path, key)
		s, ok := d.Text(v, p)
		if !ok {
			return
		}
		i := strings.LastIndexByte(s, ':')
		port, err := strconv.Atoi(s[i+1:])
		if i < 0 || err != nil || port < 1 || port > 65535 {
			d.Report(v, p, Problem{Msg: fmt.Sprintf("want HOST:PORT, got %q", s), Hint: "for example 127.0.0.1:9090"})
			return
		}
		h.Listen = s
	})
}

func (d *decoder) ui(n *yaml.Node, path string, u *UI) {
	d.mapping(n, path, []string{"token"}, func(key string, k, v *yaml.Node) {
		p := yamlcheck.Join(path, key)
		s, ok := d.Text(v, p)
		if !ok {
			return
		}
		if len(s) < MinTokenLen {
			d.Report(v, p, Problem{Msg: fmt.Sprintf("too short: %d characters, want at least %d", len(s), MinTokenLen),
				Hint: "a random one: openssl rand -hex 16"})
			return
		}
		u.Token = s
	})
}

func (d *decoder) secrets(n *yaml.Node, path string, out map[string]Secret) {
	d.entries(n, path, func(name string, k, v *yaml.Node) {
		p := yamlcheck.Join(path, name)
		if !executors.ValidEnvName(name) {
			d.Errorf(k, p, "secret names are letters, digits and '_', not starting with a digit")
			return
		}
		s := Secret{Line: k.Line}
		var set []string
		before := len(d.Probs)
		d.mapping(v, p, []string{"env", "file"}, func(key string, _, v *yaml.Node) {
			set = append(set, key)
			switch key {
			case "env":
				if e, ok := d.Text(v, yamlcheck.Join(p, key)); ok {
					if !executors.ValidEnvName(e) {
						d.Errorf(v, yamlcheck.Join(p, key), "%q is not an environment variable name", e)
					}
					s.Env = e
				}
			case "file":
				s.File, _ = d.absPath(v, yamlcheck.Join(p, key))
			}
		})
		switch {
		case len(d.Probs) > before:
			return // reported by mapping
		case len(set) == 0:
			d.Report(v, p, Problem{Msg: "set one of env or file", Hint: "{env: VAR} or {file: /path}"})
			return
		case len(set) > 1:
			d.Errorf(v, p, "set only one of env or file")
			return
		}
		out[name] = s
	})
}
