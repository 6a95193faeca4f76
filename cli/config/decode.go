package config

import (
	"errors"
	"fmt"
	"github.com/picoflow/picoflow/engine/yamlcheck"
	"github.com/picoflow/picoflow/executors"
	"math"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decoder walks a yaml.Node tree and records every problem it meets.
type decoder struct {
	file  string
	probs Problems
}

func (d *decoder) problem(n *yaml.Node, path string, p Problem) {
	p.File, p.Path = d.file, path
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	d.probs = append(d.probs, p)
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.problem(n, path, Problem{Msg: fmt.Sprintf(format, args...)})
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntax turns a YAML parse error into problems with line numbers.
func (d *decoder) syntax(err error) {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	for _, m := range msgs {
		p := Problem{File: d.file, Msg: strings.TrimPrefix(m, "yaml: ")}
		if g := yamlLine.FindStringSubmatch(m); g != nil {
			p.Line, _ = strconv.Atoi(g[1])
			p.Msg = g[2]
		}
		d.probs = append(d.probs, p)
	}
}

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 8; i++ {
		n = n.Alias
	}
	return n
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// describe names a node's kind for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
	default:
		return "an alias"
	}
	switch n.ShortTag() {
	case "!!null":
		return "an empty value"
	case "!!str":
		return strconv.Quote(n.Value)
	}
	return n.Value
}

// mapping calls fn for each entry of the mapping n whose key is in keys,
// reporting duplicates and unknown keys (with a suggestion).
func (d *decoder) mapping(n *yaml.Node, path string, keys []string, fn func(key string, k, v *yaml.Node)) {
	d.entries(n, path, func(name string, k, v *yaml.Node) {
		for _, known := range keys {
			if name == known {
				fn(name, k, v)
				return
			}
		}
		d.problem(k, join(path, name), Problem{Msg: fmt.Sprintf("unknown key %q", name), Suggest: suggest(name, keys)})
	})
}

// entries calls fn for each entry of the mapping n, reporting a node that
// is not a mapping and duplicate keys.
func (d *decoder) entries(n *yaml.Node, path string, fn func(name string, k, v *yaml.Node)) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		if n.ShortTag() != "!!null" {
			d.errorf(n, path, "want a mapping, got %s", describe(n))
		}
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "keys must be strings, got %s", describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, join(path, k.Value), "duplicate key %q (first defined at line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		fn(k.Value, k, resolve(v))
	}
}

func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		d.errorf(n, path, "want %s, got %s", want, describe(n))
		return "", false
	}
	return n.Value, true
}

func (d *decoder) integer(n *yaml.Node, path string, lo int) (int, bool) {
	s, ok := d.scalar(n, path, "an integer")
	if !ok {
		return 0, false
	}
	v, err := strconv.Atoi(s)
	if err != nil || n.ShortTag() != "!!int" {
		d.errorf(n, path, "want an integer, got %s", describe(n))
		return 0, false
	}
	if v < lo {
		d.errorf(n, path, "must be at least %d, got %d", lo, v)
		return 0, false
	}
	return v, true
}

func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	s, ok := d.scalar(n, path, "a string")
	if ok && s == "" {
		d.errorf(n, path, "must not be empty")
		return "", false
	}
	return s, ok
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
		d.problem(n, path, Problem{Msg: fmt.Sprintf("invalid duration %q", s), Hint: `a number of seconds, or a duration such as "90s", "5m", "1h30m"`})
		return 0, false
	}
	if v < 0 {
		d.errorf(n, path, "must not be negative, got %s", s)
		return 0, false
	}
	return v, true
}

func (d *decoder) absPath(n *yaml.Node, path string) (string, bool) {
	s, ok := d.str(n, path)
	if ok && !filepath.IsAbs(s) {
		d.errorf(n, path, "want an absolute path, got %q", s)
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
		d.problem(n, path, Problem{Msg: fmt.Sprintf("%d bytes is too small", b), Hint: hint})
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
		d.problem(n, path, Problem{Msg: fmt.Sprintf("invalid size %q", s), Hint: "bytes, or a number with KiB, MiB, GiB (or KB, MB, GB)"})
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
		p := join(path, key)
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
		p := join(path, key)
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
				d.errorf(v, p, "want a number, got %s", describe(v))
			case f < 1 || f > 100:
				d.problem(v, p, Problem{Msg: fmt.Sprintf("must be between 1 and 100, got %s", s),
					Hint: "1 keeps the delay constant; 2 doubles it on every retry"})
			default:
				b.Multiplier = f
			}
		}
	})
	if b.Max > 0 && b.Initial > b.Max {
		d.errorf(maxNode, join(path, "max"), "must not be less than initial (%s), got %s", b.Initial, b.Max)
	}
}

