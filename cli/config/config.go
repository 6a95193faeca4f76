package config

import (
	"errors"
	"fmt"
	"github.com/picoflow/picoflow/engine/yamlcheck"
	"io/fs"
	"os"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the parsed global configuration with defaults filled in. Zero
// values mean "not set" where the field says so.
type Config struct {
	// File is the file the configuration was read from; "" for defaults.
	File string

	Defaults  Defaults
	Paths     Paths
	Log       Log
	Retention Retention
	Resources Resources
	HTTP      HTTP
	UI        UI
	// Secrets are the named secret sources, by name.
	Secrets map[string]Secret
}

// Defaults apply to every workflow that does not set the value itself.
type Defaults struct {
	MaxParallel   int           // 0: the number of CPUs
	Retry         int           // retries after a failed first attempt
	Timeout       time.Duration // per attempt; 0: none
	ShutdownGrace time.Duration // 0: the workflow's, else 30s
	Backoff       Backoff
}

// Backoff is the wait before retry n: Initial * Multiplier^(n-1), capped at Max.
// Zero fields are not set.
type Backoff struct {
	Initial    time.Duration
	Multiplier float64
	Max        time.Duration
}

// Paths locate PicoFlow's files; "" means the default.
type Paths struct {
	Home         string // state directory (journal, logs, database)
	Logs         string // task logs; default HOME/logs
	WorkflowsDir string // the daemon's workflow files
}

// Log configures PicoFlow's own log.
type Log struct {
	Format string // "text" or "json"; "" means text
}

// Retention says how long finished runs are kept (picoflow gc).
type Retention struct {
	HistoryDays        int // runs older than this lose rows, logs and journal entries; default 30
	MaxRunsPerWorkflow int // keep at most this many runs per workflow; 0: no limit
	LogDays            int // logs go earlier than the rows; 0: with the rows
}

// Resources bound PicoFlow's own memory use and its fsyncs.
type Resources struct {
	MemoryLimit int64 // bytes, for runtime/debug.SetMemoryLimit; 0: not set
	GOGC        int   // for runtime/debug.SetGCPercent; 0: not set, -1: off
	// MaxWorkflowFile bounds a workflow file, in bytes; 0: the default
	// (workflow.DefaultMaxFileSize, 1 MiB).
	MaxWorkflowFile int64
	// SyncWindow is how long the end of an idempotent task may stay
	// written but not fsynced (engine.Options.SyncWindow): 0 when not set
	// (the engine's default, 10ms); -1 when set to 0 (every batch fsynced).
	SyncWindow time.Duration
}

// MaxSyncWindow is the largest resources.sync_window accepted.
const MaxSyncWindow = time.Second

// HTTP is the daemon's HTTP endpoint (health, metrics).
type HTTP struct {
	Listen string // host:port; "" disables it
}

// UI is the read-only web UI (picoflow ui, daemon --listen).
type UI struct {
	// Token, when set, is required of every UI request (a bearer token or
	// the cookie /login?token= sets) and allows a non-loopback address.
	Token string
}

// MinTokenLen is the shortest ui.token accepted.
const MinTokenLen = 16

// Secret is where one secret's value comes from: exactly one of Env and File.
type Secret struct {
	Env  string
	File string
	Line int // of the secret's name in the file, for messages
}

// DefaultHistoryDays is retention.history_days when not set.
const DefaultHistoryDays = 30

// Default returns the configuration used when there is no file.
func Default() *Config {
	return &Config{
		Retention: Retention{HistoryDays: DefaultHistoryDays},
		Secrets:   map[string]Secret{},
	}
}

// Find returns the configuration file to load: explicit when it is not ""
// (it must exist), else the first of candidates that exists, else "".
func Find(explicit string, candidates ...string) (string, error) {
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", fmt.Errorf("config file: %w", err)
		}
		return explicit, nil
	}
	for _, c := range candidates {
		_, err := os.Stat(c)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("config file: %w", err)
		}
	}
	return "", nil
}

// Load reads and parses path; "" returns Default().
func Load(path string) (*Config, error) {
	if path == "" {
		return Default(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	return Parse(path, data)
}

// Parse parses and validates a configuration; file names it in problems.
// The error, if any, is a Problems value.
func Parse(file string, data []byte) (*Config, error) {
	c := Default()
	c.File = file
	d := &decoder{yamlcheck.NewDecoder(file, data)}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		d.Syntax(err, data)
		return nil, d.Probs
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return c, nil // an empty file: all defaults
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return c, nil
	}
	d.config(root, c)
	if len(d.Probs) > 0 {
		d.Probs.SortByPosition()
		return nil, d.Probs.Dedupe()
	}
	return c, nil
}

// SecretNames returns the declared secret names, sorted.
func (c *Config) SecretNames() []string {
	names := make([]string, 0, len(c.Secrets))
	for n := range c.Secrets {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// CheckFiles returns the problems of the files the configuration names:
// a secret file must be a regular file that others cannot read or write
// and its group cannot write (the rule executors/secret enforces when it
// reads one).
func (c *Config) CheckFiles() Problems {
	var ps Problems
	for _, name := range c.SecretNames() {
		s := c.Secrets[name]
		if s.File == "" {
			continue
		}
		p := Problem{File: c.File, Line: s.Line, Path: "secrets." + name + ".file"}
		fi, err := os.Stat(s.File)
		switch {
		case err != nil:
			p.Msg, p.Err = "cannot use secret file: "+err.Error(), err
		case !fi.Mode().IsRegular():
			p.Msg = fmt.Sprintf("%s is not a regular file", s.File)
		case fi.Mode().Perm()&0o007 != 0:
			p.Msg = fmt.Sprintf("%s is readable or writable by every user (mode %04o)", s.File, fi.Mode().Perm())
			p.Hint = "chmod 600 " + s.File
		case fi.Mode().Perm()&0o020 != 0:
			p.Msg = fmt.Sprintf("%s is writable by its group (mode %04o)", s.File, fi.Mode().Perm())
			p.Hint = "chmod g-w " + s.File
		default:
			continue
		}
		ps = append(ps, p)
	}
	return ps
}

// Problem and Problems are the validation layer's (engine/yamlcheck),
// the same types as a workflow file's problems: Parse and Load return a
// Problems value as their error, CheckFiles a Problems value.
type (
	Problem  = yamlcheck.Problem
	Problems = yamlcheck.Problems
)