func (d *decoder) paths(n *yaml.Node, path string, p *Paths) {
	d.mapping(n, path, []string{"home", "logs", "workflows_dir"}, func(key string, k, v *yaml.Node) {
		switch key {
		case "home":
			p.Home, _ = d.absPath(v, join(path, key))
		case "logs":
			p.Logs, _ = d.absPath(v, join(path, key))
		case "workflows_dir":
			p.WorkflowsDir, _ = d.absPath(v, join(path, key))
		}
	})
}

func (d *decoder) log(n *yaml.Node, path string, l *Log) {
	d.mapping(n, path, []string{"format"}, func(key string, k, v *yaml.Node) {
		s, ok := d.str(v, join(path, key))
		if !ok {
			return
		}
		if s != "text" && s != "json" {
			d.problem(v, join(path, key), Problem{Msg: fmt.Sprintf("must be text or json, got %q", s),
				Suggest: suggest(s, []string{"text", "json"})})
			return
		}
		l.Format = s
	})
}

func (d *decoder) retention(n *yaml.Node, path string, r *Retention) {
	var logNode *yaml.Node
	d.mapping(n, path, []string{"history_days", "max_runs_per_workflow", "log_days"}, func(key string, k, v *yaml.Node) {
		p := join(path, key)
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
		d.problem(logNode, join(path, "log_days"), Problem{
			Msg:  fmt.Sprintf("is more than history_days (%d): logs go with their runs", r.HistoryDays),
			Hint: "leave log_days out, or make it smaller than history_days"})
	}
}

func (d *decoder) resources(n *yaml.Node, path string, r *Resources) {
	d.mapping(n, path, []string{"memory_limit", "gogc", "max_workflow_file"}, func(key string, k, v *yaml.Node) {
		p := join(path, key)
		switch key {
		case "memory_limit":
			if b, ok := d.sizeAtLeast(v, p, 8<<20, "at least 8MiB; the limit is soft, for Go's heap"); ok {
				r.MemoryLimit = b
			}
		case "max_workflow_file":
			if b, ok := d.sizeAtLeast(v, p, 1<<10, "at least 1KiB; the default is 1MiB"); ok {
				r.MaxWorkflowFile = b
			}
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

func (d *decoder) http(n *yaml.Node, path string, h *HTTP) {
	d.mapping(n, path, []string{"listen"}, func(key string, k, v *yaml.Node) {
		p := join(path, key)
		s, ok := d.str(v, p)
		if !ok {
			return
		}
		i := strings.LastIndexByte(s, ':')
		port, err := strconv.Atoi(s[i+1:])
		if i < 0 || err != nil || port < 1 || port > 65535 {
			d.problem(v, p, Problem{Msg: fmt.Sprintf("want HOST:PORT, got %q", s), Hint: "for example 127.0.0.1:9090"})
			return
		}
		h.Listen = s
	})
}

func (d *decoder) ui(n *yaml.Node, path string, u *UI) {
	d.mapping(n, path, []string{"token"}, func(key string, k, v *yaml.Node) {
		p := join(path, key)
		s, ok := d.str(v, p)
		if !ok {
			return
		}
		if len(s) < MinTokenLen {
			d.problem(v, p, Problem{Msg: fmt.Sprintf("too short: %d characters, want at least %d", len(s), MinTokenLen),
				Hint: "a random one: openssl rand -hex 16"})
			return
		}
		u.Token = s
	})
}

func (d *decoder) secrets(n *yaml.Node, path string, out map[string]Secret) {
	d.entries(n, path, func(name string, k, v *yaml.Node) {
		p := join(path, name)
		if !executors.ValidEnvName(name) {
			d.errorf(k, p, "secret names are letters, digits and '_', not starting with a digit")
			return
		}
		s := Secret{Line: k.Line}
		var set []string
		before := len(d.probs)
		d.mapping(v, p, []string{"env", "file"}, func(key string, _, v *yaml.Node) {
			set = append(set, key)
			switch key {
			case "env":
				if e, ok := d.str(v, join(p, key)); ok {
					if !executors.ValidEnvName(e) {
						d.errorf(v, join(p, key), "%q is not an environment variable name", e)
					}
					s.Env = e
				}
			case "file":
				s.File, _ = d.absPath(v, join(p, key))
			}
		})
		switch {
		case len(d.probs) > before:
			return // reported by mapping
		case len(set) == 0:
			d.problem(v, p, Problem{Msg: "set one of env or file", Hint: "{env: VAR} or {file: /path}"})
			return
		case len(set) > 1:
			d.errorf(v, p, "set only one of env or file")
			return
		}
		out[name] = s
	})
}

// suggest returns the candidate closest to word, or "" if none is a
// plausible typo.
func suggest(word string, candidates []string) string { return yamlcheck.Suggest(word, candidates) }
